package lvm

import (
	"fmt"
	"io"
	"sort"
)

// Reader reads a logical volume's bytes through its segments' PV areas.
// It holds no state between reads: it is safe for concurrent use when the
// PVs' readers are.
type Reader struct {
	name string
	size int64
	segs []mapped
}

// mapped is a segment resolved to PV byte offsets.
type mapped struct {
	start, end int64 // bytes of the LV
	stripe     int64 // stripe size in bytes; 0 for linear
	areas      []area
}

type area struct {
	r      io.ReaderAt
	off    int64 // where the area starts on the PV, bytes
	length int64 // bytes of this stripe
	pv     string
}

// Open returns a reader of the LV's bytes in logical-extent order: a
// linear segment is its PV range, a striped one takes stripe-size chunks
// from its stripes in turn, as device-mapper's striped target does.
// An LV that is not Supported is ErrUnsupported, with the reason.
func (lv *LV) Open() (*Reader, error) {
	if !lv.Supported {
		return nil, fmt.Errorf("lvm: %s/%s: %s: %w", lv.vg.Name, lv.Name, lv.Reason, ErrUnsupported)
	}
	pvs := map[string]*VGPV{}
	for _, p := range lv.vg.PVs {
		pvs[p.Name] = p
	}
	es := lv.vg.ExtentSize
	rd := &Reader{name: lv.vg.Name + "/" + lv.Name, size: lv.Size}
	for _, s := range lv.Segments {
		m := mapped{start: s.Start * es, end: (s.Start + s.Count) * es, stripe: s.StripeSize}
		per := s.Count / int64(len(s.Stripes)) * es
		for _, st := range s.Stripes {
			vp := pvs[st.PV]
			off := vp.PEStart + st.PEStart*es
			// Supported checked these bounds; a PV is not resized
			// under us, but the check costs nothing.
			if vp.PV == nil || off < 0 || off > vp.PV.Size-per {
				return nil, fmt.Errorf("lvm: %s: extents of PV %s lie outside it: %w", rd.name, st.PV, ErrCorrupt)
			}
			m.areas = append(m.areas, area{r: vp.PV.r, off: off, length: per, pv: st.PV})
		}
		if len(m.areas) == 1 {
			m.stripe = 0
		}
		rd.segs = append(rd.segs, m)
	}
	return rd, nil
}

// Size is the LV's size in bytes.
func (rd *Reader) Size() int64 { return rd.size }

// ReadAt reads the LV's bytes at off, splitting the read at segment and
// stripe boundaries into reads of the PVs.
func (rd *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lvm: %s: negative offset %d", rd.name, off)
	}
	n := 0
	for len(p) > 0 {
		if off >= rd.size {
			return n, io.EOF
		}
		i := sort.Search(len(rd.segs), func(i int) bool { return rd.segs[i].end > off })
		if i == len(rd.segs) || rd.segs[i].start > off {
			return n, fmt.Errorf("lvm: %s: byte %d is in no segment: %w", rd.name, off, ErrCorrupt)
		}
		s := &rd.segs[i]
		rel := off - s.start
		a := &s.areas[0]
		pvOff := a.off + rel
		run := s.end - off
		if s.stripe > 0 {
			chunk, within := rel/s.stripe, rel%s.stripe
			a = &s.areas[chunk%int64(len(s.areas))]
			row := chunk / int64(len(s.areas))
			pvOff = a.off + row*s.stripe + within
			run = s.stripe - within
		}
		k := int(min(int64(len(p)), run))
		got, err := a.r.ReadAt(p[:k], pvOff)
		n += got
		if got < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("lvm: %s: reading PV %s at %d: %w", rd.name, a.pv, pvOff, err)
		}
		p, off = p[k:], off+int64(k)
	}
	return n, nil
}
