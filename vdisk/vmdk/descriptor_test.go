package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// memResolver resolves names from a map, the way the archive layer
// resolves sibling members, and records what it was asked for.
type memResolver struct {
	files map[string][]byte
	asked []string
}

func (m *memResolver) resolve(name string) (io.ReaderAt, int64, error) {
	m.asked = append(m.asked, name)
	b, ok := m.files[name]
	if !ok {
		return nil, 0, fmt.Errorf("member %q: %w", name, fs.ErrNotExist)
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

func openText(text string, files map[string][]byte) (*Image, *memResolver, error) {
	m := &memResolver{files: files}
	im, err := Open(strings.NewReader(text), int64(len(text)), Options{Name: "disk1.vmdk", Resolve: m.resolve})
	return im, m, err
}

// TestComposedDisk lays FLAT, ZERO, VMFS and SPARSE extents (one of them a
// compressed stream, one file named twice) end to end, with the key
// spellings and ddb lines VMware and VirtualBox write.
func TestComposedDisk(t *testing.T) {
	flat := pattern(8*testGrain, testGrain)
	for i := range flat {
		flat[i] ^= 0xa5
	}
	sparseData := pattern(6*testGrain, testGrain, 1)
	streamData := pattern(5*testGrain+512, testGrain, 2)
	files := map[string][]byte{
		"d-flat.vmdk":   flat,
		"d-s001.vmdk":   spec{grainSectors: 8, gtes: 4, data: sparseData}.build().file,
		"d-s002.vmdk":   spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, atEnd: true, data: streamData}.build().file,
		"sub/d-vmfs.vm": flat[:4*testGrain],
	}
	text := "\xef\xbb\xbf# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\nPARENTCID=FFFFFFFF\r\nCreateType = \"twoGbMaxExtentSparse\"\r\n\r\n" +
		"# Extent description\r\n" +
		"RW 16 FLAT \"d-flat.vmdk\" 8\r\n" + // flat bytes [4096, 12288)
		"RW 24 ZERO\r\n" +
		"RDONLY 48 SPARSE \"d-s001.vmdk\"\r\n" +
		"rw 41 sparse \"d-s002.vmdk\"\r\n" +
		"RW 32 VMFS \"sub/d-vmfs.vm\"\r\n" +
		"RW 48 SPARSE \"d-s001.vmdk\"\r\n" +
		"\r\n# The disk Data Base \r\n#DDB\r\n\r\nddb.virtualHWVersion = \"4\"\r\nddb.uuid.image=\"428fbafb\"\r\nddb.comment=\"\"\r\n"
	im, m, err := openText(text, files)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = append(want, flat[8*512:24*512]...)
	want = append(want, make([]byte, 24*512)...)
	want = append(want, sparseData...)
	want = append(want, streamData...)
	want = append(want, flat[:4*testGrain]...)
	want = append(want, sparseData...)
	if im.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", im.Size(), len(want))
	}
	if f := im.Format(); f != "vmdk twoGbMaxExtentSparse (6 extents)" {
		t.Errorf("Format() = %q", f)
	}
	if len(im.Warnings()) != 0 {
		t.Errorf("Warnings() = %q", im.Warnings())
	}
	if len(m.asked) != 4 {
		t.Errorf("resolver asked %q; each file once", m.asked)
	}
	got := make([]byte, len(want))
	if _, err := blockmap.ReadAt(im, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("composed disk differs from its extents")
	}
	// Reads across every extent boundary, one byte at a time around it.
	for _, e := range im.exts {
		for off := max(0, e.start-3); off < min(e.start+3, im.Size()); off++ {
			p := make([]byte, 5)
			n, _ := blockmap.ReadAt(im, p, off)
			if !bytes.Equal(p[:n], want[off:off+int64(n)]) {
				t.Fatalf("read at %d across the extent starting at %d differs", off, e.start)
			}
		}
	}

	kinds := []struct {
		off  int64
		kind blockmap.Kind
	}{
		{0, blockmap.Stored}, {16 * 512, blockmap.Zero}, {40*512 + testGrain, blockmap.Hole},
		{88*512 + 3*testGrain, blockmap.Compressed}, {129 * 512, blockmap.Stored},
	}
	for _, k := range kinds {
		r, err := im.Map(k.off)
		if err != nil || r.Kind != k.kind || r.Check(k.off, im.Size()) != nil {
			t.Errorf("Map(%d) = %+v, %v; want a %v run covering it", k.off, r, err, k.kind)
		}
	}
}

// TestEmbeddedDescriptorFile is qemu's reading of a sparse header with
// capacity 0: its embedded descriptor is a whole descriptor file.
func TestEmbeddedDescriptorFile(t *testing.T) {
	b := spec{grainSectors: 8, gtes: 4, data: pattern(testGrain, testGrain)}.build()
	f := put64(append([]byte(nil), b.file...), 12, 0) // capacity 0
	desc := "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"x-flat.vmdk\" 0\n"
	clear(f[512:1024])
	copy(f[512:], desc)
	data := pattern(testGrain, testGrain)
	m := &memResolver{files: map[string][]byte{"x-flat.vmdk": data}}
	im, err := Open(bytes.NewReader(f), int64(len(f)), Options{Name: "c.vmdk", Resolve: m.resolve})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, im.Size())
	if _, err := blockmap.ReadAt(im, got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %v; content equal %v", err, bytes.Equal(got, data))
	}
}

func TestDeltaDisks(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"hint", "# Disk DescriptorFile\nparentCID=0badf00d\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"base.vmdk\"\nRW 8 FLAT \"x\" 0\n",
			`vmdk: disk1.vmdk is a delta disk; parent "base.vmdk" is not supported`},
		{"hint, lower-case key", "# Disk DescriptorFile\ncreatetype=\"vmfsSparse\"\nparentfilenamehint=\"C:\\vms\\base.vmdk\"\nRW 8 VMFSSPARSE \"x\"\n",
			`vmdk: disk1.vmdk is a delta disk; parent "C:\vms\base.vmdk" is not supported`},
		{"CID only", "# Disk DescriptorFile\nparentCID=0BADF00D\ncreateType=\"twoGbMaxExtentSparse\"\nRW 8 SPARSE \"x\"\n",
			`vmdk: disk1.vmdk is a delta disk; parent "CID 0badf00d" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, m, err := openText(tc.text, nil)
			if !errors.Is(err, blockmap.ErrUnsupported) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v; want ErrUnsupported starting %q", err, tc.want)
			}
			if len(m.asked) != 0 {
				t.Errorf("resolver asked for %q before the delta check", m.asked)
			}
		})
	}
}

// TestExtentNames refuses names that could leave the archive folder,
// before asking the resolver.
func TestExtentNames(t *testing.T) {
	for _, name := range []string{"/etc/passwd", "../x.vmdk", "a/../../x.vmdk", "a/..", `..\x.vmdk`, `C:\x.vmdk`, `c:x.vmdk`, `\\server\share\x.vmdk`, ""} {
		t.Run(name, func(t *testing.T) {
			text := fmt.Sprintf("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 8 FLAT %q 0\n", name)
			_, m, err := openText(text, nil)
			if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), "refusing it") {
				t.Fatalf("error %v; want ErrUnsupported refusing the name", err)
			}
			if len(m.asked) != 0 {
				t.Fatalf("resolver was asked for %q", m.asked)
			}
		})
	}
	// Folders below the descriptor's are fine.
	text := "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"disks/a..b.vmdk\" 0\n"
	if _, _, err := openText(text, map[string][]byte{"disks/a..b.vmdk": make([]byte, 512)}); err != nil {
		t.Fatal(err)
	}
}

func TestDescriptorErrors(t *testing.T) {
	head := "# Disk DescriptorFile\ncreateType=\"twoGbMaxExtentSparse\"\n"
	stream := spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, data: pattern(testGrain, testGrain)}.build().file
	var many strings.Builder
	many.WriteString(head)
	for range 600 {
		many.WriteString("RW 17592186044416 ZERO\n")
	}
	for _, tc := range []struct {
		name, text string
		files      map[string][]byte
		noResolver bool
		want       error
		part       string
	}{
		{"no resolver", head + "RW 8 SPARSE \"x.vmdk\"\n", nil, true, blockmap.ErrUnsupported, `lives in "x.vmdk" and no resolver`},
		{"missing member", head + "RW 8 SPARSE \"x.vmdk\"\n", nil, false, fs.ErrNotExist, `cannot open "x.vmdk"`},
		{"no createType", "# Disk DescriptorFile\nRW 8 ZERO\n", nil, false, blockmap.ErrCorrupt, "no createType"},
		{"no extents", head, nil, false, blockmap.ErrCorrupt, "lists no extents"},
		{"only empty extents", head + "RW 0 ZERO\n", nil, false, blockmap.ErrCorrupt, "no extent holds any sectors"},
		{"FLAT without offset", head + "RW 8 FLAT \"x\"\n", nil, false, blockmap.ErrCorrupt, "needs an offset"},
		{"VMFS with offset", head + "RW 8 VMFS \"x\" 3\n", nil, false, blockmap.ErrCorrupt, "takes no offset"},
		{"ZERO with a file", head + "RW 8 ZERO \"x\"\n", nil, false, blockmap.ErrCorrupt, "names no file"},
		{"bad size", head + "RW -8 SPARSE \"x\"\n", nil, false, blockmap.ErrCorrupt, "not a sector count"},
		{"huge size", head + "RW 99999999999999999 SPARSE \"x\"\n", nil, false, blockmap.ErrCorrupt, "beyond"},
		{"unterminated quote", head + "RW 8 SPARSE \"x\n", nil, false, blockmap.ErrCorrupt, "unterminated quote"},
		{"trailing junk", head + "RW 8 FLAT \"x\" 0 junk\n", nil, false, blockmap.ErrCorrupt, "unexpected"},
		{"unknown type", head + "RW 8 WEIRD \"x\"\n", nil, false, blockmap.ErrUnsupported, `unknown type "WEIRD"`},
		{"seSparse not seSparse", head + "RW 8 SESPARSE \"x\"\n", map[string][]byte{"x": stream}, false, blockmap.ErrCorrupt, "does not begin with the seSparse magic"},
		{"NOACCESS", head + "NOACCESS 8 FLAT \"x\" 0\n", nil, false, blockmap.ErrUnsupported, "NOACCESS"},
		{"raw device", "# Disk DescriptorFile\ncreateType=\"fullDevice\"\nRW 8 FLAT \"/dev/sda\" 0\n", nil, false, blockmap.ErrUnsupported, "fullDevice"},
		{"nested descriptor", head + "RW 8 SPARSE \"x\"\n", map[string][]byte{"x": []byte(head + "RW 8 SPARSE \"x\"\n")}, false, blockmap.ErrUnsupported, "nested"},
		{"extent not sparse", head + "RW 8 SPARSE \"x\"\n", map[string][]byte{"x": []byte("ABCD")}, false, blockmap.ErrCorrupt, "no sparse header magic"},
		{"corrupt extent", head + "RW 8 SPARSE \"x\"\n", map[string][]byte{"x": put32(append([]byte(nil), stream...), 44, 0)}, false, blockmap.ErrCorrupt, `disk1.vmdk extent "x": 0 entries per grain table`},
		{"extents overflow", many.String(), nil, false, blockmap.ErrCorrupt, "add up to more than"},
		{"too large", head + strings.Repeat("#", maxDescriptor), nil, false, blockmap.ErrCorrupt, "too large for a descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memResolver{files: tc.files}
			opts := Options{Name: "disk1.vmdk", Resolve: m.resolve}
			if tc.noResolver {
				opts.Resolve = nil
			}
			_, err := Open(strings.NewReader(tc.text), int64(len(tc.text)), opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.part) || !strings.Contains(err.Error(), "disk1.vmdk") {
				t.Fatalf("error %v; want %v mentioning %q", err, tc.want, tc.part)
			}
		})
	}
}

func TestDescriptorWarnings(t *testing.T) {
	sp := spec{grainSectors: 8, gtes: 4, data: pattern(2*testGrain, testGrain)}.build().file
	text := "# Disk DescriptorFile\ncreateType=\"custom\"\n" +
		"RW 0 ZERO\n" +
		"RW 16 FLAT \"short\" 0\n" +
		"RW 99 SPARSE \"sp\"\n"
	im, _, err := openText(text, map[string][]byte{"short": pattern(1000, testGrain), "sp": sp})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(im.Warnings(), "\n")
	for _, part := range []string{"extent 1 (line 3) has no sectors", `"short" holds 1000 bytes`, "the header wins"} {
		if !strings.Contains(w, part) {
			t.Errorf("warnings %q lack %q", w, part)
		}
	}
	// The short flat extent reads its bytes, then zeros, as qemu does.
	got := make([]byte, 16*512)
	if _, err := blockmap.ReadAt(im, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:1000], pattern(1000, testGrain)) || bytes.Count(got[1000:], []byte{0}) != len(got)-1000 {
		t.Fatal("short flat extent does not read as its bytes then zeros")
	}
	if im.Size() != 16*512+2*testGrain {
		t.Fatalf("Size() = %d: the sparse extent must be sized by its header", im.Size())
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"KDMV\x01\x00\x00\x00", true},
		{"COWD\x01\x00\x00\x00", true},
		{"# Disk DescriptorFile\n", true},
		{"\xef\xbb\xbf\r\n  # disk descriptorfile\n", true},
		{"ABCD", false},
		{"KDM", false},
		{"", false},
		{"QFI\xfb\x00\x00\x00\x03", false},
		{"# Disk Descriptor", false},
	} {
		if got := Detect(strings.NewReader(tc.in), int64(len(tc.in))); got != tc.want {
			t.Errorf("Detect(%q) = %v", tc.in, got)
		}
	}
}
