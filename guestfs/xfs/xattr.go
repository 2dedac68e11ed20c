package xfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// Attribute entry flags: the namespace, and states the kernel hides.
const (
	attrLocal      = 0x01 // value in the leaf (leaf entries only)
	attrRoot       = 0x02 // trusted.
	attrSecure     = 0x04 // security.
	attrParent     = 0x08 // a parent pointer, not a user-visible attribute
	attrIncomplete = 0x80 // being set or removed
)

// Linux's limits: one value, and the names listxattr can return.
const (
	maxXattrValue  = 64 << 10
	maxXattrList   = 64 << 10
	maxXattrValues = 32 << 20 // all the values of one file, a bound on memory
)

// xattrList gathers attributes as the kernel lists them.
type xattrList struct {
	ip        *inode
	out       []guestfs.Xattr
	nameBytes int
	valBytes  int
}

// add names an attribute by its namespace flags and appends it; an XFS
// ACL (trusted.SGI_ACL_*) also appears as the system.posix_acl_* the
// kernel derives from it, in the Linux xattr format.
func (l *xattrList) add(flags uint8, name, value []byte) error {
	if flags&(attrIncomplete|attrParent) != 0 {
		return nil
	}
	prefix := "user."
	switch {
	case flags&attrRoot != 0:
		prefix = "trusted."
		var sys string
		switch string(name) {
		case "SGI_ACL_FILE":
			sys = "system.posix_acl_access"
		case "SGI_ACL_DEFAULT":
			sys = "system.posix_acl_default"
		}
		if sys != "" {
			if v, ok := aclToLinux(value); ok {
				if err := l.append(sys, v); err != nil {
					return err
				}
			}
		}
	case flags&attrSecure != 0:
		prefix = "security."
	}
	return l.append(prefix+string(name), append([]byte(nil), value...))
}

func (l *xattrList) append(name string, value []byte) error {
	l.nameBytes += len(name) + 1
	l.valBytes += len(value)
	if l.nameBytes > maxXattrList || l.valBytes > maxXattrValues {
		return fmt.Errorf("xfs: inode %d: more extended attributes than Linux can list: %w", l.ip.ino, guestfs.ErrUnsupported)
	}
	l.out = append(l.out, guestfs.Xattr{Name: name, Value: value})
	return nil
}

// aclToLinux converts an XFS on-disk ACL (big-endian count, then tag, id,
// permissions per entry) to the little-endian posix_acl xattr format
// getxattr(2) returns, as the kernel does; ok is false for a malformed one.
func aclToLinux(b []byte) ([]byte, bool) {
	be, le := binary.BigEndian, binary.LittleEndian
	if len(b) < 4 {
		return nil, false
	}
	n := int(be.Uint32(b))
	if n > 25 || len(b) != 4+n*12 {
		return nil, false
	}
	out := make([]byte, 4, 4+n*8)
	le.PutUint32(out, 2)
	for i := 0; i < n; i++ {
		e := b[4+i*12:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		switch tag {
		case 0x02, 0x08: // ACL_USER, ACL_GROUP
		case 0x01, 0x04, 0x10, 0x20: // USER_OBJ, GROUP_OBJ, MASK, OTHER
			id = 0xffffffff
		default:
			return nil, false
		}
		out = le.AppendUint16(out, uint16(tag))
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, true
}

// Xattrs lists a file's extended attributes: short-form (in the inode), a
// leaf block, or a dabtree of leaves (node and btree attribute forks),
// with values stored in the leaf or in remote blocks.
func (f *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	ip, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if ip.afork == nil {
		return nil, nil
	}
	l := &xattrList{ip: ip}
	switch ip.aformat {
	case fmtLocal:
		err = f.sfAttrs(ip, l)
	case fmtExtents, fmtBtree:
		if ip.aformat == fmtExtents && len(ip.aext) == 0 {
			return nil, nil
		}
		err = f.leafAttrs(ip, l)
	}
	if err != nil {
		return nil, err
	}
	return l.out, nil
}

// sfAttrs reads short-form attributes: a header (total size, count) and
// entries of name length, value length, flags, name, value.
func (f *FS) sfAttrs(ip *inode, l *xattrList) error {
	b := ip.afork
	if len(b) < 4 {
		return corruptf("inode %d: short-form attributes header", ip.ino)
	}
	total, count := int(binary.BigEndian.Uint16(b)), int(b[2])
	if total < 4 || total > len(b) {
		return corruptf("inode %d: short-form attributes of %d bytes", ip.ino, total)
	}
	b = b[:total]
	pos := 4
	for i := 0; i < count; i++ {
		if pos+3 > len(b) {
			return corruptf("inode %d: short-form attribute %d past the fork", ip.ino, i)
		}
		nl, vl, fl := int(b[pos]), int(b[pos+1]), b[pos+2]
		end := pos + 3 + nl + vl
		if end > len(b) {
			return corruptf("inode %d: short-form attribute %d past the fork", ip.ino, i)
		}
		if err := l.add(fl, b[pos+3:pos+3+nl], b[pos+3+nl:end]); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// attrHdr returns the attribute leaf header's length and where its entry
// count sits.
func (f *FS) attrHdr() (hdr, countOff int) {
	if f.sb.v5 {
		return 80, 56
	}
	return 32, 12
}

// leafAttrs walks the attribute leaves from the leftmost one along their
// sibling links, each block once.
func (f *FS) leafAttrs(ip *inode, l *xattrList) error {
	lblk := uint64(0)
	be := binary.BigEndian
	for depth := 0; ; depth++ {
		b, err := f.forkBlock(ip, true, lblk, 1)
		if err != nil {
			return err
		}
		m := be.Uint16(b[8:])
		if f.isMagic16(m, attrLeafMagicV4, attrLeafMagicV5) {
			break
		}
		if !f.isMagic16(m, daNodeMagicV4, daNodeMagicV5) || depth >= maxDaDepth {
			return corruptf("inode %d: attribute block %d magic %#x at depth %d", ip.ino, lblk, m, depth)
		}
		hdr, off := f.daHdrLen(), 12
		if f.sb.v5 {
			off = 56
		}
		if count := int(be.Uint16(b[off:])); count == 0 || count > (len(b)-hdr)/8 {
			return corruptf("inode %d: attribute node with %d entries", ip.ino, count)
		}
		lblk = uint64(be.Uint32(b[hdr+4:]))
	}
	seen := map[uint64]bool{}
	for {
		if seen[lblk] || len(seen) > 1<<16 {
			return corruptf("inode %d: attribute leaves loop at block %d", ip.ino, lblk)
		}
		seen[lblk] = true
		b, err := f.forkBlock(ip, true, lblk, 1)
		if err != nil {
			return err
		}
		if m := be.Uint16(b[8:]); !f.isMagic16(m, attrLeafMagicV4, attrLeafMagicV5) {
			return corruptf("inode %d: attribute leaf %d magic %#x", ip.ino, lblk, m)
		}
		if err := f.leafBlockAttrs(ip, b, l); err != nil {
			return err
		}
		fwd := uint64(be.Uint32(b))
		if fwd == 0 {
			return nil
		}
		lblk = fwd
	}
}

// leafBlockAttrs reads one leaf's entries: hash, offset of the name
// structure, flags. A local name structure holds the value after the
// name; a remote one names the attribute-fork block where it starts.
func (f *FS) leafBlockAttrs(ip *inode, b []byte, l *xattrList) error {
	be := binary.BigEndian
	hdr, countOff := f.attrHdr()
	count := int(be.Uint16(b[countOff:]))
	if count > (len(b)-hdr)/8 {
		return corruptf("inode %d: attribute leaf with %d entries", ip.ino, count)
	}
	for i := 0; i < count; i++ {
		e := b[hdr+i*8:]
		idx, fl := int(be.Uint16(e[4:])), e[6]
		if fl&attrLocal != 0 {
			if idx+3 > len(b) {
				return corruptf("inode %d: attribute entry %d at %d", ip.ino, i, idx)
			}
			vl, nl := int(be.Uint16(b[idx:])), int(b[idx+2])
			if idx+3+nl+vl > len(b) {
				return corruptf("inode %d: attribute entry %d past its block", ip.ino, i)
			}
			if err := l.add(fl, b[idx+3:idx+3+nl], b[idx+3+nl:idx+3+nl+vl]); err != nil {
				return err
			}
			continue
		}
		if idx+9 > len(b) {
			return corruptf("inode %d: attribute entry %d at %d", ip.ino, i, idx)
		}
		vblk, vl, nl := uint64(be.Uint32(b[idx:])), be.Uint32(b[idx+4:]), int(b[idx+8])
		if idx+9+nl > len(b) {
			return corruptf("inode %d: attribute entry %d past its block", ip.ino, i)
		}
		if vl > maxXattrValue || fl&(attrIncomplete|attrParent) != 0 {
			continue // larger than Linux allows: left out
		}
		v, err := f.remoteValue(ip, vblk, int(vl))
		if err != nil {
			return err
		}
		if err := l.add(fl, b[idx+9:idx+9+nl], v); err != nil {
			return err
		}
	}
	return nil
}

// remoteValue reads a value kept in attribute-fork blocks from lblk on;
// on v5 each block starts with a header giving its owner, the value
// offset and byte count it holds, and a CRC of the block.
func (f *FS) remoteValue(ip *inode, lblk uint64, n int) ([]byte, error) {
	hdr := 0
	if f.sb.v5 {
		hdr = 56
	}
	per := int(f.sb.blockSize) - hdr
	out := make([]byte, 0, n)
	for i := uint64(0); len(out) < n; i++ {
		e, ok, _, err := f.mapBlock(ip, true, lblk+i)
		if err != nil {
			return nil, err
		}
		if !ok || e.unwritten {
			return nil, corruptf("inode %d: attribute value block %d not mapped", ip.ino, lblk+i)
		}
		lin := e.blk + lblk + i - e.off
		c, err := f.block(lin)
		if err != nil {
			return nil, err
		}
		b := c.data
		want := min(n-len(out), per)
		if f.sb.v5 {
			be := binary.BigEndian
			if be.Uint32(b) != rmtMagicAttr || int(be.Uint32(b[4:])) != len(out) || int(be.Uint32(b[8:])) != want ||
				be.Uint64(b[32:]) != ip.ino || be.Uint64(b[40:]) != f.daddr(lin) {
				return nil, corruptf("inode %d: attribute value block %d header", ip.ino, lblk+i)
			}
			if f.verify && c.checked.Load() != kindRemote {
				if !crcOK(b, 12) {
					return nil, corruptf("inode %d: attribute value block %d CRC mismatch", ip.ino, lblk+i)
				}
				c.checked.Store(kindRemote)
			}
		}
		out = append(out, b[hdr:hdr+want]...)
	}
	return out, nil
}
