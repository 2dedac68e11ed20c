package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/guestfs/inspect"
	"github.com/ovfmount/ovfmount/guestfs/probe"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/volume/lvm"
	"github.com/ovfmount/ovfmount/volume/partition"
)

// FilesFolder is where guest filesystems are shown, one folder per
// volume, under the same rule as DisksFolder: "files.ovfmount" (and so on)
// when the archive has a top-level member of that name.
const FilesFolder = "files"

// Inside is what a package's disks hold: their partition tables, the LVM
// volume groups on them, the volumes these make, and the filesystems and
// operating systems found there. It is found once, when first needed
// ([Package.Inside]), by reading the disks through the same checks as any
// read of their views.
type Inside struct {
	Disks   []*DiskInside
	VGs     []*lvm.VG
	Volumes []*Volume
	OS      []inspect.OS
	// Warnings are what the tables, volume groups and filesystems
	// tolerated, and why a volume shows no files, each said once.
	Warnings []string
}

// DiskInside is one disk's partition table.
type DiskInside struct {
	Disk  *Disk
	Table *partition.Table // nil when the disk has none
}

// VolumeKind is what a volume is.
type VolumeKind string

const (
	VolumeDisk      VolumeKind = "disk"      // a whole disk without a partition table
	VolumePartition VolumeKind = "partition" // a partition
	VolumeLV        VolumeKind = "lv"        // an LVM logical volume
	VolumeISO       VolumeKind = "iso"       // an ISO 9660 member of the package
)

// Volume is a block device inside the package: where a filesystem or an
// LVM physical volume can be.
type Volume struct {
	// Name is the volume's name under disks/ and files/: "disk1.vmdk.p1",
	// "disk1.vmdk.vg0-root", "disk1.vmdk.raw" for a whole disk, the
	// member's name for an ISO image.
	Name string
	Kind VolumeKind
	// Disk is the disk it lies in (the first physical volume's for a
	// logical volume); nil for an ISO member.
	Disk *Disk
	Size int64
	// Partition, or VG and LV, describe it.
	Partition *partition.Partition
	VG        *lvm.VG
	LV        *lvm.LV
	// View is the path of its block device in the mount: the raw view for
	// a whole disk, the member for an ISO image; "" when it has none (a
	// logical volume of a kind not read, Note says why).
	View string
	Note string
	// PV says it holds an LVM physical volume.
	PV bool
	// FS is its filesystem, FSErr why one that was recognised could not
	// be opened; Files is the path of its tree in the mount ("" when
	// none).
	FS    guestfs.FS
	FSErr error
	Files string

	content Content
}

// inside finds a package's Inside once; see Package.Inside.
type inside struct {
	mu  sync.Mutex
	got *Inside
}

// Inside reads the disks' partition tables, LVM metadata and filesystems,
// the first time it is called, and returns what they hold. Reads go
// through the disks' checks: with strict verification the first call
// waits, as ctx allows, until the disks are verified. An error is returned
// only when ctx ended; a disk that cannot be read is a warning.
func (p *Package) Inside(ctx context.Context) (*Inside, error) {
	p.in.mu.Lock()
	defer p.in.mu.Unlock()
	if p.in.got != nil {
		return p.in.got, nil
	}
	in := &Inside{}
	seen := map[string]bool{}
	warn := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if !seen[s] {
			seen[s] = true
			in.Warnings = append(in.Warnings, s)
		}
	}
	taken := map[string]bool{}
	add := func(v *Volume) {
		if taken[v.Name] {
			warn("%s: another volume has that name; it is left out", v.Name)
			return
		}
		taken[v.Name] = true
		in.Volumes = append(in.Volumes, v)
	}
	for _, k := range p.Disks {
		if k.content == nil {
			continue
		}
		if err := p.diskVolumes(ctx, k, in, add, warn); err != nil {
			return nil, err
		}
	}
	if err := p.lvmVolumes(ctx, in, add, warn); err != nil {
		return nil, err
	}
	for _, m := range p.isos {
		add(&Volume{Name: path.Base(m.Name), Kind: VolumeISO, Size: m.Size, View: m.Name, content: p.memberContent(m)})
	}
	if err := p.openFilesystems(ctx, in, warn); err != nil {
		return nil, err
	}
	var vols []inspect.Volume
	for _, v := range in.Volumes {
		if v.FS != nil {
			vols = append(vols, inspect.Volume{Name: v.Name, FS: v.FS})
		}
	}
	in.OS = inspect.Inspect(vols)
	p.in.got = in
	if p.logIn {
		for _, w := range in.Warnings {
			p.log.Warn().Msg(w)
		}
		p.log.Info().Int("volumes", len(in.Volumes)).Int("filesystems", len(vols)).Int("operatingSystems", len(in.OS)).
			Msg("disks read: partitions, volumes and filesystems found")
	}
	return in, nil
}

// diskVolumes reads one disk's partition table: its partitions are
// volumes, or, without a table, the whole disk is one.
func (p *Package) diskVolumes(ctx context.Context, k *Disk, in *Inside, add func(*Volume), warn func(string, ...any)) error {
	c := k.served()
	r := contentReader{ctx: ctx, c: c}
	base := strings.TrimSuffix(path.Base(k.View), ".raw")
	t, err := partition.Read(r, c.Size())
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, partition.ErrNoTable):
		in.Disks = append(in.Disks, &DiskInside{Disk: k})
		add(&Volume{Name: path.Base(k.View), Kind: VolumeDisk, Disk: k, Size: c.Size(), View: k.View, content: c})
		return nil
	case err != nil:
		in.Disks = append(in.Disks, &DiskInside{Disk: k})
		warn("%s: partition table: %v", k.View, err)
		return nil
	}
	in.Disks = append(in.Disks, &DiskInside{Disk: k, Table: t})
	for _, w := range t.Warnings {
		warn("%s: %s", k.View, w)
	}
	for i := range t.Partitions {
		pt := &t.Partitions[i]
		if pt.Extended {
			continue // a container of logical partitions, shown as those
		}
		name := base + ".p" + strconv.Itoa(pt.Number)
		add(&Volume{Name: name, Kind: VolumePartition, Disk: k, Size: pt.Size, Partition: pt,
			View: path.Join(p.DisksFolder, name), content: newSection(c, pt.Start, pt.Size)})
	}
	return nil
}

// lvmVolumes finds the LVM physical volumes among the volumes so far, and
// the logical volumes of the groups they make.
func (p *Package) lvmVolumes(ctx context.Context, in *Inside, add func(*Volume), warn func(string, ...any)) error {
	var pvs []*lvm.PV
	home := map[string]*Volume{} // by PV UUID
	for _, v := range in.Volumes {
		// The physical volume keeps its reader for the logical volumes'
		// reads, which must not end with this request: it is given one
		// without a context, once a read with ctx has passed the checks.
		if err := prime(ctx, v.content); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			warn("%s: %v", v.Name, err)
			continue
		}
		pv, err := lvm.ReadPV(contentReader{ctx: context.Background(), c: v.content}, v.content.Size())
		switch {
		case errors.Is(err, lvm.ErrNoLabel):
			continue
		case err != nil:
			warn("%s: LVM physical volume: %v", v.Name, err)
			continue
		}
		for _, w := range pv.Warnings {
			warn("%s: %s", v.Name, w)
		}
		v.PV = true
		pvs = append(pvs, pv)
		home[pv.UUID] = v
	}
	if len(pvs) == 0 {
		return nil
	}
	vgs, warnings := lvm.Assemble(pvs)
	for _, w := range warnings {
		warn("LVM: %s", w)
	}
	in.VGs = vgs
	for _, vg := range vgs {
		for _, w := range vg.Warnings {
			warn("LVM volume group %s: %s", vg.Name, w)
		}
		var first *Volume
		for _, pv := range vg.PVs {
			if first = home[pv.UUID]; first != nil {
				break
			}
		}
		if first == nil {
			continue
		}
		prefix := first.Name
		if first.Disk != nil {
			prefix = strings.TrimSuffix(path.Base(first.Disk.View), ".raw")
		}
		for _, lv := range vg.LVs {
			if !lv.Visible {
				continue
			}
			name := prefix + "." + dmName(vg.Name, lv.Name)
			v := &Volume{Name: name, Kind: VolumeLV, Disk: first.Disk, Size: lv.Size, VG: vg, LV: lv}
			r, err := lv.Open()
			if err != nil {
				v.Note = lv.Reason
				if v.Note == "" {
					v.Note = err.Error()
				}
				warn("%s: %s logical volume: no view (%s)", name, lv.Type, v.Note)
				add(v)
				continue
			}
			var srcs []Content
			seen := map[string]bool{}
			pvs := map[string]Content{} // by the name the segments give the PV
			for _, sg := range lv.Segments {
				for _, st := range sg.Stripes {
					if h := home[st.PVUUID]; h != nil {
						pvs[st.PV] = h.content
						if !seen[st.PVUUID] {
							seen[st.PVUUID] = true
							srcs = append(srcs, h.content)
						}
					}
				}
			}
			v.View = path.Join(p.DisksFolder, name)
			v.content = newLVContent(r, srcs, pvs)
			add(v)
		}
	}
	return nil
}

// prime reads a volume's first byte with ctx: on a strict mount that is
// where the wait for the disk's checks happens, as the request allows, so
// that readers kept for later never wait.
func prime(ctx context.Context, c Content) error {
	var b [1]byte
	_, err := (contentReader{ctx: ctx, c: c}).ReadAt(b[:], 0)
	return err
}

// dmName is the name device-mapper gives a logical volume: VG and LV
// joined by a hyphen, each hyphen inside them doubled, so that the split
// stays unambiguous (/dev/mapper/my--vg-root).
func dmName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

// isoMembers are the members that are ISO 9660 images: files of the
// package that are not its descriptor, manifest, certificate or disks,
// and have a volume descriptor's magic, "CD001" at 32769. The magic is
// read without checks, when the package is opened, as disks' are: it only
// decides that files/ has a folder for the member; its filesystem is read
// through the checks.
func (p *Package) isoMembers() []*ova.Member {
	if p.Archive == nil {
		return nil
	}
	skip := map[*ova.Member]bool{p.Manifest: true, p.Cert: true}
	if p.Descriptor != nil {
		skip[p.Descriptor.Member] = true
	}
	for _, k := range p.Disks {
		skip[k.Member] = true
		for _, m := range k.Extents {
			skip[m] = true
		}
	}
	var out []*ova.Member
	for _, m := range p.Archive.Files() {
		if skip[m] || m.Size < isoMinSize {
			continue
		}
		var b [5]byte
		if _, err := m.ReadAt(b[:], 32769); err == nil && string(b[:]) == "CD001" {
			out = append(out, m)
		}
	}
	return out
}

// An ISO 9660 volume descriptor set starts at 32 KiB and is at least two
// 2 KiB sectors long (a primary descriptor and a terminator).
const isoMinSize = 32<<10 + 2*2048

// openFilesystems opens the filesystem of every volume that is not an
// LVM physical volume. A volume whose filesystem does not open keeps its
// block view, and the warning says why.
func (p *Package) openFilesystems(ctx context.Context, in *Inside, warn func(string, ...any)) error {
	for _, v := range in.Volumes {
		if v.PV || v.content == nil {
			continue
		}
		// The checks wait here, as ctx allows, on a strict mount; the
		// filesystem's own reads then never wait.
		if err := prime(ctx, v.content); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			warn("%s: %v", v.Name, err)
			continue
		}
		fsys, err := probe.Open(contentReader{ctx: context.Background(), c: v.content}, v.content.Size())
		switch {
		case errors.Is(err, guestfs.ErrNotFS):
			continue
		case err != nil:
			v.FSErr = err
			warn("%s: filesystem not shown: %v", v.Name, err)
			continue
		}
		v.FS, v.Files = fsys, path.Join(p.FilesFolder, v.Name)
		for _, w := range fsys.Info().Warnings {
			warn("%s: %s", v.Name, w)
		}
	}
	return nil
}

// contentReader reads a file of the mount as an io.ReaderAt, through its
// checks, with ctx for reads that wait.
type contentReader struct {
	ctx context.Context
	c   Content
}

func (r contentReader) ReadAt(b []byte, off int64) (int, error) {
	size := r.c.Size()
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), size-off))
	if err := ReadFull(r.ctx, r.c, b[:n], off); err != nil {
		return 0, err
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
