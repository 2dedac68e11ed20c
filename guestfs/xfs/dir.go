package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// A directory's file space: data blocks from offset 0, the hash-ordered
// leaf (index) blocks from 32 GiB, the free-space index from 64 GiB.
const (
	dirLeafOffset = 1 << 35
	dirFreeOffset = 1 << 36
)

func (f *FS) leafFirstDB() uint64 { return dirLeafOffset >> f.sb.blockLog }

// ftypeMode maps a directory entry's file type byte to the mode's type
// bits (0 where the directory does not record it).
var ftypeMode = [...]uint32{0, guestfs.TypeRegular, guestfs.TypeDir, guestfs.TypeChar, guestfs.TypeBlock,
	guestfs.TypeFIFO, guestfs.TypeSocket, guestfs.TypeSymlink}

func entryType(ft uint8) uint32 {
	if int(ft) < len(ftypeMode) {
		return ftypeMode[ft]
	}
	return 0
}

// dirInode returns a directory's inode, or ErrNotDir.
func (f *FS) dirInode(ino uint64) (*inode, error) {
	ip, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if !ip.isDir() {
		return nil, fmt.Errorf("xfs: inode %d: %w", ino, guestfs.ErrNotDir)
	}
	return ip, nil
}

// checkName rejects names the kernel's verifiers reject: empty, or
// holding a slash or a NUL.
func checkName(ip *inode, name []byte) error {
	if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("xfs: directory %d: entry name %q: %w", ip.ino, name, guestfs.ErrCorrupt)
	}
	return nil
}

func isDots(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}

// ReadDir calls fn for each entry of a directory in its on-disk order,
// one directory block at a time, so that a huge directory streams.
func (f *FS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	ip, err := f.dirInode(dir)
	if err != nil {
		return err
	}
	emit := func(name []byte, ino uint64, ft uint8) error {
		if isDots(name) {
			return nil
		}
		return fn(guestfs.DirEntry{Name: string(name), Ino: ino, Type: entryType(ft)})
	}
	if ip.format == fmtLocal {
		_, err := f.sfEntries(ip, func(name []byte, ino uint64, ft uint8) (bool, error) {
			return false, emit(name, ino, ft)
		})
		return err
	}
	fsbs := f.sb.dirBlkFSBs()
	end := f.leafFirstDB()
	for lblk := uint64(0); lblk < end; {
		e, ok, next, err := f.mapBlock(ip, false, lblk)
		if err != nil {
			return err
		}
		if !ok {
			lblk = next
			continue
		}
		db := (max(lblk, e.off) + fsbs - 1) &^ (fsbs - 1)
		for ; db < e.off+e.len && db < end; db += fsbs {
			b, err := f.forkBlock(ip, false, db, fsbs)
			if err != nil {
				return err
			}
			if err := f.dataEntries(ip, b, func(_ int, name []byte, ino uint64, ft uint8) (bool, error) {
				return false, emit(name, ino, ft)
			}); err != nil {
				return err
			}
		}
		lblk = e.off + e.len
	}
	return nil
}

// sfEntries walks a short-form directory (entries in the inode's data
// fork) until fn says stop; it returns the parent's inode number.
func (f *FS) sfEntries(ip *inode, fn func(name []byte, ino uint64, ft uint8) (bool, error)) (uint64, error) {
	b := ip.dfork
	if ip.size < int64(len(b)) {
		b = b[:ip.size]
	}
	bad := func(what string) (uint64, error) {
		return 0, fmt.Errorf("xfs: directory %d: short-form %s: %w", ip.ino, what, guestfs.ErrCorrupt)
	}
	if len(b) < 6 {
		return bad("header")
	}
	count, inoSize := int(b[0]), 4
	if b[1] != 0 {
		inoSize = 8
	}
	getIno := func(p []byte) uint64 {
		if inoSize == 8 {
			return binary.BigEndian.Uint64(p) & (1<<56 - 1)
		}
		return uint64(binary.BigEndian.Uint32(p))
	}
	if len(b) < 2+inoSize {
		return bad("header")
	}
	parent := getIno(b[2:])
	pos := 2 + inoSize
	ft := 0
	if f.sb.ftype {
		ft = 1
	}
	for i := 0; i < count; i++ {
		if pos+3 > len(b) {
			return bad("entry past the fork")
		}
		n := int(b[pos])
		nameAt := pos + 3
		end := nameAt + n + ft + inoSize
		if end > len(b) {
			return bad("entry past the fork")
		}
		name := b[nameAt : nameAt+n]
		if err := checkName(ip, name); err != nil {
			return 0, err
		}
		var t uint8
		if ft == 1 {
			t = b[nameAt+n]
		}
		stop, err := fn(name, getIno(b[nameAt+n+ft:]), t)
		if err != nil || stop {
			return parent, err
		}
		pos = end
	}
	return parent, nil
}

// dataHdrLen is the header length of a directory data or block block.
func (f *FS) dataHdrLen() int {
	if f.sb.v5 {
		return 64
	}
	return 16
}

// dataEnd checks a data block's magic and returns where its entries end:
// a single-block directory keeps its hash index and a tail after them.
func (f *FS) dataEnd(ip *inode, b []byte) (int, error) {
	magic := binary.BigEndian.Uint32(b)
	hdr := f.dataHdrLen()
	switch {
	case magic == dirBlockMagicV4 && !f.sb.v5, magic == dirBlockMagicV5 && f.sb.v5:
		count := uint64(binary.BigEndian.Uint32(b[len(b)-8:]))
		if count > uint64(len(b)-hdr-8)/8 {
			return 0, fmt.Errorf("xfs: directory %d: block with %d index entries: %w", ip.ino, count, guestfs.ErrCorrupt)
		}
		return len(b) - 8 - int(count)*8, nil
	case magic == dirDataMagicV4 && !f.sb.v5, magic == dirDataMagicV5 && f.sb.v5:
		return len(b), nil
	}
	return 0, fmt.Errorf("xfs: directory %d: data block magic %#x: %w", ip.ino, magic, guestfs.ErrCorrupt)
}

// dataEntries walks the entries of a directory data block until fn says
// stop, giving each entry's offset in the block.
func (f *FS) dataEntries(ip *inode, b []byte, fn func(off int, name []byte, ino uint64, ft uint8) (bool, error)) error {
	end, err := f.dataEnd(ip, b)
	if err != nil {
		return err
	}
	for pos := f.dataHdrLen(); pos < end; {
		if pos+2 > end {
			return fmt.Errorf("xfs: directory %d: entry at %d: %w", ip.ino, pos, guestfs.ErrCorrupt)
		}
		if binary.BigEndian.Uint16(b[pos:]) == 0xffff {
			// An unused region: freetag, length, ..., tag.
			if pos+4 > end {
				return fmt.Errorf("xfs: directory %d: free region at %d: %w", ip.ino, pos, guestfs.ErrCorrupt)
			}
			n := int(binary.BigEndian.Uint16(b[pos+2:]))
			if n < 8 || n%8 != 0 || n > end-pos {
				return fmt.Errorf("xfs: directory %d: free region of %d bytes at %d: %w", ip.ino, n, pos, guestfs.ErrCorrupt)
			}
			pos += n
			continue
		}
		name, ino, ft, size, err := f.dataEntryAt(ip, b[:end], pos)
		if err != nil {
			return err
		}
		if stop, err := fn(pos, name, ino, ft); err != nil || stop {
			return err
		}
		pos += size
	}
	return nil
}

// dataEntryAt parses the entry at pos: inode number, name length, name,
// file type (with ftype), padding to 8 bytes, and a 2-byte tag.
func (f *FS) dataEntryAt(ip *inode, b []byte, pos int) (name []byte, ino uint64, ft uint8, size int, err error) {
	if pos < 0 || pos+9 > len(b) {
		return nil, 0, 0, 0, fmt.Errorf("xfs: directory %d: entry at %d: %w", ip.ino, pos, guestfs.ErrCorrupt)
	}
	n := int(b[pos+8])
	ftLen := 0
	if f.sb.ftype {
		ftLen = 1
	}
	size = (8 + 1 + n + ftLen + 2 + 7) &^ 7
	if size > len(b)-pos {
		return nil, 0, 0, 0, fmt.Errorf("xfs: directory %d: entry at %d past its block: %w", ip.ino, pos, guestfs.ErrCorrupt)
	}
	name = b[pos+9 : pos+9+n]
	if err := checkName(ip, name); err != nil {
		return nil, 0, 0, 0, err
	}
	if ftLen == 1 {
		ft = b[pos+9+n]
	}
	return name, binary.BigEndian.Uint64(b[pos:]), ft, size, nil
}
