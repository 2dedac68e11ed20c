package qcow2

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

func TestDetect(t *testing.T) {
	valid := []byte("QFI\xfb\x00\x00\x00\x03")
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"qcow2 magic", valid, true},
		{"magic alone", valid[:4], true},
		{"too short", valid[:3], false},
		{"empty", nil, false},
		{"vmdk", []byte("KDMV\x01\x00\x00\x00"), false},
		{"zeros", make([]byte, 512), false},
	} {
		if got := Detect(bytes.NewReader(c.b), int64(len(c.b))); got != c.want {
			t.Errorf("%s: Detect = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRefusedFeatures makes real images with the features that cannot be
// served and checks that Open names them.
func TestRefusedFeatures(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	create := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		testutil.QemuImg(t, append(append([]string{"create", "-f", "qcow2"}, args...), p, "4M")...)
		return p
	}
	base := create("base.qcow2")
	for _, c := range []struct {
		name     string
		path     string
		contains string
	}{
		{"backing file", create("overlay.qcow2", "-b", base, "-F", "qcow2"), `backing file "` + base + `"`},
		{"relative backing file", func() string {
			p := filepath.Join(dir, "rel.qcow2")
			testutil.QemuImg(t, "create", "-f", "qcow2", "-u", "-b", "../parent/disk.qcow2", "-F", "qcow2", p, "4M")
			return p
		}(), `backing file "../parent/disk.qcow2"`},
		{"external data file", create("data.qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw")), `external data file "` + filepath.Join(dir, "data.raw") + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(bytes.NewReader(b), int64(len(b)), Options{Name: filepath.Base(c.path)})
			if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), c.contains) {
				t.Fatalf("Open: %v; want ErrUnsupported containing %q", err, c.contains)
			}
			t.Log(err)
		})
	}
}

// TestReadOn covers findings that are warnings, not errors: the image is
// still served, and served as qemu serves it.
func TestReadOn(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	bases := corruptBases(t)
	snap := filepath.Join(dir, "snap.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", snap, "4M")
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 1 0 1M", snap)
	testutil.QemuImg(t, "snapshot", "-c", "before", snap)
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 2 512k 1M", "-c", "write -z 64k 64k", snap)
	snapBytes, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		base    []byte
		mutate  func(l *layout)
		warning string
	}{
		{"dirty bit", bases["std"], func(l *layout) { l.put64(72, l.u64(72)|incDirty) }, "dirty bit"},
		{"corrupt bit", bases["zlib"], func(l *layout) { l.put64(72, l.u64(72)|incCorrupt) }, "corrupt bit"},
		{"size not a multiple of 512", bases["zstd"], func(l *layout) { l.put64(24, 4<<20-100) }, "serving 4193792 bytes"},
		{"internal snapshot", snapBytes, func(*layout) {}, "1 internal snapshot(s) ignored"},
		// A record that inflates to 8 MiB, appended at an odd byte
		// offset: qemu takes the first cluster and ignores the rest.
		{"deflate bomb", bases["zlib"], func(l *layout) {
			e, _ := l.entry(isCompressed)
			off := len(l.b) + 3
			l.b = append(l.b, make([]byte, 3)...)
			l.put64(e, flagCompressed|uint64(off)) // setRecord writes at the entry's offset
			l.setRecord(e, deflateOf(l.t, make([]byte, 8<<20)))
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &layout{t: t, b: bytes.Clone(c.base)}
			c.mutate(l)
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".qcow2")
			if err := os.WriteFile(path, l.b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			img := openImage(t, path)
			o := openOracle(t, dir, path)
			compareWhole(t, img, o)
			runtime.ReadMemStats(&after)
			w := strings.Join(img.Warnings(), "\n")
			if (c.warning == "" && w != "") || !strings.Contains(w, c.warning) {
				t.Errorf("warnings %q, want one containing %q", w, c.warning)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > 64<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			t.Logf("%d bytes match qemu; warnings %q; %d bytes allocated", img.Size(), img.Warnings(), alloc)
		})
	}
}

// TestMapAllocs checks that Map, the hot path, does not allocate once the
// L2 table it needs is cached, for every kind of run.
func TestMapAllocs(t *testing.T) {
	bases := corruptBases(t)
	for _, name := range []string{"std", "zlib", "zstd", "ext", "v2"} {
		b := bases[name]
		img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 1<<20 + 4097, img.Size() - 1} {
			r, err := img.Map(off)
			if err != nil {
				t.Fatal(err)
			}
			if a := testing.AllocsPerRun(50, func() { img.Map(off) }); a != 0 {
				t.Errorf("%s: Map(%d) (%v run) allocates %.0f times per call", name, off, r.Kind, a)
			}
		}
	}
}
