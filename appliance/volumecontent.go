package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ovfmount/ovfmount/overlay"
	"github.com/ovfmount/ovfmount/route"
	"github.com/ovfmount/ovfmount/volume/lvm"
)

// section is a partition: a range of a disk's view, served by the view's
// own route (spliced from the archive where the view would be).
type section struct {
	base       Content
	start, len int64

	allocOnce sync.Once
	alloc     int64
}

// newSection returns a partition of base, writable when base is.
func newSection(base Content, start, size int64) Content {
	s := &section{base: base, start: start, len: size}
	if w, ok := base.(Writable); ok {
		return &writableSection{section: s, w: w}
	}
	return s
}

// writableSection is a partition of a writable view: writes land in the
// view at the partition's offset, and never past its end.
type writableSection struct {
	*section
	w Writable
}

func (s *writableSection) bounds(off, n int64) error {
	if off < 0 || n < 0 || off+n > s.len {
		return fmt.Errorf("%w: [%d, %d) is not inside the partition's %d bytes", overlay.ErrPastEnd, off, off+n, s.len)
	}
	return nil
}

func (s *writableSection) WriteAt(ctx context.Context, p []byte, off int64) error {
	if err := s.bounds(off, int64(len(p))); err != nil {
		return err
	}
	return s.w.WriteAt(ctx, p, s.start+off)
}

func (s *writableSection) Sync() error { return s.w.Sync() }

func (s *writableSection) Discard(ctx context.Context, off, length int64) error {
	if err := s.bounds(off, length); err != nil {
		return err
	}
	return s.w.Discard(ctx, s.start+off, length)
}

func (s *writableSection) WriteZeroes(ctx context.Context, off, length int64) error {
	if err := s.bounds(off, length); err != nil {
		return err
	}
	return s.w.WriteZeroes(ctx, s.start+off, length)
}

func (s *section) Size() int64 { return s.len }

func (s *section) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	return s.base.Read(ctx, p, s.start+off, splice)
}

func (s *section) NextData(off int64) (int64, bool, error) {
	next, ok, err := s.base.NextData(s.start + off)
	if err != nil || !ok || next >= s.start+s.len {
		return 0, false, err
	}
	return next - s.start, true, nil
}

func (s *section) NextHole(off int64) (int64, error) {
	next, err := s.base.NextHole(s.start + off)
	if err != nil {
		return 0, err
	}
	return min(next, s.start+s.len) - s.start, nil
}

func (s *section) NextHoleBefore(off, limit int64) (int64, error) {
	next, err := NextHoleBefore(s.base, s.start+off, s.start+min(limit, s.len))
	if err != nil {
		return 0, err
	}
	return next - s.start, nil
}

// Allocated counts the data in the range, once, from the view's map; if
// the map cannot be walked, the whole range counts, as for a view.
func (s *section) Allocated() int64 {
	s.allocOnce.Do(func() {
		err := Extents(s, 0, s.len, func(n int64, data bool) bool {
			if data {
				s.alloc += n
			}
			return true
		})
		if err != nil {
			s.alloc = s.len
		}
	})
	return s.alloc
}

func (s *section) Status() (string, string) {
	st, _ := s.base.Status()
	return st, "" // the digest is the disk's, not the partition's
}

func (s *section) Opened() { s.base.Opened() }

// lvContent is a logical volume, read through its segments from the
// volumes holding its physical volumes.
type lvContent struct {
	r    *lvm.Reader
	size int64
	srcs []Content // the physical volumes' contents, for the state
}

// newLVContent returns the volume r reads, writable when every physical
// volume it lies on is (a partition of a writable view): pvs are those
// volumes' contents by the name the segments give the PV.
func newLVContent(r *lvm.Reader, srcs []Content, pvs map[string]Content) Content {
	c := &lvContent{r: r, size: r.Size(), srcs: srcs}
	w := make(map[string]Writable, len(pvs))
	for name, pc := range pvs {
		wc, ok := pc.(Writable)
		if !ok {
			return c
		}
		w[name] = wc
	}
	if len(w) == 0 {
		return c
	}
	return &writableLV{lvContent: c, pvs: w}
}

// writableLV is a logical volume whose writes land on its physical
// volumes where its segments map them, as device-mapper's linear and
// striped targets would put them.
type writableLV struct {
	*lvContent
	pvs map[string]Writable
}

// each applies f to the pieces of [off, off+n) on their physical volumes.
func (c *writableLV) each(off, n int64, f func(w Writable, pvOff int64, lo, hi int) error) error {
	if off < 0 || n < 0 || off+n > c.size {
		return fmt.Errorf("%w: [%d, %d) is not inside the volume's %d bytes", overlay.ErrPastEnd, off, off+n, c.size)
	}
	for done := int64(0); done < n; {
		k := int(min(n-done, 1<<30))
		err := c.r.Map(off+done, k, func(pv string, _ io.ReaderAt, pvOff int64, lo, hi int) error {
			w, ok := c.pvs[pv]
			if !ok {
				return fmt.Errorf("logical volume: physical volume %s has no writable view", pv)
			}
			return f(w, pvOff, int(done)+lo, int(done)+hi)
		})
		if err != nil {
			return err
		}
		done += int64(k)
	}
	return nil
}

func (c *writableLV) WriteAt(ctx context.Context, p []byte, off int64) error {
	return c.each(off, int64(len(p)), func(w Writable, pvOff int64, lo, hi int) error {
		return w.WriteAt(ctx, p[lo:hi], pvOff)
	})
}

func (c *writableLV) Discard(ctx context.Context, off, length int64) error {
	return c.each(off, length, func(w Writable, pvOff int64, lo, hi int) error {
		return w.Discard(ctx, pvOff, int64(hi-lo))
	})
}

func (c *writableLV) WriteZeroes(ctx context.Context, off, length int64) error {
	return c.each(off, length, func(w Writable, pvOff int64, lo, hi int) error {
		return w.WriteZeroes(ctx, pvOff, int64(hi-lo))
	})
}

// Sync syncs every disk the volume lies on.
func (c *writableLV) Sync() error {
	var errs []error
	for _, w := range c.pvs {
		errs = append(errs, w.Sync())
	}
	return errors.Join(errs...)
}

func (c *lvContent) Size() int64 { return c.size }

func (c *lvContent) Read(ctx context.Context, p []byte, off int64, _ bool) (route.Reply, error) {
	return readInto(ctx, c.r, p, off)
}

// A logical volume's map is not followed into its physical volumes' holes:
// every byte counts as data.

func (c *lvContent) NextData(off int64) (int64, bool, error) {
	if off >= c.size {
		return 0, false, nil
	}
	return off, true, nil
}

func (c *lvContent) NextHole(off int64) (int64, error) { return max(off, c.size), nil }
func (c *lvContent) Allocated() int64                  { return c.size }

// Status is the worst state of the disks the volume lies on.
func (c *lvContent) Status() (string, string) {
	worst := ""
	for _, s := range c.srcs {
		st, _ := s.Status()
		if worst == "" || statusRank(st) > statusRank(worst) {
			worst = st
		}
	}
	return worst, ""
}

func (c *lvContent) Opened() {
	for _, s := range c.srcs {
		s.Opened()
	}
}
