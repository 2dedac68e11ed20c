package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// guestOVA packs a GuestDisk, converted by qemu-img to format, into an
// unsigned OVA with a SHA256 manifest, as disk1.<format>.
func guestOVA(t *testing.T, g *testutil.GuestDisk, format string) string {
	t.Helper()
	dir := t.TempDir()
	img := testutil.Convert(t, dir, g.Raw, format, "")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	disk := testpkg.File{Name: "disk1." + format, Data: b}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor(disk.Name)}
	path := filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, path, desc, disk, testpkg.Manifest("SHA256", desc, disk).Named("app.mf"))
	return path
}

// TestInsideFindsWhatTheToolsMade: the volumes are where sfdisk and lvs
// put them, each filesystem opens, and its files are the ones it was made
// from, without a mount, whatever the disk's format.
func TestInsideFindsWhatTheToolsMade(t *testing.T) {
	g := testutil.BuildGuestDisk(t, t.TempDir(), 50)
	for _, format := range []string{"qcow2", "vhdx"} {
		t.Run(format, func(t *testing.T) { findsWhatTheToolsMade(t, g, format) })
	}
}

func findsWhatTheToolsMade(t *testing.T, g *testutil.GuestDisk, format string) {
	path := guestOVA(t, g, format)
	d := "disk1." + format
	p := openAt(t, path, integrity.Options{Mode: integrity.Lazy})
	in, err := p.Inside(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind       VolumeKind
		off, size  int64
		fs, label  string
		view       string
		pv, noView bool
	}
	p1, p2 := g.Table.Partitions[0], g.Table.Partitions[1]
	wants := map[string]want{
		d + ".p1":       {VolumePartition, p1.Start * 512, p1.Size * 512, "ext4", "data", "disks/" + d + ".p1", false, false},
		d + ".p2":       {VolumePartition, p2.Start * 512, p2.Size * 512, "", "", "disks/" + d + ".p2", true, false},
		d + ".vg0-root": {VolumeLV, g.RootOffset, g.RootSize, "ext4", "root", "disks/" + d + ".vg0-root", false, false},
		d + ".vg0-swap": {VolumeLV, g.SwapOffset, g.SwapSize, "", "", "disks/" + d + ".vg0-swap", false, false},
	}
	if len(in.Volumes) != len(wants) {
		t.Errorf("%d volumes, want %d: %+v", len(in.Volumes), len(wants), in.Volumes)
	}
	raw, err := os.ReadFile(g.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range in.Volumes {
		w, ok := wants[v.Name]
		if !ok {
			t.Errorf("unexpected volume %s", v.Name)
			continue
		}
		if v.Kind != w.kind || v.Size != w.size || v.View != w.view || v.PV != w.pv {
			t.Errorf("%s: %s, %d bytes, view %q, pv %v; want %s, %d, %q, %v", v.Name, v.Kind, v.Size, v.View, v.PV, w.kind, w.size, w.view, w.pv)
		}
		got := make([]byte, v.Size)
		if _, err := (contentReader{ctx: context.Background(), c: v.content}).ReadAt(got, 0); err != nil && err != io.EOF {
			t.Errorf("%s: %v", v.Name, err)
		} else if !bytes.Equal(got, raw[w.off:w.off+w.size]) {
			t.Errorf("%s: bytes differ from the disk's at %d", v.Name, w.off)
		}
		switch {
		case w.fs == "" && v.FS != nil:
			t.Errorf("%s: a %s filesystem where mkswap or pvcreate wrote none", v.Name, v.FS.Info().Type)
		case w.fs != "" && v.FS == nil:
			t.Errorf("%s: no filesystem (%v)", v.Name, v.FSErr)
		case w.fs != "":
			if info := v.FS.Info(); info.Type != w.fs || info.Label != w.label || v.Files != "files/"+v.Name {
				t.Errorf("%s: %s %q at %q, want %s %q", v.Name, info.Type, info.Label, v.Files, w.fs, w.label)
			}
		}
	}
	// A file read through the model is the file mkfs.ext4 was given.
	for _, v := range in.Volumes {
		if v.Name != d+".p1" || v.FS == nil {
			continue
		}
		ino := v.FS.Root()
		for _, name := range []string{"special", "plain.txt"} {
			e, err := v.FS.Lookup(ino, name)
			if err != nil {
				t.Fatal(err)
			}
			ino = e.Ino
		}
		f, err := v.FS.Open(ino)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, f.Size())
		f.ReadAt(got, 0)
		host, _ := os.ReadFile(filepath.Join(g.DataTree, "special/plain.txt"))
		if !bytes.Equal(got, host) {
			t.Errorf("special/plain.txt: %q, want %q", got, host)
		}
	}
	if len(in.OS) != 1 || in.OS[0].Volume != d+".vg0-root" || in.OS[0].Hostname != g.Hostname {
		t.Errorf("operating systems: %+v", in.OS)
	}
	// The plan's folders expand to the same volumes.
	entries, err := p.expandDisks(context.Background())
	if err != nil || len(entries) != 4 {
		t.Errorf("disks/ expands to %d entries (%v)", len(entries), err)
	}
	trees, err := p.expandFiles(context.Background())
	if err != nil || len(trees) != 2 || trees[0].Guest == nil || trees[0].Guest.Status() == "" {
		t.Errorf("files/ expands to %d entries (%v)", len(trees), err)
	}
	// The block views are the disks folder's files, under their names there.
	views, err := p.BlockViews(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range views {
		got = append(got, fmt.Sprintf("%s %s %d", v.Name, v.Role, v.Content.Size()))
	}
	wantViews := []string{
		fmt.Sprintf("%s.p1 partition %d", d, p1.Size*512), fmt.Sprintf("%s.p2 partition %d", d, p2.Size*512),
		fmt.Sprintf("%s.raw view %d", d, int64(len(raw))),
		fmt.Sprintf("%s.vg0-root volume %d", d, g.RootSize), fmt.Sprintf("%s.vg0-swap volume %d", d, g.SwapSize),
	}
	if strings.Join(got, "\n") != strings.Join(wantViews, "\n") {
		t.Errorf("block views:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantViews, "\n"))
	}
}

// TestInsideWaitsForStrictChecks: with strict verification, finding the
// volumes reads the disk, so it waits until the disk is verified, and
// gives up when its context ends.
func TestInsideWaitsForStrictChecks(t *testing.T) {
	path := guestOVA(t, testutil.BuildGuestDisk(t, t.TempDir(), 10), "qcow2")
	p := openAt(t, path, integrity.Options{Mode: integrity.Strict})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Inside(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("with its context ended: %v, want context.Canceled", err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	in, err := p.Inside(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := status(t, p, "disks/disk1.qcow2.raw"); st != "verified" {
		t.Errorf("volumes found before the disk was verified: it is %q", st)
	}
	if len(in.Volumes) != 4 {
		t.Errorf("%d volumes", len(in.Volumes))
	}
}

// TestVolumeThatDoesNotParse: a filesystem that is recognised but does
// not open (an ext4 with an incompatible feature no reader knows) keeps
// its block view, gets no files/ folder, and the warning, logged by a
// mount, says why.
func TestVolumeThatDoesNotParse(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk1.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 8<<20)
	testutil.Run(t, testutil.RequireTool(t, "mkfs.ext4"), "-q", "-F", "-O", "^metadata_csum", img)
	b, _ := os.ReadFile(img)
	b[1024+0x60+3] |= 0x80 // s_feature_incompat: a bit no ext4 defines
	disk := testpkg.File{Name: "disk1.img", Data: b}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor(disk.Name)}
	ova := writeOVA(t, desc, disk)
	var log bytes.Buffer
	p := openAt(t, ova, integrity.Options{Mode: integrity.Lazy}, func(o *Options) {
		o.Log, o.LogInside = zerolog.New(&log), true
	})
	in, err := p.Inside(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Volumes) != 1 {
		t.Fatalf("volumes: %+v", in.Volumes)
	}
	v := in.Volumes[0]
	if v.Kind != VolumeDisk || v.View != "disks/disk1.img.raw" || v.FS != nil || v.Files != "" || v.FSErr == nil {
		t.Errorf("volume %+v", v)
	}
	if !strings.Contains(log.String(), "disk1.img.raw: filesystem not shown") || !strings.Contains(log.String(), "0x80000000") {
		t.Errorf("the log does not say why:\n%s", log.String())
	}
	trees, err := p.expandFiles(context.Background())
	if err != nil || len(trees) != 0 {
		t.Errorf("files/ shows %d folders (%v)", len(trees), err)
	}
}
