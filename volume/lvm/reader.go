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

// Map calls fn for the pieces of [off, off+n) of the LV in order: each
// is bytes [lo, hi) of the range, lying at pvOff on the PV named pv (and
// read through r). Reads and writes split a range the same way: linear
// segments are PV ranges, striped ones stripe-size chunks in turn.
func (rd *Reader) Map(off int64, n int, fn func(pv string, r io.ReaderAt, pvOff int64, lo, hi int) error) error {
	if off < 0 || n < 0 || off+int64(n) > rd.size {
		return fmt.Errorf("lvm: %s: [%d, %d) is not inside the volume's %d bytes", rd.name, off, off+int64(n), rd.size)
	}
	for at := 0; at < n; {
		pos := off + int64(at)
		i := sort.Search(len(rd.segs), func(i int) bool { return rd.segs[i].end > pos })
		if i == len(rd.segs) || rd.segs[i].start > pos {
			return fmt.Errorf("lvm: %s: byte %d is in no segment: %w", rd.name, pos, ErrCorrupt)
		}
		s := &rd.segs[i]
		rel := pos - s.start
		a := &s.areas[0]
		pvOff := a.off + rel
		run := s.end - pos
		if s.stripe > 0 {
			chunk, within := rel/s.stripe, rel%s.stripe
			a = &s.areas[chunk%int64(len(s.areas))]
			row := chunk / int64(len(s.areas))
			pvOff = a.off + row*s.stripe + within
			run = s.stripe - within
		}
		k := int(min(int64(n-at), run))
		if err := fn(a.pv, a.r, pvOff, at, at+k); err != nil {
			return err
		}
		at += k
	}
	return nil
}

// ReadAt reads the LV's bytes at off, splitting the read at segment and
// stripe boundaries into reads of the PVs (see Map).
func (rd *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("lvm: %s: negative offset %d", rd.name, off)
	}
	if off >= rd.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), rd.size-off))
	n := 0
	err := rd.Map(off, want, func(pv string, r io.ReaderAt, pvOff int64, lo, hi int) error {
		got, err := r.ReadAt(p[lo:hi], pvOff)
		n += got
		if got < hi-lo {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("lvm: %s: reading PV %s at %d: %w", rd.name, pv, pvOff, err)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if want < len(p) {
		return n, io.EOF
	}
	return n, nil
}
