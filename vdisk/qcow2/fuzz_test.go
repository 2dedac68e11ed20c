package qcow2

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// tinyImage builds a small valid image by hand, so the fuzzer has seeds
// without qemu-img: a header cluster, the L1 and refcount tables, a data
// cluster of which only the head is in the file, and an L2 table cut short
// after its few entries (both read as zero-padded). The entries map a
// stored, a zero, a compressed (at an odd offset, inside the data
// cluster's unused part) and an unallocated cluster. With ext it uses
// extended L2 entries and 16 KiB clusters, the smallest qemu allows for
// them.
func tinyImage(t testing.TB, zstdComp, ext bool) []byte {
	cb := uint32(9)
	if ext {
		cb = 14
	}
	cs := int64(1) << cb
	l1, ref, data, l2 := cs, 2*cs, 3*cs, 4*cs
	l := &layout{t: t, b: make([]byte, l2+48)}
	l.put32(0, magic)
	l.put32(4, 3)
	l.put32(20, cb)
	l.put64(24, uint64(16*cs)) // virtual size
	l.put32(36, 1)             // l1_size
	l.put64(40, uint64(l1))
	l.put64(48, uint64(ref)) // an empty refcount table: qemu wants one
	l.put32(56, 1)
	l.put32(96, 4)
	l.put32(100, 112)
	var incompat uint64
	if zstdComp {
		incompat |= incCompression
		l.b[104] = compZstd
	}
	if ext {
		incompat |= incExtL2
	}
	l.put64(72, incompat)
	l.put64(l1, 1<<63|uint64(l2))
	copy(l.b[data:], "tiny qcow2 data!")

	content := bytes.Repeat([]byte("qcow2 "), int(cs)/6+1)[:cs]
	var rec []byte
	if zstdComp {
		rec = zstdOf(t, content)
	} else {
		rec = deflateOf(t, content)
	}
	coff := data + 19
	copy(l.b[coff:], rec)
	shift := 62 - (cb - 8)
	nsec := (coff&511 + int64(len(rec)) + 511) / 512
	compressed := flagCompressed | uint64(nsec-1)<<shift | uint64(coff)

	if ext {
		l.put64(l2, 1<<63|uint64(data))
		l.put64(l2+8, 0xffff0000_0000ffff)  // first half stored, second zero
		l.put64(l2+24, 0x0000ff00_00000000) // unallocated, subclusters 8-15 zero
		l.put64(l2+32, compressed)
	} else {
		l.put64(l2, 1<<63|uint64(data))
		l.put64(l2+8, flagZero)
		l.put64(l2+16, compressed)
		l.b = l.b[:l2+24]
	}
	return l.b
}

// TestTinyImages checks the hand-built fuzz seeds against qemu, so the
// fuzzer starts from images qemu agrees are valid.
func TestTinyImages(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	for _, c := range []struct {
		name      string
		zstd, ext bool
		format    string
	}{
		{"zlib", false, false, "qcow2 v3 (zlib)"},
		{"zstd", true, false, "qcow2 v3 (zstd)"},
		{"extl2", false, true, "qcow2 v3 (zlib, extended L2)"},
		{"extl2-zstd", true, true, "qcow2 v3 (zstd, extended L2)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".qcow2")
			if err := os.WriteFile(path, tinyImage(t, c.zstd, c.ext), 0o644); err != nil {
				t.Fatal(err)
			}
			img := openImage(t, path)
			if img.Format() != c.format {
				t.Errorf("Format() = %q, want %q", img.Format(), c.format)
			}
			o := openOracle(t, dir, path)
			compareWhole(t, img, o)
			compareBoundaries(t, img, o, img.clusterSize>>5, 1000)
			runs, _ := walkRuns(t, img)
			for _, k := range []blockmap.Kind{blockmap.Stored, blockmap.Zero, blockmap.Compressed, blockmap.Hole} {
				if runs[k] == 0 {
					t.Errorf("no %v run (runs %v)", k, runs)
				}
			}
			compareQemuMap(t, img, path)
		})
	}
}

func classified(err error) bool {
	return errors.Is(err, blockmap.ErrCorrupt) || errors.Is(err, blockmap.ErrUnsupported)
}

// qemuSeeds makes small images with qemu-img and qemu-io when they are
// installed: 512-byte clusters keep them a few KiB.
func qemuSeeds(f *testing.F) [][]byte {
	if _, err := exec.LookPath("qemu-io"); err != nil {
		return nil
	}
	dir := f.TempDir()
	var seeds [][]byte
	for i, opts := range []string{
		"cluster_size=512",
		"cluster_size=512,compat=0.10",
		"cluster_size=512,compression_type=zstd",
	} {
		p := filepath.Join(dir, "seed.qcow2")
		os.Remove(p)
		testutil.QemuImg(f, "create", "-f", "qcow2", "-o", opts, p, "64k")
		args := []string{"-f", "qcow2", "-c", "write -P 0x5a 0 4k", "-c", "write -c -P 0x11 8k 512", "-c", "write -c -P 0x12 9k 1k"}
		if i != 1 {
			args = append(args, "-c", "write -z 12k 2k")
		}
		runTool(f, "qemu-io", append(args, p)...)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzOpen opens arbitrary bytes and, when they open, maps and reads a few
// offsets. Nothing may panic, every error must be classified, and every
// run must honour the Mapper contract.
func FuzzOpen(f *testing.F) {
	seeds := [][]byte{
		tinyImage(f, false, false),
		tinyImage(f, true, false),
		tinyImage(f, false, true),
	}
	seeds = append(seeds, qemuSeeds(f)...)
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		v2 := bytes.Clone(s)
		v2[7] = 2
		f.Add(v2)
	}
	f.Fuzz(fuzzOpen)
}

func fuzzOpen(t *testing.T, b []byte) {
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "fuzz"})
	if err != nil {
		if !classified(err) {
			t.Fatalf("Open: unclassified error %v", err)
		}
		return
	}
	_, _ = img.Format(), img.Warnings()
	size := img.Size()
	if size == 0 {
		return
	}
	buf := make([]byte, 4096)
	for _, off := range []int64{0, size - 1, size / 2, size / 3, int64(len(b)) % size} {
		r, err := img.Map(off)
		if err != nil {
			if !classified(err) {
				t.Fatalf("Map(%d): unclassified error %v", off, err)
			}
			continue
		}
		if err := r.Check(off, size); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", off, r, err)
		}
		if _, err := blockmap.ReadAt(img, buf, off); err != nil && err != io.EOF && !classified(err) {
			t.Fatalf("ReadAt(%d): unclassified error %v", off, err)
		}
	}
	// Walk the first runs: each must start where the last ended.
	for pos, n := int64(0), 0; pos < size && n < 64; n++ {
		r, err := img.Map(pos)
		if err != nil {
			break
		}
		if err := r.Check(pos, size); err != nil {
			t.Fatalf("Map(%d) = %+v: %v", pos, r, err)
		}
		pos = r.End()
	}
}
