package vmdk

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

var _ blockmap.Child = (*Image)(nil)

// Parent returns what a delta disk says about its parent, or nil for a
// disk that stands alone (and for every disk opened without
// Options.AllowParent, which refuses deltas).
//
// Names holds the descriptor's parentFileNameHint exactly as stored: VMware
// writes a name relative to the child's folder, but ESX and Workstation
// also write absolute host paths, Windows ones included; a delta that
// gives only a parentCID has no Names. Format is "vmdk": a VMDK delta
// lives on a VMDK (qemu, too, names the format of such a backing file
// "vmdk"), and Check refuses any other.
func (im *Image) Parent() *blockmap.Parent { return im.parent }

// CID is the content ID of the disk's descriptor as stored (8 hex digits
// by convention), "" when the descriptor has none. A delta disk's
// parentCID names the CID its parent had when the delta was taken: every
// write to the parent changes its CID, so a different one means the
// parent was modified (or is another disk) and the chain's bytes would be
// wrong.
func (im *Image) CID() string { return im.cid }

// parentRef builds the Parent of a delta disk named name whose descriptor
// is d.
//
// Check accepts only a *Image: qemu, the reference reader, fails every
// read that reaches a backing file of another format, since such a file
// has no CID to check (and qemu-img create refuses to write such a
// delta: "backing_file must be a vmdk image"). Parent CIDs are compared as 32-bit hex numbers, as
// qemu reads them (so "0badf00d", "BADF00D" and "badf00d" are the same).
// A delta that stores no parentCID (only a file name) has nothing to
// compare and accepts any VMDK parent; a parent without a CID cannot be
// verified against a delta that stores one and is refused (qemu does not
// even open a disk without a CID).
func (d *descriptor) parentRef(name string) *blockmap.Parent {
	p := &blockmap.Parent{Format: "vmdk"}
	if d.hasHint {
		p.Names = []string{d.parentHint}
	}
	want := d.parentCID
	label := blockmap.Quote(d.parentHint)
	if !d.hasHint {
		label = "of CID " + blockmap.Quote(want)
	}
	p.Check = func(m blockmap.Mapper) error {
		parent, ok := m.(*Image)
		if !ok {
			what := fmt.Sprintf("%T", m)
			if f, ok := m.(interface{ Format() string }); ok {
				what = f.Format()
			}
			return fmt.Errorf("vmdk: %s: parent %s is %s, not a VMDK; a VMDK delta reads through a VMDK parent only: %w",
				name, label, blockmap.Quote(what), blockmap.ErrUnsupported)
		}
		if want == "" {
			return nil
		}
		if parent.cid == "" {
			return fmt.Errorf("vmdk: %s: parentCID is %s, but parent %s has no CID to check it against: %w",
				name, blockmap.Quote(want), blockmap.Quote(parent.name), blockmap.ErrCorrupt)
		}
		if !sameCID(want, parent.cid) {
			return fmt.Errorf("vmdk: %s: parentCID is %s, but parent %s has CID %s: the parent changed after the delta was taken, or is another disk: %w",
				name, blockmap.Quote(want), blockmap.Quote(parent.name), blockmap.Quote(parent.cid), blockmap.ErrCorrupt)
		}
		return nil
	}
	return p
}

// sameCID compares two CIDs as qemu does, as 32-bit hex numbers, falling
// back to a case-insensitive text comparison when either is not one.
func sameCID(a, b string) bool {
	x, errA := strconv.ParseUint(strings.TrimSpace(a), 16, 32)
	y, errB := strconv.ParseUint(strings.TrimSpace(b), 16, 32)
	if errA == nil && errB == nil {
		return x == y
	}
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
