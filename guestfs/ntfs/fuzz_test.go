package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs"
)

// fuzzVolume is the size of the volumes the fuzz target opens: the seed
// image's.
const fuzzVolume = 2 << 20

// FuzzOpen opens mutated NTFS volumes and walks them: it must never panic,
// hang or allocate without bound. An input is a sparse volume of 2 MiB:
// chunks of 4-byte offset, 2-byte length and bytes, over zeros. The seed
// is the volume mkfs.ntfs and ntfs-3g make in buildSeedImage, cut down to
// the non-zero bytes of the sectors a walk reads, $UpCase and the boot
// code left out (the reader falls back on Unicode's table): about 8 KiB
// of boot sector fields, MFT records, index blocks and file data for the
// mutations to land on, small enough for the fuzzer to minimize what it
// finds in seconds.
func FuzzOpen(f *testing.F) {
	f.Add(fuzzSeed(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := parseSparse(b)
		Probe(r, fuzzVolume)
		fsys, err := Open(r, fuzzVolume)
		if err != nil {
			return
		}
		fsys.Info()
		boundedWalk(fsys, 500)
	})
}

// sparse is a volume of 4 KiB pages over zeros.
type sparse map[int64]*[4096]byte

// parseSparse lays the chunks of a fuzz input over the zeros, in order.
func parseSparse(b []byte) sparse {
	s := sparse{}
	for len(b) >= 6 {
		off := int64(binary.LittleEndian.Uint32(b))
		n := min(int(binary.LittleEndian.Uint16(b[4:])), len(b)-6)
		data := b[6 : 6+n]
		b = b[6+n:]
		for len(data) > 0 && off < fuzzVolume {
			pg := s[off>>12]
			if pg == nil {
				pg = new([4096]byte)
				s[off>>12] = pg
			}
			k := copy(pg[off&4095:], data)
			data = data[k:]
			off += int64(k)
		}
	}
	return s
}

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= fuzzVolume {
		return 0, io.EOF
	}
	n := min(int64(len(p)), fuzzVolume-off)
	for i := int64(0); i < n; {
		o := off + i
		k := min(4096-o&4095, n-i)
		if pg := s[o>>12]; pg != nil {
			copy(p[i:i+k], pg[o&4095:])
		} else {
			clear(p[i : i+k])
		}
		i += k
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// recorder notes the sectors read through it.
type recorder struct {
	r       io.ReaderAt
	mu      sync.Mutex
	sectors map[int64]bool
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	for o := off &^ 511; o < off+int64(len(p)); o += 512 {
		r.sectors[o] = true
	}
	r.mu.Unlock()
	return r.r.ReadAt(p, off)
}

// fuzzSeed encodes the sectors of the seed image a walk reads, but for
// those of $UpCase, as the fuzz target's chunks.
func fuzzSeed(t testing.TB) []byte {
	// Built here and removed at once, not cached: a fuzz worker is killed
	// at the end of the run, before any cleanup.
	dir, err := os.MkdirTemp("", "ntfs-seed-")
	must(t, err)
	buildSeedImage(t, dir+"/seed.img")
	img, err := os.ReadFile(dir + "/seed.img")
	os.RemoveAll(dir)
	must(t, err)
	if len(img) != fuzzVolume {
		t.Fatalf("seed image of %d bytes", len(img))
	}
	rec := &recorder{r: bytes.NewReader(img), sectors: map[int64]bool{}}
	fsys, err := Open(rec, int64(len(img)))
	must(t, err)
	if n := boundedWalk(fsys, 1000); n < 12 {
		t.Fatalf("the seed walk saw %d files", n)
	}
	up, err := fsys.node(fileUpCase)
	must(t, err)
	for _, r := range up.data.runs {
		for c := r.lcn; c < r.lcn+r.length; c++ {
			delete(rec.sectors, c<<fsys.g.clusterShift)
		}
	}
	// Its MFT record too: the sectors mapped at record 10 of the $MFT.
	for o := int64(fileUpCase) * fsys.g.recordSize; o < int64(fileUpCase+1)*fsys.g.recordSize; o += 512 {
		r := fsys.mft.runs[fsys.mft.findRun(o>>fsys.g.clusterShift)]
		delete(rec.sectors, r.lcn<<fsys.g.clusterShift+o-r.vcn<<fsys.g.clusterShift)
	}
	var offs []int64
	for o := range rec.sectors {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	// Chunks of the non-zero bytes of those sectors, split at runs of 16
	// zeros or more.
	var out []byte
	for _, o := range offs {
		sec := img[o : o+512]
		if o == 0 {
			sec = sec[:0x54] // the boot sector's fields, not its code
		}
		for i := 0; i < len(sec); {
			for i < len(sec) && sec[i] == 0 {
				i++
			}
			j, zeros := i, 0
			for ; j < len(sec) && zeros < 16; j++ {
				if sec[j] == 0 {
					zeros++
				} else {
					zeros = 0
				}
			}
			if j-zeros > i {
				out = binary.LittleEndian.AppendUint32(out, uint32(o)+uint32(i))
				out = binary.LittleEndian.AppendUint16(out, uint16(j-zeros-i))
				out = append(out, sec[i:j-zeros]...)
			}
			i = j
		}
	}
	// The seed alone, over zeros, still walks.
	again, err := Open(parseSparse(out), fuzzVolume)
	must(t, err)
	if n := boundedWalk(again, 1000); n < 12 {
		t.Fatalf("the seed's chunks walk %d files", n)
	}
	return out
}

// boundedWalk visits at most limit files of fsys, as a FUSE client would:
// listing, looking up, stating, reading (the first 256 KiB and the holes),
// following nothing. It returns how many it visited; errors are expected
// and ignored, panics and hangs are the failures.
func boundedWalk(fsys *FS, limit int) int {
	seen := map[uint64]bool{}
	visited := 0
	buf := make([]byte, 64<<10)
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		if visited >= limit || depth > 32 || seen[ino] {
			return
		}
		seen[ino] = true
		visited++
		a, err := fsys.Stat(ino)
		if err != nil {
			return
		}
		fsys.Xattrs(ino)
		switch a.Mode & guestfs.TypeMask {
		case guestfs.TypeDir:
			var ents []guestfs.DirEntry
			errStop := errors.New("enough")
			fsys.ReadDir(ino, func(e guestfs.DirEntry) error {
				ents = append(ents, e)
				if len(ents) >= limit {
					return errStop
				}
				return nil
			})
			fsys.Lookup(ino, "no such name")
			for _, e := range ents {
				fsys.Lookup(ino, e.Name)
				walk(e.Ino, depth+1)
			}
		case guestfs.TypeSymlink:
			fsys.Readlink(ino)
		case guestfs.TypeRegular:
			f, err := fsys.Open(ino)
			if err != nil {
				return
			}
			for off := int64(0); off < min(f.Size(), 256<<10); off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
					break
				}
			}
			if sp, ok := f.(guestfs.Sparse); ok {
				off := int64(0)
				for i := 0; i < 16 && off < f.Size(); i++ {
					d, ok, err := sp.NextData(off)
					if err != nil || !ok {
						break
					}
					if off, err = sp.NextHole(d); err != nil {
						break
					}
				}
			}
			f.ReadAt(buf[:100], f.Size()-50)
		}
	}
	walk(fsys.Root(), 0)
	return visited
}
