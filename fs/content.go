package fs

import (
	"context"
	"io"
	"os"
	"sort"

	"github.com/ovfmount/ovfmount/ova"
)

// Content is the data behind a regular file of the mount.
type Content interface {
	io.ReaderAt
	Size() int64
}

// Splicer is implemented by content whose bytes can be sent to the kernel
// straight from host file descriptors, without passing through memory.
type Splicer interface {
	// Pieces returns, in order, the file ranges holding bytes
	// [off, off+n), or ok=false when some of them must be produced in
	// memory (decoded, or checked first).
	Pieces(off int64, n int) ([]FilePiece, bool)
}

// FilePiece is a range of a host file.
type FilePiece struct {
	FD  uintptr
	Off int64
	Len int
}

// Spanner is implemented by content whose bytes are checked in buffers
// that a reply can be sent from as they are (see ova.Span).
type Spanner interface {
	// Span returns bytes [off, off+n), or ok=false when they are not
	// served from checked buffers now (the caller uses ReadAt then).
	Span(off int64, n int) (sp *ova.Span, ok bool, err error)
}

// DataMapper is implemented by content with holes, so that SEEK_DATA and
// SEEK_HOLE, and st_blocks, tell the truth.
type DataMapper interface {
	// NextData returns the first offset at or after off holding data, or
	// ok=false when there is none before the end.
	NextData(off int64) (int64, bool, error)
	// NextHole returns the first offset at or after off that is a hole;
	// the end of the content counts as one.
	NextHole(off int64) (int64, error)
	// Allocated is the number of bytes that hold data.
	Allocated() int64
}

// ContextReader is implemented by content whose reads may wait (strict
// verification), so that an interrupted read stops waiting.
type ContextReader interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// Verifiable is implemented by content checked against the manifest: its
// state and digest are what the user.ovfmount.* attributes show.
type Verifiable interface {
	// VerifyStatus returns the state ("pending", "verified", "mismatch",
	// "unlisted" or "off") and the manifest digest ("ALG:hex", or "").
	VerifyStatus() (status, digest string)
	// Opened is called when the file is opened; lazy verification starts
	// there.
	Opened()
}

// memberContent adapts an archive member.
type memberContent struct {
	m      *ova.Member
	splice bool             // stored in one piece in a host file
	exts   []ova.DataExtent // nil unless the member is sparse
}

func newMemberContent(m *ova.Member) *memberContent {
	c := &memberContent{m: m}
	_, _, c.splice = fileOf(m)
	if m.Sparse() {
		c.exts = m.DataExtents()
	}
	return c
}

// fileOf returns the host file descriptor and offset holding a member's
// bytes, when the member is stored in one piece in a host file that still
// is what was indexed.
func fileOf(m *ova.Member) (fd uintptr, phys int64, ok bool) {
	src, phys, ok := m.Contiguous()
	if !ok {
		return 0, 0, false
	}
	switch f := src.(type) {
	case *os.File:
		return f.Fd(), phys, true
	case *ova.WatchedFile:
		// A splice from a file that shrank would come back short, which
		// the kernel takes for the end of the file: check first, and let
		// the copying path report the change.
		if f.Check() != nil {
			return 0, 0, false
		}
		return f.Fd(), phys, true
	}
	return 0, 0, false
}

func (c *memberContent) ReadAt(p []byte, off int64) (int, error) { return c.m.ReadAt(p, off) }
func (c *memberContent) Size() int64                             { return c.m.Size }

func (c *memberContent) Pieces(off int64, n int) ([]FilePiece, bool) {
	if !c.splice || off < 0 || off+int64(n) > c.m.Size {
		return nil, false
	}
	fd, phys, ok := fileOf(c.m)
	if !ok {
		return nil, false
	}
	return []FilePiece{{FD: fd, Off: phys + off, Len: n}}, true
}

// A plain member is one extent of data, so the DataMapper methods only do
// real work for sparse members.

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

// verifiedContent serves a member through the package's integrity checks:
// spliced straight from the archive while no check is due, read and
// checked chunk by chunk otherwise.
type verifiedContent struct {
	*memberContent
	vf *ova.VerifiedFile
}

func (c *verifiedContent) ReadAt(p []byte, off int64) (int, error) { return c.vf.ReadAt(p, off) }

func (c *verifiedContent) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return c.vf.ReadAtContext(ctx, p, off)
}

func (c *verifiedContent) Pieces(off int64, n int) ([]FilePiece, bool) {
	if c.vf.NeedsCheck() {
		return nil, false
	}
	return c.memberContent.Pieces(off, n)
}

func (c *verifiedContent) Span(off int64, n int) (*ova.Span, bool, error) {
	return c.vf.CheckedSpan(off, n)
}

func (c *verifiedContent) VerifyStatus() (string, string) {
	return string(c.vf.Status()), c.vf.Digest()
}
func (c *verifiedContent) Opened() { c.vf.Start() }

// contentOf is how a member is served: through its integrity checks when
// the package has them.
func contentOf(m *ova.Member, in *ova.Integrity) Content {
	mc := newMemberContent(m)
	if in == nil {
		return mc
	}
	if vf := in.File(m); vf != nil {
		return &verifiedContent{memberContent: mc, vf: vf}
	}
	return mc
}

// logicalContent serves a file made from members: joined from chunks, or
// decompressed. Its state is the worst of its members' states.
type logicalContent struct {
	r interface {
		io.ReaderAt
		Size() int64
	}
	srcs []*ova.VerifiedFile
	// startOnOpen verifies the member when the file is opened, as for a
	// member; a chunked file's chunks are each verified when a read first
	// needs them.
	startOnOpen bool
}

func (c *logicalContent) ReadAt(p []byte, off int64) (int, error) { return c.r.ReadAt(p, off) }
func (c *logicalContent) Size() int64                             { return c.r.Size() }

func (c *logicalContent) VerifyStatus() (string, string) { return worstStatus(c.srcs), "" }

func (c *logicalContent) Opened() {
	if c.startOnOpen {
		for _, f := range c.srcs {
			f.Start()
		}
	}
}

// worstStatus is the state a file made of several checked files shows.
func worstStatus(srcs []*ova.VerifiedFile) string {
	if len(srcs) == 0 {
		return string(ova.StatusOff)
	}
	rank := map[ova.Status]int{ova.StatusMismatch: 5, ova.StatusPending: 4, ova.StatusUnlisted: 3, ova.StatusVerified: 2, ova.StatusOff: 1}
	worst := srcs[0].Status()
	for _, f := range srcs[1:] {
		if st := f.Status(); rank[st] > rank[worst] {
			worst = st
		}
	}
	return string(worst)
}
