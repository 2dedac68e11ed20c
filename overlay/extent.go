package overlay

import "fmt"

// Extent is a run of the view that all holds data, or all reads as zeros
// without being stored. It has vdisk.Extent's fields, so a caller
// converts one into the other with a type conversion.
type Extent struct {
	Off, Len int64
	Data     bool
}

// BaseExtent answers Extent for the base: the longest run of data, or of
// zeros, containing off (vdisk.Image's Extent, converted). nil means the
// base is data everywhere.
type BaseExtent func(off int64) (Extent, error)

// Extent returns a run of the combined view containing off: blocks the
// overlay holds (data, or zeros for discarded and zeroed ones), else the
// base's own extent clipped to the blocks the overlay leaves to it. Runs
// are not merged across that boundary; SeekData and SeekHole walk them.
func (d *Disk) Extent(off int64, base BaseExtent) (Extent, error) {
	if off < 0 || off >= d.size {
		return Extent{}, fmt.Errorf("%w: %s: extent at %d, size %d", ErrPastEnd, d.name, off, d.size)
	}
	b := uint64(off / BlockSize)
	d.mu.RLock()
	v := d.tab.get(b)
	var end uint64
	if v == valUnmapped {
		end = d.tab.nextMapped(b)
	} else {
		data := v >= valSlot0
		for end = b + 1; end < d.blocks; end++ {
			if !data && end%chunkLen == 0 && d.tab.chunks[end>>chunkShift] == zeroChunk {
				end += chunkLen - 1 // a chunk discarded whole
				continue
			}
			w := d.tab.get(end)
			if w == valUnmapped || (w >= valSlot0) != data {
				break
			}
		}
	}
	d.mu.RUnlock()
	lo, hi := int64(b)*BlockSize, min(int64(end)*BlockSize, d.size)
	if v != valUnmapped {
		return Extent{Off: lo, Len: hi - lo, Data: v >= valSlot0}, nil
	}
	if base == nil {
		return Extent{Off: lo, Len: hi - lo, Data: true}, nil
	}
	e, err := base(off)
	if err != nil {
		return Extent{}, fmt.Errorf("overlay: %s: base extent at %d: %w", d.name, off, err)
	}
	if e.Len <= 0 || off < e.Off || off >= e.Off+e.Len {
		return Extent{}, fmt.Errorf("overlay: %s: the base's extent at %d is [%d, +%d), which does not hold it", d.name, off, e.Off, e.Len)
	}
	elo, ehi := max(e.Off, lo), min(e.Off+e.Len, hi)
	return Extent{Off: elo, Len: ehi - elo, Data: e.Data}, nil
}

// SeekData is lseek's SEEK_DATA over the combined view: the first offset
// at or after off holding data; ok is false when none does before the end.
func (d *Disk) SeekData(off int64, base BaseExtent) (next int64, ok bool, err error) {
	for off < d.size {
		e, err := d.Extent(off, base)
		if err != nil {
			return 0, false, err
		}
		if e.Data {
			return max(off, e.Off), true, nil
		}
		off = e.Off + e.Len
	}
	return 0, false, nil
}

// SeekHole is lseek's SEEK_HOLE: the first offset at or after off that
// reads as zeros unstored, the disk's end counting as one.
func (d *Disk) SeekHole(off int64, base BaseExtent) (int64, error) {
	for off < d.size {
		e, err := d.Extent(off, base)
		if err != nil {
			return 0, err
		}
		if !e.Data {
			return max(off, e.Off), nil
		}
		off = e.Off + e.Len
	}
	return d.size, nil
}
