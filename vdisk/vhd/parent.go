package vhd

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ovfmount/ovfmount/lru"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// locatorRank orders the parent locators a differencing disk may carry,
// most useful first: the relative Windows path (the parent normally sits
// next to the child, which is also how an appliance package holds them),
// the absolute one, their deprecated single-byte forms, then the Mac OS X
// file URL. "Mac " locators hold a binary Mac OS alias record, not a path,
// and are skipped.
var locatorRank = map[string]int{"W2ru": 0, "W2ku": 1, "Wi2r": 2, "Wi2k": 3, "MacX": 4}

// vhdEpoch is the origin of VHD time stamps.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// openChild records what a differencing disk says about its parent, from
// the dynamic header h: the Parent Unique ID that Check compares with the
// parent's footer, and the names to look the parent up by.
func (img *Image) openChild(r io.ReaderAt, size int64, h *dynHeader) {
	img.bitmaps = lru.New[int64, []byte](bitmapCacheBytes)
	var parentID [16]byte
	copy(parentID[:], h.raw[40:56])

	type loc struct {
		rank int
		path string
	}
	var locs []loc
	be := binary.BigEndian
	for i := range locatorCount {
		e := h.raw[locatorOff+i*locatorSize:][:locatorSize]
		code := string(e[:4])
		length := be.Uint32(e[8:])
		off := be.Uint64(e[16:])
		if be.Uint32(e[:4]) == 0 || length == 0 {
			continue
		}
		rank, known := locatorRank[code]
		p, ok := readLocator(r, size, code, off, length)
		switch {
		case !known:
			img.warnings = append(img.warnings, fmt.Sprintf("vhd: parent locator %d has platform code %q, which holds no path this package reads; skipped", i, code))
		case !ok:
			img.warnings = append(img.warnings, fmt.Sprintf("vhd: parent locator %d (%q, %d bytes at %d) lies outside the image or exceeds %d bytes; skipped",
				i, code, length, off, maxLocatorBytes))
		case p != "":
			locs = append(locs, loc{rank, p})
		}
	}
	slices.SortStableFunc(locs, func(a, b loc) int { return a.rank - b.rank })
	var names []string
	for _, l := range locs {
		names = append(names, l.path)
	}
	if name := decodeUTF16(h.raw[parentNameOff:parentNameOff+parentNameSize], binary.BigEndian); name != "" {
		names = append(names, name)
	}
	names = slices.Compact(names) // equal neighbours only; different forms of one path stay
	if len(names) == 0 {
		img.warnings = append(img.warnings, "vhd: the differencing disk names no parent (no Unicode parent name and no readable locator)")
	}

	// The Parent Time Stamp is, per the specification, the modification
	// time of the parent file when the child was made (VirtualBox stores
	// the parent file's mtime there; qemu 7.2 ignores parents altogether).
	// An archive member's mtime is not the parent's on the host that wrote
	// the chain, and this package never sees it, so there is nothing
	// sound to compare it with: it is reported, not checked. The Unique
	// ID is the identity check.
	if ts := be.Uint32(h.raw[56:]); ts != 0 {
		img.warnings = append(img.warnings, fmt.Sprintf(
			"vhd: the parent time stamp (%s, the parent file's modification time when this disk was made) is not checked: an archive does not keep the parent's host modification time",
			vhdEpoch.Add(time.Duration(ts)*time.Second).Format(time.RFC3339)))
	}

	img.parent = &blockmap.Parent{
		Names: names,
		Check: func(p blockmap.Mapper) error { return img.checkParent(p, parentID) },
	}
}

// checkParent verifies that candidate p is the parent this disk was
// written against: a VHD whose footer Unique Id is the child's Parent
// Unique ID.
func (img *Image) checkParent(p blockmap.Mapper, parentID [16]byte) error {
	pi, ok := p.(*Image)
	if !ok {
		what := fmt.Sprintf("%T", p)
		if f, ok := p.(interface{ Format() string }); ok {
			what = f.Format()
		}
		return fmt.Errorf("vhd: %s: a differencing VHD's parent is a VHD, and the candidate is a %s: %w", img.name, what, blockmap.ErrCorrupt)
	}
	if pi.uniqueID != parentID {
		return fmt.Errorf("vhd: %s: its Parent Unique ID is %s, but the candidate %s has Unique Id %s: %w",
			img.name, uuidString(parentID), blockmap.Quote(pi.name), uuidString(pi.uniqueID), blockmap.ErrCorrupt)
	}
	return nil
}

// uuidString prints the 16 bytes in stored order, grouped as a UUID.
func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
