package vdisk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestRawOddSizes opens files whose size is not a multiple of 512 as raw
// disks and compares each with what qemu-img makes of it: the bytes
// `qemu-img convert -f raw -O raw` writes (the file, then zeros to a whole
// sector) and the data and zero runs `qemu-img map` reports.
func TestRawOddSizes(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(4))
	for _, n := range []int{1, 4, 511, 512, 513, 1000, 1024, 4096 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			file := make([]byte, n)
			rng.Read(file)
			path := filepath.Join(dir, fmt.Sprintf("disk-%d.img", n))
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(testutil.RawOracle(t, dir, path, "raw"))
			if err != nil {
				t.Fatal(err)
			}
			im, err := Open(bytes.NewReader(file), int64(n), Options{Name: filepath.Base(path), Raw: true})
			if err != nil {
				t.Fatal(err)
			}
			if im.Size() != int64(len(want)) || im.Format() != "raw" {
				t.Fatalf("Size() = %d, Format() = %q; qemu-img convert wrote %d bytes", im.Size(), im.Format(), len(want))
			}
			got := make([]byte, len(want)+100)
			k, err := im.ReadAt(got, 0)
			if k != len(want) || err != io.EOF || !bytes.Equal(got[:k], want) {
				t.Fatalf("ReadAt = %d, %v; the bytes differ from qemu-img convert's: %v", k, err, !bytes.Equal(got[:k], want))
			}
			for off := range int64(len(want)) { // every offset, in short reads across the file's end
				p := make([]byte, 7)
				k, _ := im.ReadAt(p, off)
				if !bytes.Equal(p[:k], want[off:][:k]) {
					t.Fatalf("ReadAt(7 bytes at %d) differs from qemu-img convert's", off)
				}
			}
			if w := im.Warnings(); (n%512 != 0) != (len(w) == 1) {
				t.Errorf("warnings %q for a %d-byte file", w, n)
			}
			compareRawMap(t, im, path)
			if a, err := im.Allocated(); a != int64(n) || err != nil {
				t.Errorf("Allocated() = %d, %v; want the file's %d bytes", a, err, n)
			}
		})
	}
}

// compareRawMap checks the allocation map against qemu-img map: the same
// runs hold data, and the same read as zeros.
func compareRawMap(t *testing.T, im Image, path string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "map", "-f", "raw", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var qemu []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(out, &qemu); err != nil {
		t.Fatalf("qemu-img map output: %v", err)
	}
	var want []Extent
	for _, e := range qemu {
		if k := len(want) - 1; k >= 0 && want[k].Data == e.Data {
			want[k].Len += e.Length
		} else {
			want = append(want, Extent{Off: e.Start, Len: e.Length, Data: e.Data})
		}
	}
	var got []Extent
	for pos := int64(0); pos < im.Size(); {
		e, err := im.Extent(pos)
		if err != nil {
			t.Fatalf("Extent(%d): %v", pos, err)
		}
		got = append(got, e)
		pos = e.Off + e.Len
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("extents %v; qemu-img map says %v", got, want)
	}
}
