package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/ova/ovf"
	"github.com/ovfmount/ovfmount/vdisk"
)

// DisksFolder is where the decoded raw views go, unless the archive has a
// top-level member of that name; then DisksFolder+".ovfmount" is used (or
// with "-2", "-3"... appended, until a free name is found), so the
// archive's own files are never hidden.
const DisksFolder = "disks"

// Disk is a disk of the package: one the descriptor's DiskSection names,
// or an image found among the members by its magic bytes.
type Disk struct {
	// ID is ovf:diskId; "" for a disk found by its magic bytes only.
	ID string
	// Decl is the DiskSection entry, or nil.
	Decl *ovf.Disk
	// Href is the File's href, "" when the descriptor names no file (a
	// blank disk the importer creates) or for a disk found by magic.
	Href string
	// File is the file holding the image (nil: absent, blank, or a disk
	// found by magic, whose Member is set).
	File   *File
	Member *ova.Member
	// Name is the image's path in the package (a gzip file's decoded name).
	Name string
	// Format describes the image ("vmdk streamOptimized v3", "raw"), or
	// why it has none: "absent", "none (...)", "unreadable", "gzip (...)".
	Format string
	// Size is the virtual size from the image's header (the descriptor's
	// capacity when unreadable, -1 when unknown).
	Size int64
	// View is where the decoded disk appears in the mount; "" when it gets
	// none, and Err says why.
	View string
	Err  error
	// Extents are the members a descriptor-based VMDK reads besides its
	// own.
	Extents []*ova.Member
	// Chain names the parents a child disk's view reads through, nearest
	// first; nil for a disk that stands alone.
	Chain []string

	parentMembers []*ova.Member // what the chain's parents read
	resolve       resolver      // finds files beside the disk; nil for a gzip file's image

	raw     bool        // named by DiskSection: no known format means a raw disk
	probe   vdisk.Image // opened from unchecked reads: size, format, map
	modTime time.Time
	content *viewContent // what its view serves, once planned
	// overlaid is the view with the guest's writes on top, on a mount
	// with an overlay (see UseOverlay).
	overlaid *overlaidContent
}

// diskCandidates lists the disks: every DiskSection entry, then every
// member whose magic bytes say VMDK, VHD, VHDX or QCOW2 that no file of
// the descriptor claims (as a chunk, a gzip file, or a disk already).
func (p *Package) diskCandidates(members []*ova.Member) {
	claimed := map[*ova.Member]bool{}
	byRef := map[string]*File{}
	for _, f := range p.Files {
		byRef[f.Ref.ID] = f
		if f.Chunked || f.Gzip || f.Disk != nil {
			for _, m := range f.Members {
				claimed[m] = true
			}
		}
	}
	if d := p.Descriptor; d != nil && d.Env != nil {
		hrefs := map[string]string{}
		for _, f := range d.Env.Files {
			hrefs[f.ID] = f.Href
		}
		for i := range d.Env.Disks {
			decl := &d.Env.Disks[i]
			k := &Disk{ID: decl.ID, Decl: decl, Href: hrefs[decl.FileRef], Size: decl.Capacity, raw: true}
			f := byRef[decl.FileRef]
			switch {
			case decl.FileRef == "":
				k.Format = "none (an empty disk the importer creates)"
			case f == nil:
				k.Format = "absent"
				k.Err = errors.New("its file is not in the package")
			default:
				k.File, k.Name = f, f.DecodedName()
				k.modTime = f.Members[0].ModTime
			}
			p.Disks = append(p.Disks, k)
		}
	}
	for _, m := range members {
		if claimed[m] || vdisk.Detect(m, m.Size) == vdisk.Unknown {
			continue
		}
		p.Disks = append(p.Disks, &Disk{Member: m, Name: m.Name, Size: -1, modTime: m.ModTime})
	}
}

// resolver finds the files a VMDK descriptor names as its extents, beside
// it: among an OVA's members, or in an unpacked package's folder. Never a
// host path elsewhere.
type resolver func(from *ova.Member, name string) (*ova.Member, error)

func (p *Package) archiveResolver() resolver {
	return func(from *ova.Member, name string) (*ova.Member, error) { return p.Archive.Sibling(from, name) }
}

func folderResolver(f *ova.Folder) resolver {
	return func(from *ova.Member, name string) (*ova.Member, error) {
		rel, err := ova.LocalHref(name)
		if err != nil {
			return nil, err
		}
		m, err := f.Add(path.Join(parentOf(from.Name), rel))
		if err != nil {
			return nil, fmt.Errorf("extent %q is not beside %s: %w", name, from.Name, err)
		}
		return m, nil
	}
}

// probe opens a disk's image from its unchecked bytes, for what the plan
// needs: its format, size, allocation and extents. Reading it must not
// wait for whole files to be hashed (a strict mount); the image that
// serves data is opened later, through the checks.
func (p *Package) probe(k *Disk, cache *vdisk.Cache, resolve resolver) {
	if k.probe != nil || k.Err != nil || (k.File == nil && k.Member == nil) {
		return
	}
	r, size, base, err := k.source(nil)
	if err != nil {
		k.Format, k.Err = err.Error(), err
		return
	}
	k.resolve = resolve
	tried := map[string]*chainSource{}
	im, err := vdisk.Open(r, size, vdisk.Options{Name: k.Name, Cache: cache, Raw: k.raw, Parents: p.parents(k, nil, tried),
		Resolve: func(name string) (io.ReaderAt, int64, error) {
			if base == nil {
				return nil, 0, fmt.Errorf("extent %q: a split or compressed descriptor cannot name extents", name)
			}
			m, err := resolve(base, name)
			if err != nil {
				return nil, 0, err
			}
			k.Extents = append(k.Extents, m)
			return m, m.Size, nil
		}})
	if err != nil {
		if errors.Is(err, vdisk.ErrNotDisk) {
			return // found by magic but not decodable as a disk: not a disk
		}
		k.Format, k.Err = "unreadable", err
		p.warn("%s: no raw view: %v", k.Name, err)
		return
	}
	k.probe = im
	k.keepChain(im, tried)
	k.Format, k.Size = im.Format(), im.Size()
	for _, w := range im.Warnings() {
		p.warn("%s: %s", k.Name, w)
	}
	if k.Decl != nil {
		for _, w := range ovf.CheckDisk(*k.Decl, k.Format, k.Size) {
			p.warn("%s", w)
		}
	}
}

// source is the bytes a disk is decoded from, through the checks when
// checks is set, and the member extents are looked up beside (nil for a
// chunked or gzip file).
func (k *Disk) source(checks *integrity.Checks) (io.ReaderAt, int64, *ova.Member, error) {
	if k.Member != nil {
		st := logical.StoredOf([]*ova.Member{k.Member}, checks)
		return pick(st, checks), st.Size, k.Member, nil
	}
	f := k.File
	st := logical.StoredOf(f.Members, checks)
	var base *ova.Member
	if len(f.Members) == 1 && !f.Gzip {
		base = f.Members[0]
	}
	if !f.Gzip {
		return pick(st, checks), st.Size, base, nil
	}
	if f.gz == nil {
		return nil, 0, nil, errGzipUnopened
	}
	if checks == nil {
		return f.gz.Unchecked, f.gz.Size(), nil, nil
	}
	return f.gz.Checked, f.gz.Size(), nil, nil
}

var errGzipUnopened = errors.New("gzip (its format is read when it is first mounted)")

func pick(st *logical.Stored, checks *integrity.Checks) io.ReaderAt {
	if checks == nil {
		return st.Unchecked
	}
	return st.Checked
}

// files are the checked files a disk reads: its own and its extents'.
func (k *Disk) files(checks *integrity.Checks) []*integrity.File {
	var out []*integrity.File
	for _, m := range k.members() {
		if f := checks.File(m); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// members are the stored members a disk's view reads.
func (k *Disk) members() []*ova.Member {
	var ms []*ova.Member
	if k.Member != nil {
		ms = append(ms, k.Member)
	} else if k.File != nil {
		ms = append(ms, k.File.Members...)
	}
	ms = append(ms, k.Extents...)
	return append(ms, k.parentMembers...)
}

// openGzip opens the decompressed content of every gzip file: with a saved
// seek index, or, with BuildGzip, by building one (in parallel, with
// progress in the log). A file whose index cannot be built is a warning;
// its stored bytes are still served.
func (p *Package) openGzip(opts Options, identity []byte) error {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	gopts := logical.GzipOptions{CacheDir: opts.CacheDir, Identity: identity}
	var wg sync.WaitGroup
	var mu sync.Mutex
	slots := make(chan struct{}, 2)
	for _, f := range p.Files {
		if !f.Gzip {
			continue
		}
		st := logical.StoredOf(f.Members, p.Checks)
		if !opts.BuildGzip {
			if f.gz = logical.LoadGzip(f.Name, st, gopts); f.gz != nil {
				p.closers = append(p.closers, f.gz)
			}
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			o := gopts
			start, last := time.Now(), time.Now()
			o.Progress = func(done, total int64) {
				if time.Since(last) >= 2*time.Second && done < total {
					last = time.Now()
					opts.Log.Info().Str("file", f.Name).Int64("done", done).Int64("total", total).
						Msgf("indexing the gzip file: %d%%", done*100/max(total, 1))
				}
			}
			gz, err := logical.OpenGzip(ctx, f.Name, st, p.Checks, o)
			var ce *logical.CacheError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &ce):
				p.warn("%s: the gzip index is not saved for next time: %v", f.Name, ce.Err)
			case err != nil:
				p.warn("%s: the gzip file cannot be decompressed: its stored bytes are served, its content is not: %v", f.Name, err)
				return
			}
			ev := opts.Log.Info().Str("file", f.Name).Int64("size", gz.Size()).Int("checkpoints", gz.Index.Checkpoints())
			if gz.FromCache {
				ev.Msg("gzip index loaded")
			} else {
				ev.Dur("took_ms", time.Since(start)).Msg("gzip index built")
			}
			for _, w := range gz.Index.Warnings() {
				p.warn("%s: %s", f.Name, w)
			}
			f.gz = gz
			p.closers = append(p.closers, gz)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// folderName picks the name of a folder the mount adds (DisksFolder,
// FilesFolder): base, unless the archive has a member of that name.
func folderName(a *ova.Archive, base string) string {
	name := base
	for i := 1; ; i++ {
		if _, taken := a.Lookup(name); !taken {
			return name
		}
		name = base + ".ovfmount"
		if i > 1 {
			name += fmt.Sprintf("-%d", i)
		}
	}
}

// assignViews names the view of every disk that decodes, except extents
// of another disk.
func (p *Package) assignViews() {
	p.DisksFolder = folderName(p.Archive, DisksFolder)
	extent := map[*ova.Member]bool{}
	for _, k := range p.Disks {
		for _, m := range k.Extents {
			extent[m] = true
		}
	}
	views := map[string]bool{}
	kept := p.Disks[:0]
	for _, k := range p.Disks {
		if k.Member != nil && extent[k.Member] {
			continue // an extent of a descriptor's disk, not a disk of its own
		}
		kept = append(kept, k)
	}
	p.Disks = kept
	for _, k := range p.Disks {
		if k.probe == nil {
			continue
		}
		view := path.Join(p.DisksFolder, strings.TrimSuffix(k.Name, ".gz")+".raw")
		if views[view] {
			continue
		}
		views[view] = true
		k.View = view
	}
}

// served is what the disk's view serves: the view, or its overlay.
func (k *Disk) served() Content {
	if k.overlaid != nil {
		return k.overlaid
	}
	return k.content
}
