package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/ovf"
	"github.com/ovfmount/ovfmount/vdisk"
)

// DisksFolder is where the decoded raw views go, unless the archive has a
// top-level member of that name; then DisksFolder+".ovfmount" is used (or
// with "-2", "-3"... appended, until a free name is found), so the archive's
// own files are never hidden.
const DisksFolder = "disks"

// Layout decides what the mount shows besides the members:
//
//   - the logical files of the descriptor: a file split into chunks
//     (ovf:chunkSize) appears whole at its href, reading across its chunk
//     members, each verified on its own when first read;
//   - a raw view, disks/<file>.raw, of every disk image: every member whose
//     magic bytes say VMDK, VHD, VHDX or QCOW2, and every file the
//     descriptor's DiskSection names (an unrecognised one is a raw disk,
//     served as it is). Members consumed as extents of a VMDK descriptor,
//     or as chunks of a logical file, get no view of their own. A disk
//     that cannot be decoded keeps its member file but gets no view, and
//     the log says exactly why.
//
// With integrity checks (in != nil), everything is read through the
// members' verifying readers, so a view fails exactly when its file does,
// and shows that file's verification state.
func Layout(a *ova.Archive, opts LayoutOptions) ([]VirtualFile, error) {
	var out []VirtualFile
	l := &layout{a: a, in: opts.Integrity, cache: opts.Cache, log: opts.Log, claimed: map[string]bool{}, named: map[string]bool{}}
	var files []*ova.LogicalFile
	for _, d := range a.Descriptors() {
		if d.Err != nil {
			l.log.Warn().Str("descriptor", d.Member.Name).Err(d.Err).Msg("descriptor unreadable; disks are found by their magic bytes only")
			continue
		}
		for _, w := range d.Env.Warnings {
			l.log.Warn().Str("descriptor", d.Member.Name).Msg(w)
		}
		fs, warns := ova.ResolveFiles(a, d)
		for _, w := range warns {
			l.log.Warn().Msg(w.String())
		}
		files = append(files, fs...)
	}
	gz, err := l.openGzip(opts, files)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src := l.logical(f, gz[f])
		if src == nil {
			continue
		}
		if f.Chunked || f.Gzip {
			for _, m := range f.Members {
				l.claimed[m.Name] = true // its content is the logical file's
			}
			if m, taken := a.Lookup(f.DecodedName()); !taken || m.Name == "" {
				out = append(out, VirtualFile{Path: f.DecodedName(), Content: src.content, ModTime: f.Members[0].ModTime})
			}
		}
		if f.Disk != nil {
			l.disks = append(l.disks, diskCandidate{name: f.DecodedName(), src: src, raw: true, disk: f.Disk, modTime: f.Members[0].ModTime})
			for _, m := range f.Members {
				l.named[m.Name] = true
			}
		}
	}
	for _, m := range a.Files() {
		if l.claimed[m.Name] || l.named[m.Name] || vdisk.Detect(m, m.Size) == vdisk.Unknown {
			continue
		}
		l.disks = append(l.disks, diskCandidate{name: m.Name, src: l.memberSource(m), modTime: m.ModTime})
	}
	return append(out, l.views()...), nil
}

// LayoutOptions configure Layout.
type LayoutOptions struct {
	// Integrity, if set, checks everything read (see Layout).
	Integrity *ova.Integrity
	// Cache holds decoded disk data for all views.
	Cache *vdisk.Cache
	// Gzip says where gzip seek indexes are kept. Layout logs the
	// progress of the ones it builds.
	Gzip ova.GzipOptions
	Log  zerolog.Logger
	// Context stops index builds: Layout then fails with its error.
	Context context.Context
}

// source is where a logical file's bytes come from, checked or not.
type source struct {
	r       io.ReaderAt // the bytes, through integrity checks where they apply
	unckd   io.ReaderAt // the same bytes, unchecked (for a strict mount's size probe)
	size    int64
	member  *ova.Member // set when the file is exactly one member
	srcs    []*ova.VerifiedFile
	content Content
}

type diskCandidate struct {
	name    string // the file's name; its view is disks/<name>.raw
	src     *source
	raw     bool      // named by DiskSection: no known format means a raw disk
	disk    *ovf.Disk // the DiskSection entry, if any
	modTime time.Time
}

type layout struct {
	a       *ova.Archive
	in      *ova.Integrity
	cache   *vdisk.Cache
	log     zerolog.Logger
	claimed map[string]bool // members whose content belongs to another file
	named   map[string]bool // members the descriptor names as disks
	disks   []diskCandidate
}

func (l *layout) memberSource(m *ova.Member) *source {
	st := ova.StoredOf([]*ova.Member{m}, l.in)
	return &source{r: st.Checked, unckd: st.Unchecked, size: st.Size, member: m, srcs: st.Files, content: contentOf(m, l.in)}
}

// logical returns the source of a descriptor's file; for a gzip file, of
// its decompressed content (nil when it could not be opened).
func (l *layout) logical(f *ova.LogicalFile, gz *ova.Gzip) *source {
	switch {
	case f.Gzip && gz == nil:
		return nil
	case f.Gzip:
		st := ova.StoredOf(f.Members, l.in)
		return &source{r: gz.Checked, unckd: gz.Unchecked, size: gz.Size(), srcs: st.Files,
			content: &logicalContent{r: gz.Checked, srcs: st.Files, startOnOpen: len(f.Members) == 1}}
	case f.Chunked:
		st := ova.StoredOf(f.Members, l.in)
		return &source{r: st.Checked, unckd: st.Unchecked, size: st.Size, srcs: st.Files,
			content: &logicalContent{r: st.Checked.(*ova.JoinedReader), srcs: st.Files}}
	}
	return l.memberSource(f.Members[0])
}

// openGzip opens the decompressed content of every gzip file, building
// seek indexes that are not saved yet in parallel, with progress in the
// log. A file whose index cannot be built is logged and left out; its
// stored bytes are still served.
func (l *layout) openGzip(opts LayoutOptions, files []*ova.LogicalFile) (map[*ova.LogicalFile]*ova.Gzip, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	out := map[*ova.LogicalFile]*ova.Gzip{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, f := range files {
		if !f.Gzip {
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			gopts := opts.Gzip
			start, last := time.Now(), time.Now()
			gopts.Progress = func(done, total int64) {
				if time.Since(last) >= 2*time.Second && done < total {
					last = time.Now()
					l.log.Info().Str("file", f.Name).Int64("done", done).Int64("total", total).
						Msgf("indexing the gzip file: %d%%", done*100/max(total, 1))
				}
			}
			gz, err := ova.OpenGzip(ctx, l.a, f, ova.StoredOf(f.Members, l.in), l.in, gopts)
			var ce *ova.CacheError
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &ce):
				l.log.Warn().Str("file", f.Name).Err(ce.Err).Msg("the gzip index is not saved for next time")
			case err != nil:
				l.log.Warn().Str("file", f.Name).Err(err).Msg("the gzip file cannot be decompressed: its stored bytes are served, its content is not")
				return
			}
			ev := l.log.Info().Str("file", f.Name).Int64("size", gz.Size()).Int("checkpoints", gz.Index.Checkpoints())
			if gz.FromCache {
				ev.Msg("gzip index loaded")
			} else {
				ev.Dur("took_ms", time.Since(start)).Msg("gzip index built")
			}
			for _, w := range gz.Index.Warnings() {
				l.log.Warn().Str("file", f.Name).Msg(w)
			}
			mu.Lock()
			out[f] = gz
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// views opens a raw view of every disk candidate.
func (l *layout) views() []VirtualFile {
	folder := disksFolder(l.a)
	type opened struct {
		c      diskCandidate
		im     vdisk.Image
		err    error
		srcs   []*ova.VerifiedFile
		reopen func() (vdisk.Image, error)
	}
	var all []opened
	for _, c := range l.disks {
		o := opened{c: c}
		if c.raw && c.src.member != nil && vdisk.Detect(c.src.member, c.src.size) == vdisk.Unknown {
			all = append(all, o) // a raw disk: its member is its view
			continue
		}
		base := c.src.member
		// openWith opens the image from checked or unchecked reads, and
		// returns the checked files of every member it touched (the disk
		// and its extents), whose state the view shows.
		openWith := func(checked bool) (vdisk.Image, []*ova.VerifiedFile, error) {
			srcs := append([]*ova.VerifiedFile(nil), c.src.srcs...)
			r := c.src.unckd
			if checked {
				r = c.src.r
			}
			im, err := vdisk.Open(r, c.src.size, vdisk.Options{
				Name:  c.name,
				Cache: l.cache,
				Raw:   c.raw,
				Resolve: func(name string) (io.ReaderAt, int64, error) {
					if base == nil {
						return nil, 0, fmt.Errorf("extent %q: a split or compressed descriptor cannot name extents", name)
					}
					sib, err := l.a.Sibling(base, name)
					if err != nil {
						return nil, 0, err
					}
					l.claimed[sib.Name] = true
					sr := readerOf(sib, l.in, &srcs)
					if checked {
						return sr, sib.Size, nil
					}
					return sib, sib.Size, nil
				},
			})
			return im, srcs, err
		}
		strict := l.in != nil && l.in.Mode() == ova.VerifyStrict
		// A strict mount must not wait at mount time for whole disks to
		// be hashed, nor serve data through tables read before they were
		// checked: it learns the size from the unchecked header, and
		// opens the image that serves data on the first read, through the
		// checked readers, once the files are verified.
		o.im, o.srcs, o.err = openWith(!strict)
		if strict && o.err == nil {
			o.reopen = func() (vdisk.Image, error) {
				im, _, err := openWith(true)
				return im, err
			}
		}
		all = append(all, o)
	}
	var views []VirtualFile
	for _, o := range all {
		if o.c.src.member != nil && l.claimed[o.c.src.member.Name] && !o.c.raw {
			l.log.Debug().Str("member", o.c.name).Msg("no raw view: the member is an extent of a descriptor's disk")
			continue
		}
		view := path.Join(folder, strings.TrimSuffix(o.c.name, ".gz")+".raw")
		switch {
		case o.im == nil && o.err == nil:
			views = append(views, VirtualFile{Path: view, Content: o.c.src.content, ModTime: o.c.modTime})
			l.log.Info().Str("view", view).Str("format", "raw").Int64("size", o.c.src.size).Msg("raw view")
		case o.err != nil:
			l.log.Warn().Str("file", o.c.name).Err(o.err).Msg("no raw view: the disk cannot be decoded")
		default:
			for _, w := range o.im.Warnings() {
				l.log.Warn().Str("file", o.c.name).Msg(w)
			}
			if o.c.disk != nil {
				for _, w := range ovf.CheckDisk(*o.c.disk, o.im.Format(), o.im.Size()) {
					l.log.Warn().Str("file", o.c.name).Msg(w)
				}
			}
			views = append(views, VirtualFile{Path: view, Content: &diskContent{probe: o.im, reopen: o.reopen, path: view, log: l.log, srcs: o.srcs}, ModTime: o.c.modTime})
			l.log.Info().Str("view", view).Str("format", o.im.Format()).Int64("size", o.im.Size()).Msg("raw view")
		}
	}
	return views
}

// readerOf is what a disk is decoded from: the member's verifying reader
// when the package is checked, else the member. srcs collects the former.
func readerOf(m *ova.Member, in *ova.Integrity, srcs *[]*ova.VerifiedFile) io.ReaderAt {
	if in == nil {
		return m
	}
	vf := in.File(m)
	if vf == nil {
		return m
	}
	*srcs = append(*srcs, vf)
	return vf
}

// DisksFolderOf is the folder the raw views of a package go to.
func DisksFolderOf(a *ova.Archive) string { return disksFolder(a) }

// disksFolder picks the raw views' folder name.
func disksFolder(a *ova.Archive) string {
	name := DisksFolder
	for i := 1; ; i++ {
		if _, taken := a.Lookup(name); !taken {
			return name
		}
		name = DisksFolder + ".ovfmount"
		if i > 1 {
			name += fmt.Sprintf("-%d", i)
		}
	}
}

// diskContent serves a decoded disk.
type diskContent struct {
	// probe is the image opened at mount. On a strict mount it was read
	// unchecked and only gives the size and st_blocks; reopen then opens,
	// on the first read, the image that serves data.
	probe  vdisk.Image
	reopen func() (vdisk.Image, error)
	once   sync.Once
	im     vdisk.Image
	imErr  error

	path string
	log  zerolog.Logger
	srcs []*ova.VerifiedFile // the checked files it is decoded from
}

// image is the image that serves data.
func (c *diskContent) image() (vdisk.Image, error) {
	if c.reopen == nil {
		return c.probe, nil
	}
	c.once.Do(func() {
		c.im, c.imErr = c.reopen()
		if c.imErr == nil && c.im.Size() != c.probe.Size() {
			c.imErr = fmt.Errorf("vdisk: %s: the verified image is %d bytes, the header read at mount said %d", c.path, c.im.Size(), c.probe.Size())
		}
	})
	return c.im, c.imErr
}

// VerifyStatus is the state of the file the disk is decoded from; for a
// disk made of several extents or chunks, the worst of theirs.
func (c *diskContent) VerifyStatus() (string, string) {
	digest := ""
	if len(c.srcs) == 1 {
		digest = c.srcs[0].Digest()
	}
	return worstStatus(c.srcs), digest
}

// Opened starts the lazy verification of the files the disk reads.
func (c *diskContent) Opened() {
	for _, f := range c.srcs {
		f.Start()
	}
}

func (c *diskContent) ReadAt(p []byte, off int64) (int, error) {
	im, err := c.image()
	if err != nil {
		return 0, err
	}
	return im.ReadAt(p, off)
}

func (c *diskContent) Size() int64 { return c.probe.Size() }

// Pieces serves the uncompressed parts of a disk (VHD, VHDX and QCOW2
// blocks, flat extents) straight from the archive's file, as members are,
// and its holes from a file of zeros.
func (c *diskContent) Pieces(off int64, n int) ([]FilePiece, bool) {
	im, err := c.image()
	if err != nil {
		return nil, false
	}
	segs, ok := im.Segments(off, n)
	if !ok {
		return nil, false
	}
	pieces := make([]FilePiece, 0, len(segs))
	for _, sg := range segs {
		if sg.Zero {
			fd, ok := zeroFD()
			if !ok {
				return nil, false
			}
			pieces = append(pieces, FilePiece{FD: fd, Len: sg.Len})
			continue
		}
		fd, phys, ok := resolveFile(sg.Src, sg.Phys, sg.Len)
		if !ok {
			return nil, false
		}
		pieces = append(pieces, FilePiece{FD: fd, Off: phys, Len: sg.Len})
	}
	return pieces, true
}

// resolveFile finds the host file holding n bytes at phys of src, looking
// through the SectionReaders formats bound their source with down to the
// archive member.
func resolveFile(src io.ReaderAt, phys int64, n int) (uintptr, int64, bool) {
	for {
		sr, isSection := src.(*io.SectionReader)
		if !isSection {
			break
		}
		outer, base, size := sr.Outer()
		if phys < 0 || phys+int64(n) > size {
			return 0, 0, false
		}
		src, phys = outer, base+phys
	}
	if vf, isChecked := src.(*ova.VerifiedFile); isChecked {
		if vf.NeedsCheck() {
			return 0, 0, false // its bytes must be read and checked first
		}
		src = vf.Member()
	}
	m, isMember := src.(*ova.Member)
	if !isMember || phys < 0 || phys+int64(n) > m.Size {
		return 0, 0, false // e.g. a short last cluster that reads as zeros
	}
	fd, base, ok := fileOf(m)
	return fd, base + phys, ok
}

func (c *diskContent) NextData(off int64) (int64, bool, error) {
	im, err := c.image()
	if err != nil {
		return 0, false, err
	}
	return im.SeekData(off)
}

func (c *diskContent) NextHole(off int64) (int64, error) {
	im, err := c.image()
	if err != nil {
		return 0, err
	}
	return im.SeekHole(off)
}

// Allocated is the disk's data bytes, for st_blocks; if the allocation map
// cannot be walked (a damaged table), the full size is reported rather
// than a number that would look sparse.
func (c *diskContent) Allocated() int64 {
	n, err := c.probe.Allocated()
	if err != nil {
		c.log.Debug().Err(err).Str("view", c.path).Msg("allocation map unreadable; st_blocks shows the full size")
		return c.probe.Size()
	}
	return n
}
