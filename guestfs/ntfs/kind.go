package ntfs

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/guestfs"
)

// FILE_ATTRIBUTE_* flags of $STANDARD_INFORMATION and index keys.
const (
	faReadOnly   = 0x0001
	faHidden     = 0x0002
	faSystem     = 0x0004
	faArchive    = 0x0020
	faSparse     = 0x0200
	faReparse    = 0x0400
	faCompressed = 0x0800
	faEncrypted  = 0x4000
	faDupDir     = 0x10000000 // in index keys: the file is a directory
)

// Reparse tags this reader interprets.
const (
	tagMountPoint = 0xa0000003
	tagSymlink    = 0xa000000c
	tagLXSymlink  = 0xa000001d
	tagAFUnix     = 0x80000023
	tagLXFIFO     = 0x80000024
	tagLXChr      = 0x80000025
	tagLXBlk      = 0x80000026
	tagDedup      = 0x80000013
	tagWOF        = 0x80000017
)

// intxMaxData bounds an Interix special file's data, as ntfs-3g does: an
// 8-byte magic and a target of up to 4096 UTF-16 units.
const intxMaxData = 8 + 2*4096

// kind is what a file is, beyond NTFS's file-or-directory: the POSIX type,
// a device number, a symlink's target, or why its data cannot be read.
type kind struct {
	typ         uint32
	rdev        uint64
	target      string
	unsupported string
}

// kindOf works out a file's type: a reparse point's tag first (symlinks,
// junctions, WSL's special files), then the Interix special files
// ntfs-3g writes (system files with a magic in their data), then
// directory or regular file.
func (fs *FS) kindOf(n *node) (kind, error) {
	if n.reparse != nil {
		k, ok, err := fs.reparseKind(n)
		if err != nil || ok {
			return k, err
		}
	}
	if n.isDir() {
		return kind{typ: guestfs.TypeDir}, nil
	}
	if n.si.attrs&faSystem != 0 && n.data != nil && !n.data.encrypted() {
		k, ok, err := fs.interixKind(n)
		if err != nil || ok {
			return k, err
		}
	}
	return kind{typ: guestfs.TypeRegular}, nil
}

// reparseKind interprets a reparse point; false for tags that leave the
// file what it is.
func (fs *FS) reparseKind(n *node) (kind, bool, error) {
	v := n.reparse
	if len(v) < 8 {
		return kind{}, false, fmt.Errorf("ntfs: file %d: reparse point of %d bytes: %w", n.num, len(v), guestfs.ErrCorrupt)
	}
	tag := binary.LittleEndian.Uint32(v)
	dlen := int(binary.LittleEndian.Uint16(v[4:]))
	if 8+dlen > len(v) {
		return kind{}, false, fmt.Errorf("ntfs: file %d: reparse data of %d bytes past its %d: %w", n.num, dlen, len(v), guestfs.ErrCorrupt)
	}
	d := v[8 : 8+dlen]
	switch tag {
	case tagSymlink, tagMountPoint:
		t, err := fs.windowsTarget(n, tag, d)
		if err != nil {
			return kind{}, false, err
		}
		return kind{typ: guestfs.TypeSymlink, target: t}, true, nil
	case tagLXSymlink:
		if len(d) < 4 {
			return kind{}, false, fmt.Errorf("ntfs: file %d: WSL symlink of %d bytes: %w", n.num, len(d), guestfs.ErrCorrupt)
		}
		return kind{typ: guestfs.TypeSymlink, target: string(d[4:])}, true, nil
	case tagAFUnix:
		return kind{typ: guestfs.TypeSocket}, true, nil
	case tagLXFIFO:
		return kind{typ: guestfs.TypeFIFO}, true, nil
	case tagLXChr, tagLXBlk:
		k := kind{typ: guestfs.TypeChar}
		if tag == tagLXBlk {
			k.typ = guestfs.TypeBlock
		}
		if dev, ok := lxEA(n.ea, "$LXDEV"); ok && len(dev) >= 8 {
			k.rdev = unix.Mkdev(binary.LittleEndian.Uint32(dev), binary.LittleEndian.Uint32(dev[4:]))
		}
		return k, true, nil
	case tagWOF:
		return kind{typ: fileOrDir(n), unsupported: "compressed by Windows Overlay Filter (WOF)"}, true, nil
	case tagDedup:
		return kind{typ: fileOrDir(n), unsupported: "deduplicated (its data is in the volume's chunk store)"}, true, nil
	}
	return kind{}, false, nil
}

func fileOrDir(n *node) uint32 {
	if n.isDir() {
		return guestfs.TypeDir
	}
	return guestfs.TypeRegular
}

// interixKind recognises the special files ntfs-3g creates by default
// (and Interix/SFU did): system files that are empty (a FIFO), of one byte
// (a socket), or that start with a magic naming a symlink or device.
func (fs *FS) interixKind(n *node) (kind, bool, error) {
	size := n.data.size
	if n.si.attrs&faHidden == 0 {
		switch size {
		case 0:
			return kind{typ: guestfs.TypeFIFO}, true, nil
		case 1:
			return kind{typ: guestfs.TypeSocket}, true, nil
		}
	}
	if size <= 8 || size > intxMaxData {
		return kind{}, false, nil
	}
	b := make([]byte, size)
	if err := fs.readStreamFull(n.data, b, 0); err != nil {
		return kind{}, false, fmt.Errorf("ntfs: file %d: %w", n.num, err)
	}
	switch string(b[:8]) {
	case "IntxLNK\x01":
		return kind{typ: guestfs.TypeSymlink, target: decodeName(b[8:])}, true, nil
	case "IntxBLK\x00", "IntxCHR\x00":
		if size != 24 {
			return kind{}, false, nil
		}
		k := kind{typ: guestfs.TypeChar}
		if b[4] == 'B' {
			k.typ = guestfs.TypeBlock
		}
		k.rdev = unix.Mkdev(uint32(binary.LittleEndian.Uint64(b[8:])), uint32(binary.LittleEndian.Uint64(b[16:])))
		return k, true, nil
	}
	return kind{}, false, nil
}

// windowsTarget renders the target of a Windows symlink or junction as a
// POSIX path (see the package doc): a relative symlink with its
// backslashes made slashes; a path on a drive ("\??\C:\dir\file") or
// rooted ("\dir\file") relative to the link's directory, through the
// volume's root ("../../dir/file"); anything else (UNC paths, volume
// GUIDs) as stored, with slashes.
func (fs *FS) windowsTarget(n *node, tag uint32, d []byte) (string, error) {
	hdr := 8
	if tag == tagSymlink {
		hdr = 12
	}
	if len(d) < hdr {
		return "", fmt.Errorf("ntfs: file %d: reparse data of %d bytes: %w", n.num, len(d), guestfs.ErrCorrupt)
	}
	off := int(binary.LittleEndian.Uint16(d))
	l := int(binary.LittleEndian.Uint16(d[2:]))
	buf := d[hdr:]
	if off+l > len(buf) || l%2 != 0 {
		return "", fmt.Errorf("ntfs: file %d: link target at %d of %d bytes past its %d: %w", n.num, off, l, len(buf), guestfs.ErrCorrupt)
	}
	sub := decodeName(buf[off : off+l])
	relative := tag == tagSymlink && binary.LittleEndian.Uint32(d[8:])&1 != 0
	slashed := strings.ReplaceAll(sub, `\`, "/")
	var rest string
	switch {
	case relative && !strings.HasPrefix(sub, `\`):
		return slashed, nil
	case relative:
		rest = sub
	case len(sub) >= 6 && sub[:4] == `\??\` && sub[5] == ':' && isLetter(sub[4]) && (len(sub) == 6 || sub[6] == '\\'):
		rest = sub[6:]
	default:
		return slashed, nil
	}
	depth, err := fs.depth(n)
	if err != nil {
		return "", err
	}
	rest = strings.Trim(strings.ReplaceAll(rest, `\`, "/"), "/")
	up := strings.TrimSuffix(strings.Repeat("../", depth), "/")
	switch {
	case up == "" && rest == "":
		return ".", nil
	case up == "":
		return rest, nil
	case rest == "":
		return up, nil
	}
	return up + "/" + rest, nil
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// depth counts the directories between file n's directory and the root,
// through the parent of its first name that is not a DOS alias.
func (fs *FS) depth(n *node) (int, error) {
	cur := n
	for d := 0; d <= 1024; d++ {
		p, ok := primaryParent(cur)
		if !ok {
			return 0, fmt.Errorf("ntfs: file %d has no name: %w", cur.num, guestfs.ErrCorrupt)
		}
		if p == fileRoot {
			return d, nil
		}
		var err error
		if cur, err = fs.node(p); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("ntfs: file %d: its parents loop: %w", n.num, guestfs.ErrCorrupt)
}

func primaryParent(n *node) (uint64, bool) {
	for _, fn := range n.names {
		if fn.ns != nsDOS {
			return fn.parent, true
		}
	}
	return 0, false
}

// lxEA finds one of the extended attributes WSL keeps POSIX metadata in
// ($LXUID, $LXGID, $LXMOD, $LXDEV) in an $EA value.
func lxEA(ea []byte, name string) ([]byte, bool) {
	for off := 0; off+8 <= len(ea); {
		next := int(binary.LittleEndian.Uint32(ea[off:]))
		nl := int(ea[off+5])
		vl := int(binary.LittleEndian.Uint16(ea[off+6:]))
		if off+8+nl+1+vl <= len(ea) && string(ea[off+8:off+8+nl]) == name {
			return ea[off+8+nl+1 : off+8+nl+1+vl], true
		}
		if next <= 0 {
			break
		}
		off += next
	}
	return nil, false
}

// lxUint32 reads a 32-bit WSL attribute.
func lxUint32(ea []byte, name string) (uint32, bool) {
	v, ok := lxEA(ea, name)
	if !ok || len(v) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v), true
}
