package vmdkwriter

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// TestRoundTrip writes three disks and checks that qemu-img accepts each
// file and decodes it to the input: 70 MiB holding the first 6 MiB of the
// shared partitioned disk (MBR, ext4 metadata, files) at its start and
// 2 MiB of files at its end, so the stream has three grain tables and a
// directory entry without one (compressing all 24 MiB of the partitioned
// disk takes most of a minute under -race); a disk whose size is not a
// multiple of a grain nor of a sector; and a one-byte disk.
func TestRoundTrip(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	data, err := os.ReadFile(testutil.PartitionedDisk(t, 64<<20, 24<<20))
	if err != nil {
		t.Fatal(err)
	}
	spread := make([]byte, 70<<20)
	copy(spread, data[:6<<20])
	copy(spread[68<<20:], data[8<<20:10<<20])
	// A slice from the ext4 area, where files are dense, ending mid-sector.
	odd := data[8<<20 : 8<<20+3*grainBytes+1536+100]

	for _, tc := range []struct {
		name string
		disk []byte
	}{
		{"spread-70MiB", spread},
		{"odd-size", odd},
		{"one-byte", []byte{0x5a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "disk.vmdk")
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(f, bytes.NewReader(tc.disk), int64(len(tc.disk))); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkLayout(t, out)
			if b, err := exec.Command("qemu-img", "check", "-f", "vmdk", out).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img check: %v\n%s", err, b)
			}
			raw := testutil.RawOracle(t, dir, out, "vmdk")
			got, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte(nil), tc.disk...)
			if r := len(want) % sectorSize; r != 0 {
				want = append(want, make([]byte, sectorSize-r)...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("qemu-img decodes %d bytes that differ from the %d-byte input", len(got), len(want))
			}
		})
	}
}

// checkLayout asserts the ovftool layout: GD_AT_END in the header, and a
// footer marker, footer header and end-of-stream marker at the end.
func checkLayout(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if string(b[:4]) != "KDMV" || le.Uint64(b[56:]) != gdAtEnd {
		t.Fatalf("header: magic %q gdOffset %#x, want KDMV and GD_AT_END", b[:4], le.Uint64(b[56:]))
	}
	if len(b)%sectorSize != 0 || len(b) < 4*sectorSize {
		t.Fatalf("file of %d bytes is not whole sectors", len(b))
	}
	end := len(b)
	marker, foot, eos := b[end-1536:end-1024], b[end-1024:end-512], b[end-512:]
	if le.Uint32(marker[12:]) != markerFooter || string(foot[:4]) != "KDMV" || !bytes.Equal(eos, make([]byte, sectorSize)) {
		t.Fatal("no footer marker, footer header and end-of-stream marker at the end")
	}
	gd := le.Uint64(foot[56:])
	if gd == gdAtEnd || gd*sectorSize >= uint64(end) {
		t.Fatalf("footer gdOffset %d", gd)
	}
	if m := b[(gd-1)*sectorSize:]; le.Uint32(m[12:]) != markerGD {
		t.Fatalf("no GD marker before the grain directory at sector %d", gd)
	}
}

func TestRejectsBadSize(t *testing.T) {
	for _, size := range []int64{0, -1, maxSize + 1} {
		if err := Write(&bytes.Buffer{}, bytes.NewReader(nil), size); err == nil {
			t.Errorf("size %d: no error", size)
		}
	}
	// A disk shorter than the size it claims is an error, not zeros.
	if err := Write(&bytes.Buffer{}, bytes.NewReader(make([]byte, 100)), 1<<20); err == nil {
		t.Error("short disk: no error")
	}
}
