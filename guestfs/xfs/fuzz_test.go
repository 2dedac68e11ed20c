package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// fuzzVolume is the size every fuzz input is read as: the input is the
// start of an image, and the rest reads as zeros. The seeds are made with
// one allocation group and an external log, so that everything they hold
// sits in their first few hundred KiB.
const fuzzVolume = 16 << 20

// paddedReader reads data, then zeros up to size.
type paddedReader struct {
	data []byte
	size int64
}

func (p paddedReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= p.size {
		return 0, io.EOF
	}
	n := len(b)
	if int64(n) > p.size-off {
		n = int(p.size - off)
	}
	clear(b[:n])
	if off < int64(len(p.data)) {
		copy(b[:n], p.data[off:])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzSeeds makes small images with mkfs.xfs from a protofile (no kernel
// mount, no root): a v5 and a v4 filesystem of 1 KiB blocks holding
// short-form, block, leaf and node directories, inline and remote
// symlinks, device nodes, a FIFO, files, and attributes set with xfs_db
// (short-form, leaf, remote values), each image cut after its last
// non-zero byte.
func fuzzSeeds(t testing.TB) [][]byte {
	t.Helper()
	testutil.RequireTool(t, "mkfs.xfs")
	db := testutil.RequireTool(t, "xfs_db")
	stage := tempDir(t)
	var b bytes.Buffer
	b.WriteString("seed\n0 0\nd--755 0 0\n")
	// Empty files (no data blocks) keep the image small; 200 names
	// need a node directory with 1 KiB directory blocks.
	for _, n := range []int{3, 20, 60, 200} {
		fmt.Fprintf(&b, "d%d d--755 1000 1000\n", n)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "f%d_%d ---644 %d 0 /dev/null\n", n, i, i)
		}
		b.WriteString("$\n")
	}
	fmt.Fprintf(&b, "big ---600 0 0 %s\n", filepath.Join(stage, "big"))
	fmt.Fprintf(&b, "sl l--777 0 0 short\nrl l--777 0 0 %s\n", bytes.Repeat([]byte("r/"), 150))
	b.WriteString("cdev c--644 0 0 4 5\nbdev b--644 0 0 8 1\nfifo p--644 0 0\n")
	fmt.Fprintf(&b, "a1 ---644 0 0 %s\na2 ---644 0 0 %s\n$\n$\n", filepath.Join(stage, "small"), filepath.Join(stage, "small"))
	if err := os.WriteFile(filepath.Join(stage, "small"), []byte("small file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "big"), bytes.Repeat([]byte("0123456789abcdef"), 1500), 0o644); err != nil {
		t.Fatal(err)
	}
	proto := filepath.Join(stage, "proto")
	if err := os.WriteFile(proto, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, v := range [][]string{{"-m", "crc=1"}, {"-m", "crc=0"}} {
		logImg := filepath.Join(stage, "log.img")
		if err := os.WriteFile(logImg, make([]byte, 4<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		img := mkfs(t, fuzzVolume>>20, append(v, "-m", "uuid=2b2c0d6e-5d3a-4a8e-9d3b-0c1f6a7e8f90", "-b", "size=1024", "-d", "agcount=1", "-l", "logdev="+logImg+",size=4m", "-p", proto)...)
		args := []string{"-x", "-l", logImg, "-c", "path /a1", "-c", "attr_set -u -v 10 one", "-c", "path /a1", "-c", "attr_set -r -v 3 two"}
		for i := 0; i < 20; i++ {
			args = append(args, "-c", "path /a2", "-c", fmt.Sprintf("attr_set -u -v 30 attribute_%d", i))
		}
		args = append(args, "-c", "path /a2", "-c", "attr_set -s -v 3000 remote")
		if out, err := exec.Command(db, append(args, img)...).CombinedOutput(); err != nil {
			t.Fatalf("xfs_db: %v: %s", err, out)
		}
		data, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		end := len(data)
		for end > 0 && data[end-1] == 0 {
			end--
		}
		seeds = append(seeds, data[:end])
	}
	return seeds
}

// FuzzOpen opens damaged images and walks them with bounds: every
// directory once, two thousand entries, the first 128 KiB of each file,
// links, attributes, lookups, holes. It must never panic or hang.
//
// The seed images are a few hundred KiB, too large for the fuzzer to
// mutate and minimize quickly, so an input is a small edit script instead:
// its first byte picks a seed image (v5 or v4), and each edit after it
// (a 3-byte offset, a length byte, then that many bytes) overwrites bytes
// of it. The seeds are made afresh by mkfs.xfs in each run, with a fixed
// UUID, so that an edit lands on the same structure from run to run.
func FuzzOpen(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i := range seeds {
		f.Add([]byte{byte(i)})
	}
	// A few edits of the inode area and the directory blocks, to start
	// the corpus off the seeds themselves.
	f.Add([]byte{0, 0x01, 0x00, 0x40, 4, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0x00, 0x80, 0x10, 2, 0x00, 0x07})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 {
			return
		}
		img := append([]byte(nil), seeds[int(script[0])%len(seeds)]...)
		for p := script[1:]; len(p) >= 4; {
			off, n := int(p[0])<<16|int(p[1])<<8|int(p[2]), int(p[3])
			p = p[4:]
			n = min(n, len(p))
			if off < len(img) {
				copy(img[off:], p[:n])
			}
			p = p[n:]
		}
		fsys, err := open(paddedReader{img, fuzzVolume}, fuzzVolume, false)
		if err != nil {
			return
		}
		fuzzWalk(fsys)
	})
}

// TestFuzzSeeds checks that the seeds are what they claim: readable in
// full, with nothing but the reader's own structure checks (CRCs on).
func TestFuzzSeeds(t *testing.T) {
	t.Parallel()
	for i, s := range fuzzSeeds(t) {
		fsys, err := Open(paddedReader{s, fuzzVolume}, fuzzVolume)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if n, err := fuzzWalk(fsys); err != nil || n < 290 {
			t.Fatalf("seed %d: %d entries, %v", i, n, err)
		}
		t.Logf("seed %d: %d bytes", i, len(s))
	}
}

// fuzzWalk reads a filesystem with bounds and returns the entries seen
// and the first error that is not one of the reader's sentinel errors.
func fuzzWalk(fsys *FS) (int, error) {
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	_ = fsys.Info()
	seen := map[uint64]bool{}
	entries := 0
	buf := make([]byte, 64<<10)
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		if seen[ino] || depth > 20 || entries > 2000 {
			return
		}
		seen[ino] = true
		a, err := fsys.Stat(ino)
		if err != nil {
			note(err)
			return
		}
		_, err = fsys.Xattrs(ino)
		note(err)
		switch a.Mode & guestfs.TypeMask {
		case guestfs.TypeRegular:
			fl, err := fsys.Open(ino)
			if err != nil {
				note(err)
				return
			}
			for off := int64(0); off < 128<<10; off += int64(len(buf)) {
				if _, err := fl.ReadAt(buf, off); err != nil {
					if err != io.EOF {
						note(err)
					}
					break
				}
			}
			sp := fl.(guestfs.Sparse)
			_, _, err = sp.NextData(0)
			note(err)
			_, err = sp.NextHole(0)
			note(err)
		case guestfs.TypeSymlink:
			_, err := fsys.Readlink(ino)
			note(err)
		case guestfs.TypeDir:
			var names []guestfs.DirEntry
			err := fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
				entries++
				if entries > 2000 {
					return errors.New("too many entries")
				}
				names = append(names, e)
				return nil
			})
			note(err)
			for _, e := range names {
				_, err := fsys.Lookup(ino, e.Name)
				note(err)
				walk(e.Ino, depth+1)
			}
			_, err = fsys.Lookup(ino, "no such name")
			if !errors.Is(err, guestfs.ErrNotExist) {
				note(err)
			}
		}
	}
	walk(fsys.Root(), 0)
	return entries, firstErr
}
