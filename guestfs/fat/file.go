package fat

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/ovfmount/ovfmount/guestfs"
)

// file is an opened regular file: its clusters as runs, so that a large
// read becomes one read of the volume per run.
type file struct {
	fs   *FS
	ino  uint64
	size int64
	runs []run
	// have is the bytes the chain covers: a chain shorter than the size
	// makes reads past it fail, as Linux's vfat returns EIO there.
	have int64
	err  error // why the chain stopped short
}

// Open opens a regular file's data.
func (fs *FS) Open(ino uint64) (guestfs.File, error) {
	if ino == rootIno {
		return nil, fmt.Errorf("fat: root: %w", guestfs.ErrIsDir)
	}
	e, err := fs.entryAt(ino)
	if err != nil {
		return nil, err
	}
	if e[11]&attrDir != 0 {
		return nil, fmt.Errorf("fat: inode %d: %w", ino, guestfs.ErrIsDir)
	}
	f := &file{fs: fs, ino: ino, size: int64(binary.LittleEndian.Uint32(e[28:]))}
	if f.size == 0 {
		return f, nil
	}
	need := (f.size + fs.clusterSize - 1) / fs.clusterSize
	first := fs.firstCluster(e)
	key := [2]uint32{first, uint32(need)}
	if runs, ok := fs.runs.Get(key); ok {
		f.runs, f.have = runs, f.size
		return f, nil
	}
	if need > int64(fs.clusters) {
		f.err = fmt.Errorf("fat: inode %d: %d bytes need %d clusters, the volume has %d: %w", ino, f.size, need, fs.clusters, guestfs.ErrCorrupt)
		need = int64(fs.clusters)
	}
	runs, n, err := fs.chain(first, uint32(need))
	f.runs, f.have = runs, min(int64(n)*fs.clusterSize, f.size)
	if err != nil {
		f.err = fmt.Errorf("fat: inode %d: %w", ino, err)
	} else if f.have < f.size {
		if f.err == nil {
			f.err = fmt.Errorf("fat: inode %d: the cluster chain holds %d of its %d bytes: %w", ino, f.have, f.size, guestfs.ErrCorrupt)
		}
	} else {
		fs.runs.Put(key, runs, 32+12*len(runs))
	}
	return f, nil
}

func (f *file) Size() int64 { return f.size }

// ReadAt reads p from off; each run of consecutive clusters is one read of
// the volume.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("fat: inode %d: negative offset %d", f.ino, off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > f.size-off {
		want = want[:f.size-off]
	}
	cs := f.fs.clusterSize
	done := 0
	for done < len(want) {
		pos := off + int64(done)
		if pos >= f.have {
			return done, f.err
		}
		ci := uint32(pos / cs)
		i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].idx+f.runs[i].n > ci })
		if i == len(f.runs) {
			return done, f.err
		}
		r := f.runs[i]
		runEnd := int64(r.idx+r.n) * cs
		n := min(int64(len(want)-done), runEnd-pos, f.have-pos)
		src := f.fs.clusterOff(r.start) + pos - int64(r.idx)*cs
		if err := f.fs.readAt(want[done:done+int(n)], src); err != nil {
			return done, fmt.Errorf("fat: inode %d at %d: %w", f.ino, pos, err)
		}
		done += int(n)
	}
	if len(want) < len(p) {
		return done, io.EOF
	}
	return done, nil
}
