package ext4

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovfmount/ovfmount/guestfs"
)

const (
	xattrMagic     = 0xEA020000
	xattrHeaderLen = 32 // of an xattr block
	maxXattrValue  = 64 << 10
	maxXattrTotal  = 4 << 20

	xattrIndexUser       = 1
	xattrIndexACLAccess  = 2
	xattrIndexACLDefault = 3
	xattrIndexTrusted    = 4
	xattrIndexSecurity   = 6
	xattrIndexSystem     = 7
	xattrIndexHurd       = 10
)

// xattrPrefixes are the name spaces the kernel lists, by on-disk index.
// system.data (index 7, inline data), richacl and encryption context are
// internal to ext4 and the kernel does not list them; neither do we.
var xattrPrefixes = map[uint8]string{
	xattrIndexUser:       "user.",
	xattrIndexACLAccess:  "system.posix_acl_access",
	xattrIndexACLDefault: "system.posix_acl_default",
	xattrIndexTrusted:    "trusted.",
	xattrIndexSecurity:   "security.",
	xattrIndexHurd:       "gnu.",
}

// xattrEntry is one parsed entry; value is resolved lazily because an
// ea_inode value lives in another inode.
type xattrEntry struct {
	index     uint8
	name      []byte
	value     []byte // in-place value (nil when valueInum is set)
	valueInum uint32
	valueSize uint32
}

// parseXattrEntries reads the entry table of an in-inode area or a block.
// entries is the table (from its first entry on), values the buffer the
// value offsets count from. Every offset is checked against both.
func parseXattrEntries(ino uint32, entries, values []byte, fn func(xattrEntry) error) error {
	le := binary.LittleEndian
	off := 0
	for off+4 <= len(entries) && le.Uint32(entries[off:]) != 0 {
		if off+16 > len(entries) {
			return fmt.Errorf("ext4: inode %d: xattr entry at %d overruns its area: %w", ino, off, guestfs.ErrCorrupt)
		}
		e := entries[off:]
		nameLen := int(e[0])
		if off+16+nameLen > len(entries) {
			return fmt.Errorf("ext4: inode %d: xattr name at %d overruns its area: %w", ino, off, guestfs.ErrCorrupt)
		}
		x := xattrEntry{index: e[1], name: e[16 : 16+nameLen], valueInum: le.Uint32(e[4:]), valueSize: le.Uint32(e[8:])}
		if x.valueInum == 0 {
			vo, vs := int64(le.Uint16(e[2:])), int64(x.valueSize)
			if vo+vs > int64(len(values)) {
				return fmt.Errorf("ext4: inode %d: xattr value of %d bytes at %d overruns its area: %w", ino, vs, vo, guestfs.ErrCorrupt)
			}
			x.value = values[vo : vo+vs]
		}
		if err := fn(x); err != nil {
			return err
		}
		off += (16 + nameLen + 3) &^ 3
	}
	return nil
}

// eachXattr calls fn with each entry of the inode: those in the inode
// first, then those of its xattr block, as the kernel lists them.
func (fs *FS) eachXattr(in *inode, fn func(xattrEntry) error) error {
	if in.xattrs != nil {
		if err := parseXattrEntries(in.ino, in.xattrs, in.xattrs, fn); err != nil {
			return err
		}
	}
	if in.fileACL == 0 {
		return nil
	}
	cb, err := fs.block(in.fileACL)
	if err != nil {
		return fmt.Errorf("ext4: inode %d: xattr block: %w", in.ino, err)
	}
	d := cb.data
	le := binary.LittleEndian
	if le.Uint32(d) != xattrMagic || le.Uint32(d[8:]) != 1 {
		return fmt.Errorf("ext4: inode %d: xattr block %d: bad header: %w", in.ino, in.fileACL, guestfs.ErrCorrupt)
	}
	if fs.sb.hasMetadataCsum && cb.verified.Load() != verifiedAny {
		c := crc32cU64(fs.csumSeed, in.fileACL)
		if crc32cSkip(c, d, 0x10, 4) != le.Uint32(d[0x10:]) {
			return fmt.Errorf("ext4: inode %d: xattr block %d: checksum mismatch: %w", in.ino, in.fileACL, guestfs.ErrCorrupt)
		}
		cb.verified.Store(verifiedAny)
	}
	return parseXattrEntries(in.ino, d[xattrHeaderLen:], d, fn)
}

// Xattrs lists the attributes the kernel lists, under their Linux names;
// POSIX ACLs are converted from ext4's compact form to the form getxattr
// returns. Values over 64 KiB are left out.
func (fs *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	in, err := fs.inode(ino)
	if err != nil {
		return nil, err
	}
	var out []guestfs.Xattr
	total := 0
	err = fs.eachXattr(in, func(x xattrEntry) error {
		prefix, ok := xattrPrefixes[x.index]
		if !ok || x.valueSize > maxXattrValue {
			return nil
		}
		// Entries may share a value or an EA inode: bound what one
		// listing copies, far above what a real file carries.
		if total += int(x.valueSize) + len(x.name); total > maxXattrTotal {
			return fmt.Errorf("ext4: inode %d: more than %d bytes of xattrs: %w", ino, maxXattrTotal, guestfs.ErrCorrupt)
		}
		name := prefix + string(x.name)
		if x.index == xattrIndexACLAccess || x.index == xattrIndexACLDefault {
			name = prefix // the ACL names carry no suffix
		}
		v, err := fs.xattrValue(in, x)
		if err != nil {
			return err
		}
		if x.index == xattrIndexACLAccess || x.index == xattrIndexACLDefault {
			if v, err = aclToXattr(v); err != nil {
				return fmt.Errorf("ext4: inode %d: %s: %w", ino, name, err)
			}
		}
		out = append(out, guestfs.Xattr{Name: name, Value: v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// xattrValue copies an entry's value: in place, or (ea_inode) the data of
// the inode holding it.
func (fs *FS) xattrValue(in *inode, x xattrEntry) ([]byte, error) {
	if x.valueInum == 0 {
		return append([]byte{}, x.value...), nil
	}
	if fs.sb.incompat&incompatEAInode == 0 {
		return nil, fmt.Errorf("ext4: inode %d: xattr value in inode %d without ea_inode: %w", in.ino, x.valueInum, guestfs.ErrCorrupt)
	}
	vin, err := fs.inode(uint64(x.valueInum))
	if err != nil {
		return nil, fmt.Errorf("ext4: inode %d: xattr value inode: %w", in.ino, err)
	}
	if vin.flags&inodeEAInode == 0 || vin.fileType() != guestfs.TypeRegular || vin.size != int64(x.valueSize) {
		return nil, fmt.Errorf("ext4: inode %d: xattr value inode %d does not match: %w", in.ino, x.valueInum, guestfs.ErrCorrupt)
	}
	f, err := fs.openData(vin)
	if err != nil {
		return nil, err
	}
	v := make([]byte, x.valueSize) // at most maxXattrValue: checked by the caller
	if _, err := f.ReadAt(v, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return v, nil
}

// inlineData is the content of an inode with inline data: the 60 bytes of
// i_block, then the value of its system.data attribute.
func (fs *FS) inlineData(in *inode) ([]byte, error) {
	out := append([]byte{}, in.block[:]...)
	if in.xattrs == nil {
		return out, nil
	}
	err := parseXattrEntries(in.ino, in.xattrs, in.xattrs, func(x xattrEntry) error {
		if x.index == xattrIndexSystem && string(x.name) == "data" && x.valueInum == 0 {
			out = append(out, x.value...)
		}
		return nil
	})
	return out, err
}

// aclToXattr converts an ACL from ext4's on-disk form (version 1, 4-byte
// entries for the owner, group, mask and other, 8-byte ones for named
// users and groups) to the xattr form the kernel returns (version 2, all
// entries 8 bytes, ACL_UNDEFINED_ID where there is no id).
func aclToXattr(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(b) < 4 || le.Uint32(b) != 1 {
		return nil, fmt.Errorf("ACL header: %w", guestfs.ErrCorrupt)
	}
	out := make([]byte, 4, 4+2*len(b))
	le.PutUint32(out, 2)
	for off := 4; off < len(b); {
		if off+4 > len(b) {
			return nil, fmt.Errorf("ACL entry at %d: %w", off, guestfs.ErrCorrupt)
		}
		tag, perm := le.Uint16(b[off:]), le.Uint16(b[off+2:])
		id := uint32(0xFFFFFFFF)
		switch tag {
		case 0x01, 0x04, 0x10, 0x20: // user_obj, group_obj, mask, other
			off += 4
		case 0x02, 0x08: // user, group
			if off+8 > len(b) {
				return nil, fmt.Errorf("ACL entry at %d: %w", off, guestfs.ErrCorrupt)
			}
			id = le.Uint32(b[off+4:])
			off += 8
		default:
			return nil, fmt.Errorf("ACL tag %#x: %w", tag, guestfs.ErrCorrupt)
		}
		var e [8]byte
		le.PutUint16(e[0:], tag)
		le.PutUint16(e[2:], perm)
		le.PutUint32(e[4:], id)
		out = append(out, e[:]...)
	}
	return out, nil
}
