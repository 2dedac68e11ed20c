package appliance

import (
	"context"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/vdisk"
)

// EntryType is what an entry of the mount is.
type EntryType int

const (
	Dir EntryType = iota
	Regular
	Symlink
)

// Role is what an entry is to the package.
type Role string

const (
	RoleFolder      Role = "folder"      // a directory
	RoleSymlink     Role = "symlink"     // a symlink of the archive, never followed
	RoleDescriptor  Role = "descriptor"  // the package's descriptor
	RoleManifest    Role = "manifest"    // the package's own manifest
	RoleCertificate Role = "certificate" // the package's own certificate
	RoleForeign     Role = "foreign"     // another manifest or certificate: vouches for nothing
	RoleFile        Role = "file"        // a file the descriptor's References name
	RoleChunk       Role = "chunk"       // a chunk of a file split with ovf:chunkSize
	RoleExtent      Role = "extent"      // an extent of a descriptor-based VMDK
	RoleDisk        Role = "disk"        // a disk image the descriptor does not name
	RoleOther       Role = "other"       // any other member
	RoleLogical     Role = "logical"     // a chunked file joined, or a gzip file decompressed
	RoleView        Role = "view"        // the decoded raw view of a disk
	RolePartition   Role = "partition"   // a partition of a disk's view
	RoleVolume      Role = "volume"      // an LVM logical volume
	RoleGuest       Role = "guest"       // the root of a guest filesystem, under files/
	RoleArchive     Role = "archive"     // a library's folder of one archive (see Library)
)

// Entry is one thing the mount shows.
type Entry struct {
	Path    string // slash-separated, relative to the mount's root; "" is the root
	Type    EntryType
	Perm    fs.FileMode
	ModTime time.Time
	Target  string // a symlink's target, as stored
	// Member is the archive member shown (nil for the decoded views, the
	// logical files and the folders made for them).
	Member *ova.Member
	Role   Role
	// Members are the stored members a regular file's bytes come from:
	// what covers it when the package is verified.
	Members []*ova.Member
	// Content serves a regular file.
	Content Content
	// Expand, on a folder, finds the entries under it that are known only
	// once disks are read (partitions, logical volumes, guest
	// filesystems). It is called when the folder is first looked into,
	// with that request's context, until it succeeds; the mount shows its
	// entries from then on. Their paths are under the folder's.
	Expand func(ctx context.Context) ([]*Entry, error)
	// Guest, on a folder, is the guest filesystem shown there: the folder
	// is its root directory.
	Guest *GuestTree
	// Attrs, on a folder, gives the extended attributes it shows, asked
	// each time (a library's folder tells how its archive is doing).
	Attrs func() map[string]string
}

// plan lays out every entry the mount shows.
func (p *Package) plan(cache *vdisk.Cache) {
	roles := map[*ova.Member]Role{}
	if p.Descriptor != nil {
		roles[p.Descriptor.Member] = RoleDescriptor
	}
	roles[p.Manifest] = RoleManifest
	roles[p.Cert] = RoleCertificate
	for _, m := range p.Foreign {
		roles[m] = RoleForeign
	}
	for _, f := range p.Files {
		for _, m := range f.Members {
			if _, ok := roles[m]; !ok {
				roles[m] = RoleFile
				if f.Chunked {
					roles[m] = RoleChunk
				}
			}
		}
	}
	for _, k := range p.Disks {
		if k.Member != nil {
			roles[k.Member] = RoleDisk
		}
		for _, m := range k.Extents {
			roles[m] = RoleExtent
		}
	}
	mtime := func(t time.Time) time.Time {
		if t.IsZero() {
			return p.modTime
		}
		return t
	}
	taken := map[string]bool{}
	for _, m := range p.Archive.Members() {
		e := &Entry{Path: m.Name, Perm: m.Mode.Perm(), ModTime: mtime(m.ModTime), Member: m}
		switch m.Type {
		case ova.TypeDir:
			e.Type, e.Role = Dir, RoleFolder
		case ova.TypeSymlink:
			e.Type, e.Role, e.Target = Symlink, RoleSymlink, m.Linkname
		default:
			e.Type, e.Members = Regular, []*ova.Member{m}
			e.Role = roles[m]
			if e.Role == "" {
				e.Role = RoleOther
			}
			e.Content = p.memberContent(m)
		}
		taken[m.Name] = true
		p.Entries = append(p.Entries, e)
	}
	virtual := func(e *Entry) {
		for dir := parentOf(e.Path); dir != "" && !taken[dir]; dir = parentOf(dir) {
			taken[dir] = true
			p.Entries = append(p.Entries, &Entry{Path: dir, Type: Dir, Perm: 0o755, ModTime: p.modTime, Role: RoleFolder})
		}
		taken[e.Path] = true
		p.Entries = append(p.Entries, e)
	}
	for _, f := range p.Files {
		if !f.Chunked && !f.Gzip {
			continue
		}
		c := p.logicalContent(f)
		if c == nil || taken[f.DecodedName()] {
			continue
		}
		virtual(&Entry{Path: f.DecodedName(), Type: Regular, Perm: 0o444, ModTime: mtime(f.Members[0].ModTime),
			Role: RoleLogical, Members: f.Members, Content: c})
	}
	for _, k := range p.Disks {
		if k.View == "" || taken[k.View] {
			continue
		}
		k.content = p.viewContent(k, cache)
		virtual(&Entry{Path: k.View, Type: Regular, Perm: 0o444, ModTime: mtime(k.modTime), Role: RoleView,
			Members: k.members(), Content: k.content})
	}
	p.planInside(virtual, taken)
	sort.Slice(p.Entries, func(i, j int) bool { return p.Entries[i].Path < p.Entries[j].Path })
}

// planInside adds the folders whose entries are found when first looked
// into, because finding them reads the disks (see Package.Inside): the
// partition and logical volume views under the disks folder, and the
// guest filesystems under the files folder.
func (p *Package) planInside(virtual func(*Entry), taken map[string]bool) {
	disks := false
	for _, k := range p.Disks {
		disks = disks || k.content != nil
	}
	p.isos = p.isoMembers()
	if !disks && len(p.isos) == 0 {
		return
	}
	for _, e := range p.Entries {
		if e.Path == p.DisksFolder && e.Type == Dir && e.Member == nil {
			e.Expand = p.expandDisks
		}
	}
	p.FilesFolder = folderName(p.Archive, FilesFolder)
	if !taken[p.FilesFolder] {
		virtual(&Entry{Path: p.FilesFolder, Type: Dir, Perm: 0o755, ModTime: p.modTime, Role: RoleFolder, Expand: p.expandFiles})
	}
}

// expandDisks lists the partition and logical volume views.
func (p *Package) expandDisks(ctx context.Context) ([]*Entry, error) {
	in, err := p.Inside(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, v := range in.Volumes {
		if v.View == "" || (v.Kind != VolumePartition && v.Kind != VolumeLV) {
			continue
		}
		role, mtime, members := RolePartition, p.modTime, []*ova.Member(nil)
		if v.Kind == VolumeLV {
			role = RoleVolume
		}
		if v.Disk != nil {
			members = v.Disk.members()
			if !v.Disk.modTime.IsZero() {
				mtime = v.Disk.modTime
			}
		}
		perm := fs.FileMode(0o444)
		if _, ok := v.content.(Writable); ok {
			perm = 0o644
		}
		out = append(out, &Entry{Path: v.View, Type: Regular, Perm: perm, ModTime: mtime, Role: role,
			Members: members, Content: v.content})
	}
	return out, nil
}

// expandFiles lists the guest filesystems, one folder per volume.
func (p *Package) expandFiles(ctx context.Context) ([]*Entry, error) {
	in, err := p.Inside(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, v := range in.Volumes {
		if v.Files == "" {
			continue
		}
		c := v.content
		out = append(out, &Entry{Path: v.Files, Type: Dir, Perm: 0o755, ModTime: p.modTime, Role: RoleGuest,
			Guest: &GuestTree{Volume: v.Name, FS: v.FS, Status: func() string { st, _ := c.Status(); return st }}})
	}
	return out, nil
}

// AllEntries is Entries with what the folders that expand hold
// (partition and volume views, the roots of guest filesystems), sorted by
// path: everything the mount shows once looked into, short of the guest
// filesystems' own files. info and verify list it. It reads the disks'
// tables (see Inside).
func (p *Package) AllEntries(ctx context.Context) ([]*Entry, error) {
	out := append([]*Entry{}, p.Entries...)
	for _, e := range p.Entries {
		if e.Expand == nil {
			continue
		}
		more, err := e.Expand(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Lookup finds an entry by its path in the mount.
func (p *Package) Lookup(path string) *Entry {
	path = strings.Trim(path, "/")
	i := sort.Search(len(p.Entries), func(i int) bool { return p.Entries[i].Path >= path })
	if i < len(p.Entries) && p.Entries[i].Path == path {
		return p.Entries[i]
	}
	return nil
}
