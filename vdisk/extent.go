package vdisk

import (
	"fmt"
)

// maxExtentRuns bounds how many runs one Extent call merges, so that a
// disk of alternating tiny runs cannot make one call walk the whole disk;
// callers simply ask again from the end of the extent.
const maxExtentRuns = 1 << 16

// Extent returns the run of data, or of zeros, that contains off, merging
// neighbouring runs of the same class.
func (im *image) Extent(off int64) (Extent, error) {
	if off < 0 || off >= im.size {
		return Extent{}, fmt.Errorf("vdisk: offset %d outside the disk (%d bytes)", off, im.size)
	}
	r, err := im.mapRun(off)
	if err != nil {
		return Extent{}, err
	}
	e := Extent{Off: off, Len: r.End() - off, Data: r.Kind.HasData()}
	for i := 0; i < maxExtentRuns && e.Off+e.Len < im.size; i++ {
		next, err := im.mapRun(e.Off + e.Len)
		if err != nil || next.Kind.HasData() != e.Data {
			break
		}
		e.Len = next.End() - e.Off
	}
	return e, nil
}

// Allocated sums the data extents over the whole disk, once.
func (im *image) Allocated() (int64, error) {
	im.allocOnce.Do(func() {
		for pos := int64(0); pos < im.size; {
			r, err := im.mapRun(pos)
			if err != nil {
				im.allocErr = err
				return
			}
			if r.Kind.HasData() {
				im.alloc += r.End() - pos
			}
			pos = r.End()
		}
	})
	return im.alloc, im.allocErr
}

// SeekData returns the first offset at or after off that holds data, or
// ok=false when none does before the end. It stops at the first data run:
// cp --sparse and qemu-img ask at every data offset, and merging the whole
// run there, as Extent does, walked up to a disk's worth of tables per call.
func (im *image) SeekData(off int64) (int64, bool, error) {
	for off < im.size {
		r, err := im.mapRun(max(off, 0))
		if err != nil {
			return 0, false, err
		}
		if r.Kind.HasData() {
			return max(off, 0), true, nil
		}
		off = r.End()
	}
	return 0, false, nil
}

// SeekHole returns the first offset at or after off that reads as zeros
// without being stored; the end of the disk counts as one.
func (im *image) SeekHole(off int64) (int64, error) {
	return im.SeekHoleBefore(off, im.size)
}

// SeekHoleBefore is SeekHole, looking no further than limit.
func (im *image) SeekHoleBefore(off, limit int64) (int64, error) {
	limit = min(limit, im.size)
	for off < limit {
		r, err := im.mapRun(max(off, 0))
		if err != nil {
			return 0, err
		}
		if !r.Kind.HasData() {
			return max(off, 0), nil
		}
		off = r.End()
	}
	return limit, nil
}
