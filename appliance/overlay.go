package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ovfmount/ovfmount/overlay"
	"github.com/ovfmount/ovfmount/route"
)

// Writable is a file of the mount that takes writes: a disk's raw view, a
// partition of one, or a logical volume on such partitions, on a mount with
// an overlay. Its size never changes.
type Writable interface {
	Content
	WriteAt(ctx context.Context, p []byte, off int64) error
	// Sync makes every write before it durable.
	Sync() error
	// Discard makes a range read as zeros and frees what it held.
	Discard(ctx context.Context, off, length int64) error
	// WriteZeroes makes a range read as zeros.
	WriteZeroes(ctx context.Context, off, length int64) error
}

// StatusModified is the state of a view the guest wrote to through an
// overlay: its bytes are no longer all the archive's.
const StatusModified = "modified"

// Fingerprint identifies the package's bytes for what is bound to them (an
// overlay folder): key changes when the archive does (its size, its
// modification time, its members' names, offsets and sizes, its
// descriptor and manifest), and describe is how messages name it.
func (p *Package) Fingerprint() (key, describe string) {
	h := sha256.New()
	var mtime time.Time
	if p.Archive != nil {
		binary.Write(h, binary.LittleEndian, p.Archive.Size())
		for _, m := range p.Archive.Members() {
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", m.Name, m.HeaderOffset, m.Size)
		}
	}
	mtime = p.modTime
	binary.Write(h, binary.LittleEndian, mtime.UnixNano())
	if p.Manifest != nil && p.Checks != nil {
		fmt.Fprintf(h, "manifest\x00%s\x00%d\x00", p.Manifest.Name, p.Manifest.Size)
		b := make([]byte, min(p.Manifest.Size, 1<<20))
		if _, err := p.Checks.File(p.Manifest).ReadAt(b, 0); err == nil || err == io.EOF {
			h.Write(b)
		}
	}
	size := int64(0)
	if p.Archive != nil {
		size = p.Archive.Size()
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), fmt.Sprintf("%s (%d bytes, modified %s)", path.Base(p.Name), size, mtime.UTC().Format(time.RFC3339))
}

// UseOverlay makes every disk's raw view writable through an overlay of
// s, one per disk, and the partitions and logical volumes on those views
// with them. It must
// be called before the mount serves anything and before Inside runs. The
// guest filesystems are then not shown: they would change under their
// readers' caches while the guest writes.
func (p *Package) UseOverlay(s *overlay.Store) error {
	for _, k := range p.Disks {
		if k.content == nil {
			continue
		}
		name := path.Base(k.View)
		d, err := s.Disk(name, k.content.Size(), contentBase{k.content})
		if err != nil {
			return fmt.Errorf("overlay of %s: %w", name, err)
		}
		oc := &overlaidContent{base: k.content, d: d}
		for _, e := range p.Entries {
			if e.Path == k.View {
				e.Content = oc
				e.Perm = 0o644
			}
		}
		k.overlaid = oc
	}
	if p.FilesFolder != "" {
		out := p.Entries[:0]
		for _, e := range p.Entries {
			if e.Path != p.FilesFolder {
				out = append(out, e)
			}
		}
		p.Entries = out
		p.FilesFolder = ""
	}
	return nil
}

// contentBase reads a view through its checks for the overlay beneath
// which it lies.
type contentBase struct{ c Content }

func (b contentBase) ReadAt(ctx context.Context, p []byte, off int64) error {
	return ReadFull(ctx, b.c, p, off)
}

// overlaidContent is a disk's raw view with the guest's writes on top.
// Until the first write it serves every read by the view's own route
// (spliced from the archive where it would be); from then on reads go
// through the overlay, which takes from the view what it does not hold.
type overlaidContent struct {
	base Content
	d    *overlay.Disk
}

var _ Writable = (*overlaidContent)(nil)

func (c *overlaidContent) Size() int64 { return c.base.Size() }

func (c *overlaidContent) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	if !c.d.Modified() {
		return c.base.Read(ctx, p, off, splice)
	}
	if err := c.d.ReadAt(ctx, p, off); err != nil {
		return route.Reply{}, err
	}
	return route.Bytes(p), nil
}

// baseExtentMax bounds the data runs baseExtent reports: see HoleBounder.
const baseExtentMax = 64 << 20

// baseExtent is the view's own allocation map, as the overlay walks it.
func (c *overlaidContent) baseExtent(off int64) (overlay.Extent, error) {
	// Only the first run: the overlay asks again from its end, so the walk
	// of the view's map is bounded.
	e := overlay.Extent{Off: off}
	err := Extents(c.base, off, off+baseExtentMax, func(n int64, data bool) bool {
		e.Len, e.Data = n, data
		return false
	})
	return e, err
}

func (c *overlaidContent) NextData(off int64) (int64, bool, error) {
	return c.d.SeekData(off, c.baseExtent)
}

func (c *overlaidContent) NextHole(off int64) (int64, error) {
	return c.d.SeekHole(off, c.baseExtent)
}

// NextHoleBefore walks the overlay's extents up to limit.
func (c *overlaidContent) NextHoleBefore(off, limit int64) (int64, error) {
	for off < limit {
		e, err := c.d.Extent(off, c.baseExtent)
		if err != nil {
			return 0, err
		}
		if !e.Data {
			return max(off, e.Off), nil
		}
		off = e.Off + e.Len
	}
	return limit, nil
}

func (c *overlaidContent) Allocated() int64 {
	return min(c.base.Allocated()+c.d.Written(), c.base.Size())
}

// Status is the view's until the guest writes to it; then "modified",
// with no digest: its bytes are no longer the ones the manifest lists.
func (c *overlaidContent) Status() (string, string) {
	if c.d.Modified() {
		return StatusModified, ""
	}
	return c.base.Status()
}

func (c *overlaidContent) Opened() { c.base.Opened() }

func (c *overlaidContent) WriteAt(ctx context.Context, p []byte, off int64) error {
	return c.d.WriteAt(ctx, p, off)
}

func (c *overlaidContent) Sync() error { return c.d.Sync() }

func (c *overlaidContent) Discard(ctx context.Context, off, length int64) error {
	return c.d.Discard(ctx, off, length)
}

func (c *overlaidContent) WriteZeroes(ctx context.Context, off, length int64) error {
	return c.d.WriteZeroes(ctx, off, length)
}

// ErrNoView: no disk view of that name has an overlay.
var ErrNoView = errors.New("no such disk view")

// ExportView writes the view called name (its name in the disks folder,
// or its disk's file name) with the guest's writes on it to w, as a
// standalone "raw" or "qcow2" image (see overlay.ExportImage). The
// package must have an overlay (UseOverlay).
func (p *Package) ExportView(ctx context.Context, name string, w *os.File, format string) error {
	var names []string
	for _, k := range p.Disks {
		if k.overlaid == nil {
			continue
		}
		view := path.Base(k.View)
		if name == view || name+".raw" == view {
			return overlay.ExportImage(ctx, k.overlaid.d, w, format, k.overlaid.baseExtent)
		}
		names = append(names, view)
	}
	if len(names) == 0 {
		return fmt.Errorf("%s: %w: no disk has a view with an overlay", p.Name, ErrNoView)
	}
	return fmt.Errorf("%s: %w %q (the views are %s)", p.Name, ErrNoView, name, strings.Join(names, ", "))
}
