package vhdx

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

const (
	metadataTableMax = 64 * kib
	maxVirtualSize   = 64 << 40 // the specification's limit, 64 TiB
	minBlockSize     = 1 * mib
	maxBlockSize     = 256 * mib

	flagLeaveBlocksAllocated = 1 << 0
	flagHasParent            = 1 << 1
	itemRequired             = 1 << 2
)

// params is what the metadata region says about the virtual disk.
type params struct {
	blockSize     int64
	fixed         bool // LeaveBlocksAllocated
	virtualSize   int64
	logicalSector int64
	parent        *locator // differencing disks opened with AllowParent
}

type item struct {
	off, length int64 // relative to the metadata region
}

// readMetadata parses the metadata table and the items this package needs.
func readMetadata(v io.ReaderAt, md region, name string, allowParent bool) (*params, []string, error) {
	if md.length < 32 {
		return nil, nil, corrupt(name, "metadata region of %d bytes cannot hold its table", md.length)
	}
	hdr := make([]byte, 32)
	if _, err := v.ReadAt(hdr, md.off); err != nil {
		return nil, nil, readFail(name, "the metadata table", md.off, err)
	}
	if binary.LittleEndian.Uint64(hdr) != metadataSig {
		return nil, nil, corrupt(name, "metadata table at %d has no \"metadata\" signature", md.off)
	}
	count := int64(binary.LittleEndian.Uint16(hdr[10:]))
	tableLen := 32 + 32*count
	if tableLen > metadataTableMax || tableLen > md.length {
		return nil, nil, corrupt(name, "metadata table has %d entries, more than its region holds", count)
	}
	tab := make([]byte, 32*count)
	if _, err := v.ReadAt(tab, md.off+32); err != nil {
		return nil, nil, readFail(name, fmt.Sprintf("%d metadata entries", count), md.off+32, err)
	}

	known := map[guid]string{
		itemFileParameters:  "file parameters",
		itemVirtualDiskSize: "virtual disk size",
		itemPage83Data:      "page 83 data",
		itemLogicalSector:   "logical sector size",
		itemPhysicalSector:  "physical sector size",
		itemParentLocator:   "parent locator",
	}
	items := map[guid]item{}
	for i := range count {
		e := tab[32*i : 32*i+32]
		var id guid
		copy(id[:], e[0:16])
		it := item{off: int64(binary.LittleEndian.Uint32(e[16:])), length: int64(binary.LittleEndian.Uint32(e[20:]))}
		flags := binary.LittleEndian.Uint32(e[24:])
		what, ok := known[id]
		if !ok {
			if flags&itemRequired != 0 {
				return nil, nil, unsupported(name, "metadata item %v is marked required but is unknown", id)
			}
			continue
		}
		if _, dup := items[id]; dup {
			return nil, nil, corrupt(name, "metadata item %s appears twice", what)
		}
		if it.off+it.length > md.length {
			return nil, nil, corrupt(name, "metadata item %s (%d bytes at %d) lies outside its region (%d bytes)",
				what, it.length, it.off, md.length)
		}
		items[id] = it
	}

	// get reads a fixed-size item; the specification requires all but the
	// parent locator, and so does qemu.
	get := func(id guid, n int64) ([]byte, error) {
		it, ok := items[id]
		if !ok {
			return nil, corrupt(name, "required metadata item %s is missing", known[id])
		}
		if it.length < n {
			return nil, corrupt(name, "metadata item %s is %d bytes, %d needed", known[id], it.length, n)
		}
		b := make([]byte, n)
		if _, err := v.ReadAt(b, md.off+it.off); err != nil {
			return nil, readFail(name, "metadata item "+known[id], md.off+it.off, err)
		}
		return b, nil
	}
	fp, err := get(itemFileParameters, 8)
	if err != nil {
		return nil, nil, err
	}
	vs, err := get(itemVirtualDiskSize, 8)
	if err != nil {
		return nil, nil, err
	}
	ls, err := get(itemLogicalSector, 4)
	if err != nil {
		return nil, nil, err
	}
	ps, err := get(itemPhysicalSector, 4)
	if err != nil {
		return nil, nil, err
	}
	if _, err := get(itemPage83Data, 16); err != nil {
		return nil, nil, err
	}

	flags := binary.LittleEndian.Uint32(fp[4:])
	var parent *locator
	if flags&flagHasParent != 0 {
		loc, ok := items[itemParentLocator]
		if !ok {
			return nil, nil, corrupt(name, "differencing disk (HasParent) without a parent locator")
		}
		if !allowParent {
			return nil, nil, unsupported(name, "differencing disk, its parent is %s", parentName(v, md, loc))
		}
		if parent, err = readLocator(v, md, loc, name); err != nil {
			return nil, nil, err
		}
	}

	p := &params{
		parent:        parent,
		blockSize:     int64(binary.LittleEndian.Uint32(fp[0:])),
		fixed:         flags&flagLeaveBlocksAllocated != 0,
		virtualSize:   int64(binary.LittleEndian.Uint64(vs)),
		logicalSector: int64(binary.LittleEndian.Uint32(ls)),
	}
	if p.blockSize < minBlockSize || p.blockSize > maxBlockSize || p.blockSize&(p.blockSize-1) != 0 {
		return nil, nil, corrupt(name, "block size %d is not a power of two from 1 MiB to 256 MiB", p.blockSize)
	}
	if p.logicalSector != 512 && p.logicalSector != 4096 {
		return nil, nil, corrupt(name, "logical sector size %d, only 512 and 4096 are defined", p.logicalSector)
	}
	raw := binary.LittleEndian.Uint64(vs)
	if raw > maxVirtualSize || raw%uint64(p.logicalSector) != 0 {
		return nil, nil, corrupt(name, "virtual size %d is not a multiple of the %d-byte sector up to 64 TiB",
			raw, p.logicalSector)
	}
	var warn []string
	if phys := binary.LittleEndian.Uint32(ps); phys != 512 && phys != 4096 {
		warn = append(warn, fmt.Sprintf("physical sector size %d is neither 512 nor 4096 (ignored)", phys))
	}
	return p, warn, nil
}

// parentName describes the parent named by a parent locator, for the
// error that refuses a differencing disk. The locator is only read for the
// message, so damage there yields a vaguer message, not another error.
func parentName(v io.ReaderAt, md region, loc item) string {
	const unknown = "not named by a readable parent locator"
	if loc.length < 20 || loc.length > metadataTableMax*16 {
		return unknown
	}
	b := make([]byte, loc.length)
	if _, err := v.ReadAt(b, md.off+loc.off); err != nil {
		return unknown
	}
	count := int64(binary.LittleEndian.Uint16(b[18:]))
	if 20+12*count > loc.length {
		return unknown
	}
	kv := map[string]string{}
	for i := range count {
		e := b[20+12*i:]
		ko, vo := int64(binary.LittleEndian.Uint32(e[0:])), int64(binary.LittleEndian.Uint32(e[4:]))
		kl, vl := int64(binary.LittleEndian.Uint16(e[8:])), int64(binary.LittleEndian.Uint16(e[10:]))
		if ko+kl > loc.length || vo+vl > loc.length {
			continue
		}
		kv[utf16le(b[ko:ko+kl])] = utf16le(b[vo : vo+vl])
	}
	var parts []string
	for _, k := range []string{"relative_path", "absolute_win32_path", "volume_path"} {
		if p := kv[k]; p != "" {
			parts = append(parts, fmt.Sprintf("%s %q", k, p))
			break
		}
	}
	if l := kv["parent_linkage"]; l != "" {
		parts = append(parts, "parent_linkage "+l)
	}
	if len(parts) == 0 {
		return unknown
	}
	return strings.Join(parts, ", ")
}

func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
