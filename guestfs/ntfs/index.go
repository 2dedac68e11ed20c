package ntfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// A directory is a B+tree of $FILE_NAME keys sorted by upper-cased name:
// its root node in the $INDEX_ROOT attribute, the other nodes in index
// blocks ("INDX" records) of the $INDEX_ALLOCATION stream, each entry
// pointing to the block of the entries sorting before it.

// Index entry flags.
const (
	ieSubnode = 0x01
	ieLast    = 0x02
)

// maxIndexDepth bounds the B+tree's depth: a directory of millions of
// entries is 4 or 5 levels deep.
const maxIndexDepth = 32

// dirIndex is a directory's $I30 index, opened for one walk or lookup.
type dirIndex struct {
	fs        *FS
	dir       uint64
	root      []byte // the root node's entries
	blockSize int64
	vcnShift  uint
	alloc     *stream
}

func (fs *FS) openIndex(n *node) (*dirIndex, error) {
	v := n.indexRoot
	if v == nil {
		return nil, fmt.Errorf("ntfs: directory %d has no $I30 index root: %w", n.num, guestfs.ErrCorrupt)
	}
	if len(v) < 32 {
		return nil, fmt.Errorf("ntfs: directory %d: index root of %d bytes: %w", n.num, len(v), guestfs.ErrCorrupt)
	}
	if typ := binary.LittleEndian.Uint32(v); typ != atFileName {
		return nil, fmt.Errorf("ntfs: directory %d: $I30 indexes attribute %#x: %w", n.num, typ, guestfs.ErrCorrupt)
	}
	if coll := binary.LittleEndian.Uint32(v[4:]); coll != 1 {
		return nil, fmt.Errorf("ntfs: directory %d: index collation %d: %w", n.num, coll, guestfs.ErrUnsupported)
	}
	ix := &dirIndex{fs: fs, dir: n.num, alloc: n.indexAlloc}
	ix.blockSize = int64(binary.LittleEndian.Uint32(v[8:]))
	if ix.blockSize < 512 || ix.blockSize > 64<<10 || !isPow2(ix.blockSize) {
		return nil, fmt.Errorf("ntfs: directory %d: index blocks of %d bytes: %w", n.num, ix.blockSize, guestfs.ErrCorrupt)
	}
	ix.vcnShift = 9
	if ix.blockSize >= fs.g.clusterSize {
		ix.vcnShift = fs.g.clusterShift
	}
	var err error
	if ix.root, err = nodeEntries(v[16:]); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index root: %w", n.num, err)
	}
	return ix, nil
}

// nodeEntries slices the entries of an index node from its header.
func nodeEntries(h []byte) ([]byte, error) {
	if len(h) < 16 {
		return nil, fmt.Errorf("node header of %d bytes: %w", len(h), guestfs.ErrCorrupt)
	}
	start := int64(binary.LittleEndian.Uint32(h))
	end := int64(binary.LittleEndian.Uint32(h[4:]))
	if start < 16 || start > end || end > int64(len(h)) {
		return nil, fmt.Errorf("node entries %d-%d of %d bytes: %w", start, end, len(h), guestfs.ErrCorrupt)
	}
	return h[start:end], nil
}

type blockKey struct {
	dir uint64
	vcn int64
}

// block returns the entries of the index block at vcn.
func (ix *dirIndex) block(vcn int64) ([]byte, error) {
	fs := ix.fs
	if b, ok := fs.blocks.Get(blockKey{ix.dir, vcn}); ok {
		return b, nil
	}
	if ix.alloc == nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d without an allocation: %w", ix.dir, vcn, guestfs.ErrCorrupt)
	}
	if vcn < 0 || vcn > ix.alloc.size>>ix.vcnShift || vcn<<ix.vcnShift > ix.alloc.size-ix.blockSize {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d past the allocation's %d bytes: %w", ix.dir, vcn, ix.alloc.size, guestfs.ErrCorrupt)
	}
	b := make([]byte, ix.blockSize)
	if err := fs.readStreamFull(ix.alloc, b, vcn<<ix.vcnShift); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", ix.dir, vcn, err)
	}
	if err := applyFixup(b, "INDX"); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", ix.dir, vcn, err)
	}
	if got := int64(binary.LittleEndian.Uint64(b[16:])); got != vcn {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d says it is %d: %w", ix.dir, vcn, got, guestfs.ErrCorrupt)
	}
	ents, err := nodeEntries(b[24:])
	if err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", ix.dir, vcn, err)
	}
	fs.blocks.Put(blockKey{ix.dir, vcn}, ents, len(b))
	return ents, nil
}

// ientry is one index entry.
type ientry struct {
	ref   uint64
	size  int
	flags uint16
	key   []byte // a $FILE_NAME; nil in the last entry
	child int64  // the sub-node's VCN, or -1
}

func (e *ientry) name() []byte { return e.key[66 : 66+2*int(e.key[64])] }
func (e *ientry) ns() uint8    { return e.key[65] }
func (e *ientry) fileAttrs() uint32 {
	return binary.LittleEndian.Uint32(e.key[56:])
}

// parseEntry parses the index entry at pos of a node's entries.
func parseEntry(r []byte, pos int) (ientry, error) {
	e := ientry{child: -1}
	if pos < 0 || pos+16 > len(r) {
		return e, fmt.Errorf("index entry at %d past the node's %d bytes: %w", pos, len(r), guestfs.ErrCorrupt)
	}
	e.ref = binary.LittleEndian.Uint64(r[pos:]) & refMask
	e.size = int(binary.LittleEndian.Uint16(r[pos+8:]))
	keyLen := int(binary.LittleEndian.Uint16(r[pos+10:]))
	e.flags = binary.LittleEndian.Uint16(r[pos+12:])
	if e.size < 16 || e.size%8 != 0 || pos+e.size > len(r) {
		return e, fmt.Errorf("index entry of %d bytes at %d: %w", e.size, pos, guestfs.ErrCorrupt)
	}
	room := e.size - 16
	if e.flags&ieSubnode != 0 {
		if room < 8 {
			return e, fmt.Errorf("index entry at %d: no room for its sub-node: %w", pos, guestfs.ErrCorrupt)
		}
		e.child = int64(binary.LittleEndian.Uint64(r[pos+e.size-8:]))
		room -= 8
	}
	if e.flags&ieLast == 0 {
		if keyLen < 66 || keyLen > room {
			return e, fmt.Errorf("index entry at %d: key of %d bytes: %w", pos, keyLen, guestfs.ErrCorrupt)
		}
		e.key = r[pos+16 : pos+16+keyLen]
		if 66+2*int(e.key[64]) > keyLen {
			return e, fmt.Errorf("index entry at %d: name past its key: %w", pos, guestfs.ErrCorrupt)
		}
	}
	return e, nil
}

// frame is a node on the path from the root to where an iteration is.
type frame struct {
	ents      []byte
	pos       int  // the next entry
	descended bool // its sub-node was walked
}

// iter walks a directory index in order, from its first entry or from
// the first at or after a name. A walk loads at most as many blocks as
// the allocation's clusters hold (each block of a sound tree once) and
// goes at most maxIndexDepth deep, so that a tree whose pointers loop or
// join ends in ErrCorrupt rather than running forever, in constant memory.
type iter struct {
	ix    *dirIndex
	stack []frame
	loads int64
}

// iter starts a walk at the first entry whose name is not before target
// (ignoring case), or at the first entry when target is nil.
func (ix *dirIndex) iter(target []uint16) (*iter, error) {
	it := &iter{ix: ix}
	ents := ix.root
	for {
		pos := 0
		var e ientry
		for {
			var err error
			if e, err = parseEntry(ents, pos); err != nil {
				return nil, fmt.Errorf("ntfs: directory %d: %w", ix.dir, err)
			}
			if e.flags&ieLast != 0 || target == nil || ix.fs.up.compare(target, e.name()) <= 0 {
				break
			}
			pos += e.size
		}
		f := frame{ents: ents, pos: pos}
		if e.child < 0 {
			it.stack = append(it.stack, f)
			return it, nil
		}
		f.descended = true
		it.stack = append(it.stack, f)
		var err error
		if ents, err = it.enter(e.child); err != nil {
			return nil, err
		}
	}
}

// enter loads the block at vcn as the next level down.
func (it *iter) enter(vcn int64) ([]byte, error) {
	ix := it.ix
	if len(it.stack) >= maxIndexDepth {
		return nil, fmt.Errorf("ntfs: directory %d: index deeper than %d levels: %w", ix.dir, maxIndexDepth, guestfs.ErrCorrupt)
	}
	var blocks int64
	if ix.alloc != nil {
		blocks = (ix.alloc.clusters<<ix.fs.g.clusterShift + ix.blockSize - 1) / ix.blockSize
	}
	if it.loads >= blocks {
		return nil, fmt.Errorf("ntfs: directory %d: index walk past its %d blocks (a loop?): %w", ix.dir, blocks, guestfs.ErrCorrupt)
	}
	it.loads++
	return ix.block(vcn)
}

// next returns the next entry in order; false at the end.
func (it *iter) next() (ientry, bool, error) {
	for len(it.stack) > 0 {
		f := &it.stack[len(it.stack)-1]
		e, err := parseEntry(f.ents, f.pos)
		if err != nil {
			return e, false, fmt.Errorf("ntfs: directory %d: %w", it.ix.dir, err)
		}
		if e.child >= 0 && !f.descended {
			f.descended = true
			ents, err := it.enter(e.child)
			if err != nil {
				return e, false, err
			}
			it.stack = append(it.stack, frame{ents: ents})
			continue
		}
		f.pos += e.size
		f.descended = false
		if e.flags&ieLast != 0 {
			it.stack = it.stack[:len(it.stack)-1]
			continue
		}
		return e, true, nil
	}
	return ientry{}, false, nil
}
