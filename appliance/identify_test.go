package appliance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// TestNotAPackage: what is not a package is refused, named as what it is.
func TestNotAPackage(t *testing.T) {
	dir := t.TempDir()
	iso := make([]byte, 64<<10)
	copy(iso[0x8000:], "\x01CD001\x01")
	for _, tc := range []struct {
		name string
		data []byte
		what string
	}{
		{"seed.iso", iso, "an ISO 9660 image"},
		{"zeros.ova", make([]byte, 10240), "a file of 10240 zero bytes"},
		{"big-zeros.ova", make([]byte, 1<<20), "first and last 64 KiB are zeros"},
		{"empty.ova", nil, "the file is empty"},
		{"picture.ova", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 600)...), "a PNG image"},
		{"note.ova", []byte(strings.Repeat("a line of text\n", 29) + "end"), "a 438-byte text file (a tar archive is at least 512 bytes)"},
		{"blob.ova", append([]byte{1, 2, 3, 0, 0, 7}, make([]byte, 2000)...), "a binary file without a valid tar header"},
		{"app.ova.gz", []byte("\x1f\x8b\x08\x00rest of a gzip stream............................."), "gzip-compressed"},
		{"other.xml", []byte(`<?xml version="1.0"?><!-- a comment --><project><name>x</name></project>`), "root element is <project>"},
		{"broken.ovf", []byte("<?xml version=\"1.0\"?>\n<Envelope>\n  <References>\n    <File ovf:href=\"x\"\n</Envelope>"), "not a valid OVF descriptor: line 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			os.WriteFile(path, tc.data, 0o644)
			p, err := OpenPath(path, Options{})
			if err == nil {
				p.Close()
				t.Fatalf("%s opened as a %s package", tc.name, p.Source)
			}
			var np *NotPackageError
			if !errors.As(err, &np) || !errors.Is(err, ErrNotPackage) || !strings.Contains(err.Error(), tc.what) {
				t.Fatalf("err %v; want a NotPackageError saying %q", err, tc.what)
			}
		})
	}
}

// TestDescriptorRecognised: a descriptor is recognised as an XML parser
// would, whatever precedes its root element and whatever it is called.
func TestDescriptorRecognised(t *testing.T) {
	long := "<!--" + strings.Repeat(" a long licence comment ", 100) + "-->\n"
	for name, head := range map[string]string{
		"comment-first.ovf":  "<!-- exported by a tool -->\n",
		"long-comment.ovf":   `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + long,
		"pi-and-bom.ovf":     "\xef\xbb\xbf<?xml version=\"1.0\"?>\n<?xml-stylesheet href=\"x.xsl\"?>\n",
		"named-otherwise.xx": "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			body := head + `<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><ovf:References/></ovf:Envelope>`
			path := filepath.Join(dir, name)
			os.WriteFile(path, []byte(body), 0o644)
			p := openAt(t, path, integrity.Options{})
			if p.Source != SourceFolder || p.Descriptor == nil || p.Descriptor.Err != nil {
				t.Fatalf("opened as %s, descriptor %+v", p.Source, p.Descriptor)
			}
		})
	}
}

// TestLooseDisk: a disk image alone mounts as a one-disk package, and a
// descriptor-based VMDK finds its extents beside it, and nothing else.
func TestLooseDisk(t *testing.T) {
	testutil.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", qcow, "8M")
	p := openAt(t, qcow, integrity.Options{Mode: integrity.Lazy})
	if p.Source != SourceDisk || len(p.Disks) != 1 || p.Disks[0].View != "disks/disk.qcow2.raw" || p.Disks[0].Size != 8<<20 {
		t.Fatalf("a loose qcow2: source %s, disks %+v", p.Source, p.Disks)
	}
	if got := joined(paths(p)); got != "\ndisk.qcow2\ndisks\ndisks/disk.qcow2.raw\nfiles" {
		t.Errorf("entries:\n%s", got)
	}

	sub := filepath.Join(dir, "split")
	os.Mkdir(sub, 0o755)
	vmdk := filepath.Join(sub, "disk.vmdk")
	testutil.QemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", vmdk, "4M")
	os.WriteFile(filepath.Join(sub, "unrelated.txt"), []byte("not part of the disk"), 0o644)
	q := openAt(t, vmdk, integrity.Options{Mode: integrity.Lazy})
	if len(q.Disks) != 1 || q.Disks[0].View == "" || len(q.Disks[0].Extents) != 1 || q.Disks[0].Extents[0].Name != "disk-f001.vmdk" {
		t.Fatalf("a descriptor-based VMDK: %+v", q.Disks)
	}
	if q.Lookup("unrelated.txt") != nil || q.Lookup("disk-f001.vmdk").Role != RoleExtent {
		t.Errorf("entries: %v", paths(q))
	}
	raw, err := readEntry(t, q, "disks/disk.vmdk.raw")
	if err != nil || len(raw) != 4<<20 {
		t.Errorf("the view: %d bytes, %v", len(raw), err)
	}

	// An extent outside the folder is refused, and the disk gets no view.
	esc := filepath.Join(dir, "escape")
	os.Mkdir(esc, 0o755)
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
		"RW 8192 FLAT \"../split/disk-f001.vmdk\" 0\n\nddb.virtualHWVersion = \"4\"\n"
	os.WriteFile(filepath.Join(esc, "evil.vmdk"), []byte(desc), 0o644)
	e := openAt(t, filepath.Join(esc, "evil.vmdk"), integrity.Options{})
	if len(e.Disks) != 1 || e.Disks[0].View != "" || e.Disks[0].Err == nil {
		t.Errorf("an extent outside the folder: %+v", e.Disks)
	}
}

// TestSymlinkedDescriptor: a symlink to a descriptor opens the package in
// the folder the descriptor is in.
func TestSymlinkedDescriptor(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.ovf"), []byte(`<Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:id="f" ovf:href="notes.txt"/></References></Envelope>`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
	link := filepath.Join(t.TempDir(), "link.ovf")
	os.Symlink(filepath.Join(dir, "app.ovf"), link)
	p := openAt(t, link, integrity.Options{})
	if got, err := readEntry(t, p, "notes.txt"); err != nil || string(got) != "hello" {
		t.Errorf("a package opened through a symlink: %q, %v; entries %v", got, err, paths(p))
	}
}
