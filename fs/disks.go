package fs

import (
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/vdisk"
)

// DisksFolder is where the decoded raw views go, unless the archive has a
// top-level member of that name; then DisksFolder+".ovfmount" is used (or
// with "-2", "-3"... appended, until a free name is found), so the archive's
// own files are never hidden.
const DisksFolder = "disks"

// DiskViews decides which members are disk images and opens a raw view of
// each: disks/<member path>.raw, holding the virtual disk's bytes. A member
// is a disk image when its magic bytes say VMDK, VHD, VHDX or QCOW2, or when
// a descriptor's DiskSection names it (then an unrecognised one is a raw
// disk, served as it is). Members consumed as extents of a VMDK descriptor
// get no view of their own. A disk that cannot be decoded keeps its member
// file but gets no view, and the log says exactly why.
//
// With integrity checks (in != nil), disks are decoded from their members'
// verifying readers, so a view fails exactly when its file does, and it
// shows that file's verification state.
func DiskViews(a *ova.Archive, in *ova.Integrity, cache *vdisk.Cache, log zerolog.Logger) []VirtualFile {
	folder := disksFolder(a)
	named := descriptorDisks(a, log)
	claimed := map[string]bool{} // extents a descriptor uses
	type opened struct {
		m      *ova.Member
		im     vdisk.Image
		raw    bool
		err    error
		srcs   []*ova.VerifiedFile // the files the view reads
		reopen func() (vdisk.Image, error)
	}
	var all []opened
	for _, m := range a.Files() {
		format := vdisk.Detect(m, m.Size)
		if format == vdisk.Unknown && !named[m.Name] {
			continue
		}
		if format == vdisk.Unknown {
			all = append(all, opened{m: m, raw: true})
			continue
		}
		o := opened{m: m}
		// openWith opens the image from checked or unchecked reads, and
		// returns the checked files of every member it touched (the disk
		// and its extents), whose state the view shows.
		openWith := func(checked bool) (vdisk.Image, []*ova.VerifiedFile, error) {
			var srcs []*ova.VerifiedFile
			reader := func(m *ova.Member) io.ReaderAt {
				r := readerOf(m, in, &srcs)
				if checked {
					return r
				}
				return m
			}
			im, err := vdisk.Open(reader(m), m.Size, vdisk.Options{
				Name:  m.Name,
				Cache: cache,
				Resolve: func(name string) (io.ReaderAt, int64, error) {
					sib, err := sibling(a, m, name)
					if err != nil {
						return nil, 0, err
					}
					claimed[sib.Name] = true
					return reader(sib), sib.Size, nil
				},
			})
			return im, srcs, err
		}
		strict := in != nil && in.Mode() == ova.VerifyStrict
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
		if claimed[o.m.Name] {
			log.Debug().Str("member", o.m.Name).Msg("no raw view: the member is an extent of a descriptor's disk")
			continue
		}
		view := path.Join(folder, strings.TrimSuffix(o.m.Name, ".gz")+".raw")
		switch {
		case o.raw:
			// A raw disk is its own raw view, served zero-copy.
			views = append(views, VirtualFile{Path: view, Content: contentOf(o.m, in), ModTime: o.m.ModTime})
			log.Info().Str("view", view).Str("format", "raw").Int64("size", o.m.Size).Msg("raw view")
		case o.err != nil:
			log.Warn().Str("member", o.m.Name).Err(o.err).Msg("no raw view: the disk cannot be decoded")
		default:
			for _, w := range o.im.Warnings() {
				log.Warn().Str("member", o.m.Name).Msg(w)
			}
			views = append(views, VirtualFile{Path: view, Content: &diskContent{probe: o.im, reopen: o.reopen, path: view, log: log, srcs: o.srcs}, ModTime: o.m.ModTime})
			log.Info().Str("view", view).Str("format", o.im.Format()).Int64("size", o.im.Size()).Msg("raw view")
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

// descriptorDisks returns the members the descriptors' DiskSections name.
func descriptorDisks(a *ova.Archive, log zerolog.Logger) map[string]bool {
	disks := map[string]bool{}
	for _, d := range a.FilesWithSuffix(".ovf") {
		refs, err := ova.ParseRefs(d.Open())
		if err != nil {
			log.Warn().Str("member", d.Name).Err(err).Msg("descriptor unreadable; disks are found by their magic bytes only")
		}
		for _, f := range refs.DiskFiles() {
			href, err := ova.LocalHref(f.Href)
			if err != nil {
				continue // the archive warnings already name bad hrefs
			}
			disks[path.Join(path.Dir(d.Name), href)] = true
		}
	}
	return disks
}

// sibling finds a file a VMDK descriptor names, next to the descriptor in
// the archive. Never a host path: the name is checked and looked up in the
// archive index only.
func sibling(a *ova.Archive, from *ova.Member, name string) (*ova.Member, error) {
	rel, err := ova.LocalHref(name)
	if err != nil {
		return nil, err
	}
	m, ok := a.Lookup(path.Join(path.Dir(from.Name), rel))
	if !ok || m.Type != ova.TypeFile {
		return nil, fmt.Errorf("extent %q is not in the archive", name)
	}
	return m, nil
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
// disk made of several extents, the worst of theirs.
func (c *diskContent) VerifyStatus() (string, string) {
	if len(c.srcs) == 0 {
		return string(ova.StatusOff), ""
	}
	rank := map[ova.Status]int{ova.StatusMismatch: 5, ova.StatusPending: 4, ova.StatusUnlisted: 3, ova.StatusVerified: 2, ova.StatusOff: 1}
	worst := c.srcs[0].Status()
	for _, f := range c.srcs[1:] {
		if st := f.Status(); rank[st] > rank[worst] {
			worst = st
		}
	}
	return string(worst), c.srcs[0].Digest()
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
	for off < im.Size() {
		e, err := im.Extent(off)
		if err != nil {
			return 0, false, err
		}
		if e.Data {
			return off, true, nil
		}
		off = e.Off + e.Len
	}
	return 0, false, nil
}

func (c *diskContent) NextHole(off int64) (int64, error) {
	im, err := c.image()
	if err != nil {
		return 0, err
	}
	for off < im.Size() {
		e, err := im.Extent(off)
		if err != nil {
			return 0, err
		}
		if !e.Data {
			return off, nil
		}
		off = e.Off + e.Len
	}
	return im.Size(), nil
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
