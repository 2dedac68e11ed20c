package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// fileTypes maps a directory entry's file_type to the mode's type bits.
var fileTypes = [8]uint32{0, guestfs.TypeRegular, guestfs.TypeDir, guestfs.TypeChar,
	guestfs.TypeBlock, guestfs.TypeFIFO, guestfs.TypeSocket, guestfs.TypeSymlink}

// errStop ends a scan early once a Lookup has found its name.
var errStop = errors.New("stop")

// dirent is one raw entry; name aliases the block it was parsed from.
type dirent struct {
	ino  uint32
	name []byte
	typ  uint8
}

// dirInode returns ino if it is a directory that can be listed.
func (fs *FS) dirInode(ino uint64) (*inode, error) {
	in, err := fs.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.fileType() != guestfs.TypeDir {
		return nil, fmt.Errorf("ext4: inode %d: %w", ino, guestfs.ErrNotDir)
	}
	if in.flags&inodeEncrypt != 0 {
		return nil, fmt.Errorf("ext4: directory %d is encrypted: %w", ino, guestfs.ErrUnsupported)
	}
	return in, nil
}

// ReadDir lists a directory in its on-disk order, one block at a time,
// so that a directory of any size streams through fn.
func (fs *FS) ReadDir(dir uint64, fn func(guestfs.DirEntry) error) error {
	in, err := fs.dirInode(dir)
	if err != nil {
		return err
	}
	return fs.scanDir(in, func(d dirent) error {
		if isDotName(d.name) {
			return nil
		}
		return fn(fs.dirEntry(d))
	})
}

func (fs *FS) dirEntry(d dirent) guestfs.DirEntry {
	e := guestfs.DirEntry{Name: string(d.name), Ino: uint64(d.ino)}
	if fs.sb.incompat&incompatFiletype != 0 {
		e.Type = fileTypes[d.typ&7]
	}
	return e
}

func isDotName(n []byte) bool {
	return len(n) == 1 && n[0] == '.' || len(n) == 2 && n[0] == '.' && n[1] == '.'
}

// Lookup finds name in dir: through the htree index when the directory
// has one, else by scanning it.
func (fs *FS) Lookup(dir uint64, name string) (guestfs.DirEntry, error) {
	in, err := fs.dirInode(dir)
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	notFound := fmt.Errorf("ext4: %q in directory %d: %w", name, dir, guestfs.ErrNotExist)
	if name == "" || len(name) > 255 || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return guestfs.DirEntry{}, notFound
	}
	if fs.indexed(in) {
		d, found, err := fs.htreeLookup(in, name)
		switch {
		case err == nil && found:
			return fs.dirEntry(d), nil
		case err == nil:
			return guestfs.DirEntry{}, notFound
		case !errors.Is(err, errBadIndex):
			return guestfs.DirEntry{}, err
		}
		fs.warn(fmt.Sprintf("directory %d: htree index unusable (%v); searched linearly", in.ino, err))
	}
	var got guestfs.DirEntry
	err = fs.scanDir(in, func(d dirent) error {
		if string(d.name) == name {
			got = fs.dirEntry(d)
			return errStop
		}
		return nil
	})
	if err == errStop {
		return got, nil
	}
	if err != nil {
		return guestfs.DirEntry{}, err
	}
	return guestfs.DirEntry{}, notFound
}

// indexed says whether Lookup may use the directory's htree: it has the
// index flag, the volume the dir_index feature, and names are hashed as
// stored (casefolded directories hash the folded name).
func (fs *FS) indexed(in *inode) bool {
	return in.flags&inodeIndex != 0 && in.flags&(inodeInlineData|inodeCasefold) == 0 &&
		fs.sb.compat&compatDirIndex != 0
}

// scanDir calls fn with every live entry of the directory, "." and ".."
// included, block by block.
func (fs *FS) scanDir(in *inode, fn func(dirent) error) error {
	if in.flags&inodeInlineData != 0 {
		return fs.scanInlineDir(in, fn)
	}
	bs := uint64(fs.bs)
	nblocks := (uint64(in.size) + bs - 1) / bs
	for lb := uint64(0); lb < nblocks; {
		phys, n, kind, err := fs.mapBlocks(in, lb, nblocks-lb)
		if err != nil {
			return err
		}
		if kind != runData {
			// The kernel skips a directory's holes too.
			lb += n
			continue
		}
		for i := uint64(0); i < n; i++ {
			b, err := fs.dirBlock(in, lb+i, phys+i)
			if err != nil {
				return err
			}
			if err := fs.parseDirBlock(in, b, lb+i, fn); err != nil {
				return err
			}
		}
		lb += n
	}
	return nil
}

// isDxNode says whether a block of an indexed directory is an htree
// interior node: one empty entry spanning the block, then the index.
func (fs *FS) isDxNode(in *inode, b []byte) bool {
	le := binary.LittleEndian
	return in.flags&inodeIndex != 0 && le.Uint32(b) == 0 && fs.recLen(le.Uint16(b[4:])) == int(fs.bs)
}

// dirBlock reads a directory leaf block and checks its checksum tail (once
// per directory while it stays cached). Index blocks are checked where the
// index is used.
func (fs *FS) dirBlock(in *inode, lb, phys uint64) ([]byte, error) {
	cb, err := fs.block(phys)
	if err != nil {
		return nil, fmt.Errorf("ext4: directory %d block %d: %w", in.ino, lb, err)
	}
	b := cb.data
	if !fs.sb.hasMetadataCsum || cb.verified.Load() == uint64(in.ino) {
		return b, nil
	}
	if (lb == 0 && in.flags&inodeIndex != 0) || fs.isDxNode(in, b) {
		return b, nil
	}
	le := binary.LittleEndian
	t := b[len(b)-12:]
	if le.Uint32(t) != 0 || le.Uint16(t[4:]) != 12 || t[6] != 0 || t[7] != 0xDE {
		return nil, fmt.Errorf("ext4: directory %d block %d: no checksum tail: %w", in.ino, lb, guestfs.ErrCorrupt)
	}
	if crc32c(in.seed, b[:len(b)-12]) != le.Uint32(t[8:]) {
		return nil, fmt.Errorf("ext4: directory %d block %d: checksum mismatch: %w", in.ino, lb, guestfs.ErrCorrupt)
	}
	cb.verified.Store(uint64(in.ino))
	return b, nil
}

// recLen decodes rec_len: 64 KiB blocks store a full-block entry as 65535
// or 0, and larger lengths with their two low bits as bits 16-17.
func (fs *FS) recLen(v uint16) int {
	if fs.bs < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return 65536
	}
	return int(v&65532) | int(v&3)<<16
}

// parseDirBlock calls fn with each entry of one block, checking each as
// the kernel's ext4_check_dir_entry does: the record inside the block,
// long enough for its name, 4-byte aligned.
func (fs *FS) parseDirBlock(in *inode, b []byte, lb uint64, fn func(dirent) error) error {
	if fs.isDxNode(in, b) {
		// An htree interior node holds no entries. (The root, block 0,
		// holds "." and ".." before the index, which ".." spans.)
		return nil
	}
	return fs.parseDirents(in, b, lb, fn)
}

func (fs *FS) parseDirents(in *inode, b []byte, lb uint64, fn func(dirent) error) error {
	le := binary.LittleEndian
	hasType := fs.sb.incompat&incompatFiletype != 0
	for off := 0; off+8 <= len(b); {
		ino := le.Uint32(b[off:])
		rl := fs.recLen(le.Uint16(b[off+4:]))
		nameLen := int(b[off+6])
		if !hasType {
			nameLen |= int(b[off+7]) << 8
		}
		if rl < 12 || rl%4 != 0 || off+rl > len(b) || 8+nameLen > rl {
			return fmt.Errorf("ext4: directory %d block %d: entry at %d: record length %d, name length %d: %w",
				in.ino, lb, off, rl, nameLen, guestfs.ErrCorrupt)
		}
		if ino != 0 {
			name := b[off+8 : off+8+nameLen]
			if nameLen == 0 || ino > fs.sb.inodesCount || strings.ContainsAny(string(name), "/\x00") {
				return fmt.Errorf("ext4: directory %d block %d: entry %q at %d (inode %d): %w", in.ino, lb, name, off, ino, guestfs.ErrCorrupt)
			}
			d := dirent{ino: ino, name: name}
			if hasType {
				d.typ = b[off+7]
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		off += rl
	}
	return nil
}

// scanInlineDir lists a directory stored in its inode: the parent's inode
// number in i_block's first four bytes, entries in the other 56, and more
// entries in the system.data attribute.
func (fs *FS) scanInlineDir(in *inode, fn func(dirent) error) error {
	d, err := fs.inlineData(in)
	if err != nil {
		return err
	}
	if err := fn(dirent{ino: in.ino, name: []byte("."), typ: 2}); err != nil {
		return err
	}
	parent := binary.LittleEndian.Uint32(d)
	if err := fn(dirent{ino: parent, name: []byte(".."), typ: 2}); err != nil {
		return err
	}
	if err := fs.parseDirents(in, d[4:60], 0, fn); err != nil {
		return err
	}
	if len(d) > 60 {
		return fs.parseDirents(in, d[60:], 0, fn)
	}
	return nil
}
