package appliance

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/route"
	"github.com/ovfmount/ovfmount/vdisk"
)

// Content is the data behind a regular file of the mount.
type Content interface {
	// Size is the file's length.
	Size() int64
	// Read answers a read of len(p) bytes at off, which lie inside the
	// file: the one decision per read of how its bytes are served (see
	// package route). With splice false the answer is never host ranges.
	Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error)
	// NextData returns the first offset at or after off holding data, or
	// false when there is none before the end; NextHole the first that is
	// a hole (the end counts as one); Allocated the bytes holding data.
	NextData(off int64) (int64, bool, error)
	NextHole(off int64) (int64, error)
	Allocated() int64
	// Status is the verification state ("pending", "verified", ...) and
	// the manifest digest ("ALG:hex", or "") the extended attributes show.
	Status() (status, digest string)
	// Opened is called when the file is first opened or read through the
	// mount (most opens reach no node: see fs.openReply): lazy verification
	// starts there.
	Opened()
}

// HoleBounder is a Content whose holes can be looked for within a bound.
// NextHole walks the allocation map to the next hole, which on a disk
// whose data is one long run of compressed grains is the whole map: a
// caller that asks about one request's range (an NBD server's block
// status, every read) asks this instead. NextHoleBefore returns limit when
// no hole starts before it.
type HoleBounder interface {
	NextHoleBefore(off, limit int64) (int64, error)
}

// NextHoleBefore asks c for a hole before limit: without walking past
// limit where c can, else by NextHole.
func NextHoleBefore(c Content, off, limit int64) (int64, error) {
	if b, ok := c.(HoleBounder); ok {
		return b.NextHoleBefore(off, limit)
	}
	h, err := c.NextHole(off)
	return min(h, limit), err
}

// ReadFull reads len(p) bytes of c at off (which lie inside it) into p,
// through c's checks: for callers that want the bytes in one piece rather
// than a route (the overlay's base, an NBD export, the guest readers).
func ReadFull(ctx context.Context, c Content, p []byte, off int64) error {
	rep, err := c.Read(ctx, p, off, false)
	if err != nil {
		return err
	}
	if rep.Len() != len(p) || !rep.CopyTo(p) {
		return fmt.Errorf("read at %d: %d bytes answered, %d asked", off, rep.Len(), len(p))
	}
	return nil
}

// Extents walks c's allocation map over [off, end), calling fn for each
// run of data or of holes in order until it returns false. It looks for
// holes no further than end (see HoleBounder), and fails on a map that
// does not move on rather than loop.
func Extents(c Content, off, end int64, fn func(length int64, data bool) bool) error {
	end = min(end, c.Size())
	for off < end {
		data, ok, err := c.NextData(off)
		if err != nil {
			return err
		}
		if !ok || data >= end {
			fn(end-off, false)
			return nil
		}
		if data > off {
			if !fn(data-off, false) {
				return nil
			}
			off = data
		}
		hole, err := NextHoleBefore(c, off, end)
		if err != nil {
			return err
		}
		if hole <= off {
			return fmt.Errorf("allocation map: no progress at %d", off)
		}
		if !fn(min(hole, end)-off, true) {
			return nil
		}
		off = min(hole, end)
	}
	return nil
}

// memberContent serves an archive member through its checks.
type memberContent struct {
	f    *integrity.File
	m    *ova.Member
	exts []ova.DataExtent // nil unless the member is sparse
}

func (p *Package) memberContent(m *ova.Member) *memberContent {
	c := &memberContent{f: p.Checks.File(m), m: m}
	if m.Sparse() {
		c.exts = m.DataExtents()
	}
	return c
}

func (c *memberContent) Size() int64 { return c.m.Size }

func (c *memberContent) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	return c.f.Route(ctx, p, off, splice)
}

// A plain member is one extent of data, so these do real work for sparse
// members only.

func (c *memberContent) NextData(off int64) (int64, bool, error) {
	if off >= c.m.Size {
		return 0, false, nil
	}
	if c.exts == nil {
		return off, true, nil
	}
	i := sort.Search(len(c.exts), func(i int) bool { return c.exts[i].Off+c.exts[i].Len > off })
	if i == len(c.exts) {
		return 0, false, nil
	}
	return max(off, c.exts[i].Off), true, nil
}

func (c *memberContent) NextHole(off int64) (int64, error) {
	if c.exts == nil || off >= c.m.Size {
		return max(off, c.m.Size), nil
	}
	i := sort.Search(len(c.exts), func(i int) bool { return c.exts[i].Off+c.exts[i].Len > off })
	for ; i < len(c.exts) && c.exts[i].Off <= off; i++ {
		off = c.exts[i].Off + c.exts[i].Len
	}
	return min(off, c.m.Size), nil
}

func (c *memberContent) Allocated() int64 { return c.m.StoredSize() }

func (c *memberContent) Status() (string, string) { return string(c.f.Status()), c.f.Digest() }

func (c *memberContent) Opened() { c.f.Start() }

// logicalContent serves a file made from members: joined from chunks, or
// decompressed. Its state is the worst of its members' states.
type logicalContent struct {
	r interface {
		io.ReaderAt
		Size() int64
	}
	srcs []*integrity.File
	// startOnOpen verifies the member when the file is opened, as for a
	// member; a chunked file's chunks are each verified when a read first
	// needs them.
	startOnOpen bool
}

// logicalContent is the content of a chunked or gzip file; nil when a gzip
// file's content could not be opened.
func (p *Package) logicalContent(f *File) Content {
	st := logical.StoredOf(f.Members, p.Checks)
	if !f.Gzip {
		return &logicalContent{r: sizedReader{st.Checked, st.Size}, srcs: st.Files}
	}
	if f.gz == nil {
		return nil
	}
	return &logicalContent{r: f.gz.Checked, srcs: st.Files, startOnOpen: len(f.Members) == 1}
}

// sizedReader is a chunked file's chunks read back to back, each verified
// on its own when a read first needs it, and its length.
type sizedReader struct {
	io.ReaderAt
	size int64
}

func (s sizedReader) Size() int64 { return s.size }

// ReadAtContext passes ctx on to the chunks, which may wait.
func (s sizedReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return route.ReadAt(ctx, s.ReaderAt, p, off)
}

func (c *logicalContent) Size() int64 { return c.r.Size() }

func (c *logicalContent) Read(ctx context.Context, p []byte, off int64, _ bool) (route.Reply, error) {
	return readInto(ctx, c.r, p, off)
}

func (c *logicalContent) NextData(off int64) (int64, bool, error) {
	if off >= c.r.Size() {
		return 0, false, nil
	}
	return off, true, nil
}

func (c *logicalContent) NextHole(off int64) (int64, error) { return max(off, c.r.Size()), nil }
func (c *logicalContent) Allocated() int64                  { return c.r.Size() }
func (c *logicalContent) Status() (string, string)          { return worstStatus(c.srcs), "" }

func (c *logicalContent) Opened() {
	if c.startOnOpen {
		for _, f := range c.srcs {
			f.Start()
		}
	}
}

// readInto reads exactly len(p) bytes into p, passing ctx to readers that
// wait.
func readInto(ctx context.Context, r io.ReaderAt, p []byte, off int64) (route.Reply, error) {
	n, err := route.ReadAt(ctx, r, p, off)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return route.Reply{}, err
	}
	return route.Bytes(p), nil
}

// viewContent serves a decoded disk.
type viewContent struct {
	// probe is the image opened from unchecked reads when the package was
	// opened: it gives the size and st_blocks. Data is served by the image
	// opened through the checks, on the first read that needs it (on a
	// strict mount, once the files it reads are verified).
	probe  vdisk.Image
	open   func() (vdisk.Image, error)
	srcs   []*integrity.File // the checked files it is decoded from
	path   string
	strict bool // wait for srcs to be verified before the image is opened

	// served is the image that serves data once it is opened (or why it
	// cannot be): read without a lock on every read; mu serialises the
	// opening.
	served atomic.Pointer[servedImage]
	mu     sync.Mutex

	// damaged is set when the image found a unit it had served the head
	// of to be corrupt (see vdisk.Image.Damaged): the disk then shows as
	// damaged, though the members it is decoded from verified.
	damaged atomic.Bool
}

func (p *Package) viewContent(k *Disk, cache *vdisk.Cache) *viewContent {
	c := &viewContent{probe: k.probe, srcs: k.files(p.Checks), path: k.View, strict: p.Checks.Mode() == integrity.Strict}
	if p.Checks.Mode() == integrity.Off {
		c.served.Store(&servedImage{im: k.probe}) // checked reads are the unchecked ones
		return c
	}
	c.open = func() (vdisk.Image, error) {
		r, size, base, err := k.source(p.Checks)
		if err != nil {
			return nil, err
		}
		i := 0
		return vdisk.Open(r, size, vdisk.Options{Name: k.Name, Cache: cache, Raw: k.raw, Parents: p.parents(k, p.Checks, map[string]*chainSource{}),
			OnDamage: func(err error) {
				c.damaged.Store(true)
				p.log.Error().Str("file", c.path).Err(err).Msg("disk damaged: every read of this view fails with EIO from now on")
			},
			Resolve: func(name string) (io.ReaderAt, int64, error) {
				// The extents are those the probe found, in the order the
				// descriptor names them.
				if base == nil || i >= len(k.Extents) {
					return nil, 0, fmt.Errorf("extent %q: not found when the disk was first opened", name)
				}
				m := k.Extents[i]
				i++
				return p.Checks.File(m), m.Size, nil
			}})
	}
	return c
}

// image is the image that serves data, opened through the checks on the
// first read. On a strict mount that read first waits, as the reader's
// context allows, until the files it reads are verified, so that no table
// of the image is read unchecked; a lazy mount's reads are served at once.
func (c *viewContent) image(ctx context.Context) (vdisk.Image, error) {
	if sv := c.served.Load(); sv != nil {
		return sv.im, sv.err
	}
	if c.strict {
		for _, f := range c.srcs {
			f.Start()
		}
		for _, f := range c.srcs {
			if err := f.Wait(ctx); err != nil {
				return nil, err
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sv := c.served.Load(); sv != nil {
		return sv.im, sv.err
	}
	im, err := c.open()
	if err == nil && im.Size() != c.probe.Size() {
		im, err = nil, fmt.Errorf("vdisk: %s: the verified image is %d bytes, the header read at first said %d", c.path, im.Size(), c.probe.Size())
	}
	c.served.Store(&servedImage{im: im, err: err})
	return im, err
}

// servedImage is the image a view serves data from, or why it has none.
type servedImage struct {
	im  vdisk.Image
	err error
}

func (c *viewContent) Size() int64 { return c.probe.Size() }

func (c *viewContent) Read(ctx context.Context, p []byte, off int64, splice bool) (route.Reply, error) {
	im, err := c.image(ctx)
	if err != nil {
		return route.Reply{}, err
	}
	if splice {
		if rs, ok := segmentRanges(im, off, len(p)); ok {
			return route.Spliced(rs), nil
		}
	}
	return readInto(ctx, im, p, off)
}

// segmentRanges serves the uncompressed parts of a disk (VHD, VHDX and
// QCOW2 blocks, flat extents, raw disks) straight from the archive's file,
// as members are, and its holes as zeros, when nothing in the range needs
// decoding or checking.
func segmentRanges(im vdisk.Image, off int64, n int) ([]route.Range, bool) {
	segs, ok := im.Segments(off, n)
	if !ok {
		return nil, false
	}
	var out []route.Range
	for _, sg := range segs {
		if sg.Zero {
			out = append(out, route.Range{Len: sg.Len, Zero: true})
			continue
		}
		rs, ok := route.Ranges(sg.Src, sg.Phys, sg.Len)
		if !ok {
			return nil, false
		}
		out = append(out, rs...)
	}
	return out, true
}

func (c *viewContent) NextData(off int64) (int64, bool, error) {
	im, err := c.image(context.Background())
	if err != nil {
		return 0, false, err
	}
	return im.SeekData(off)
}

func (c *viewContent) NextHole(off int64) (int64, error) {
	im, err := c.image(context.Background())
	if err != nil {
		return 0, err
	}
	return im.SeekHole(off)
}

// NextHoleBefore is NextHole looking no further than limit (see
// HoleBounder).
func (c *viewContent) NextHoleBefore(off, limit int64) (int64, error) {
	im, err := c.image(context.Background())
	if err != nil {
		return 0, err
	}
	return im.SeekHoleBefore(off, limit)
}

// Allocated is the disk's data bytes, for st_blocks; if the allocation map
// cannot be walked (a damaged table), the full size is reported rather
// than a number that would look sparse.
func (c *viewContent) Allocated() int64 {
	n, err := c.probe.Allocated()
	if err != nil {
		return c.probe.Size()
	}
	return n
}

// Status is the state of the files the disk is decoded from: for a disk
// made of several extents or chunks, the worst of theirs.
func (c *viewContent) Status() (string, string) {
	digest := ""
	if len(c.srcs) == 1 {
		digest = c.srcs[0].Digest()
	}
	if c.damaged.Load() {
		return StatusDamaged, digest
	}
	return worstStatus(c.srcs), digest
}

// StatusDamaged is the state of a disk view whose image found a unit
// corrupt after serving its head from verified members: the producer
// signed a damaged disk. Every later read of the view fails.
const StatusDamaged = "damaged"

// Opened starts the lazy verification of the files the disk reads.
func (c *viewContent) Opened() {
	for _, f := range c.srcs {
		f.Start()
	}
}

// worstStatus is the state a file made of several checked files shows.
func worstStatus(srcs []*integrity.File) string {
	if len(srcs) == 0 {
		return string(integrity.StatusOff)
	}
	worst := string(srcs[0].Status())
	for _, f := range srcs[1:] {
		if st := string(f.Status()); statusRank(st) > statusRank(worst) {
			worst = st
		}
	}
	return worst
}

// statusRank orders states from best to worst, for a file read from
// several others.
func statusRank(st string) int {
	switch st {
	case StatusDamaged:
		return 7
	case string(integrity.StatusMismatch):
		return 6
	case string(integrity.StatusPending):
		return 5
	case string(integrity.StatusUnlisted), string(integrity.StatusForeign):
		return 4
	case string(integrity.StatusMeta):
		return 3
	case string(integrity.StatusVerified):
		return 2
	}
	return 1
}
