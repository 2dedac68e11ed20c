package ovf

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// FuzzParse checks that no input makes Parse panic, exceed its bounds,
// return numbers outside their documented ranges, or answer differently
// twice. It is seeded with every dialect, the hand-made hostile inputs and,
// where the fixtures are present, every real descriptor.
func FuzzParse(f *testing.F) {
	for _, d := range dialects {
		f.Add([]byte(d.build()))
	}
	f.Add([]byte(env10(`<References><File ovf:id="f" ovf:href="../x" ovf:size="-1" ovf:chunkSize="9"/></References>` +
		`<DiskSection><Disk ovf:diskId="d" ovf:fileRef="f" ovf:capacity="${p}" ovf:capacityAllocationUnits="byte * 2^30" ovf:parentRef="d"/></DiskSection>` +
		`<DeploymentOptionSection><Configuration ovf:id="a"/><Configuration ovf:id="b" ovf:default="true"/></DeploymentOptionSection>` +
		`<VirtualSystemCollection ovf:id="c"><StartupSection><Item ovf:id="vm" ovf:order="1" ovf:startDelay="x"/><Item ovf:id="c"/></StartupSection>` +
		`<ResourceAllocationSection>` + itemXML("", "1", rtCPU, "AllocationUnits", "hertz * 10^6", "Reservation", "500", "Limit", "99999999999999", "Weight", "-1") + `</ResourceAllocationSection>` + vsXML("vm", `<ProductSection ovf:class="k"><Property ovf:key="p" ovf:value="2"><Value ovf:value="3" ovf:configuration="b"/></Property></ProductSection>`,
		itemXML(`ovf:configuration="a b"`, "1", rtCPU, "VirtualQuantity", "4"), itemXML("", "2", rtSCSI),
		itemXML("", "3", rtDisk, "HostResource", "ovf:/disk/d", "Parent", "2"), itemXML(`ovf:bound="max"`, "4", rtMemory, "VirtualQuantity", "9")) +
		`</VirtualSystemCollection>`)))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>`))
	f.Add([]byte("\xff\xfe<\x00E\x00n\x00v\x00e\x00l\x00o\x00p\x00e\x00/\x00>\x00"))
	f.Add([]byte(`<?xml version="1.0" encoding="utf-16"?><Envelope/>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><Envelope><Name>caf` + "\xe9" + `</Name></Envelope>`))
	f.Add([]byte("<Envelope><a><a><a></a></a></a></Envelope>garbage"))

	for _, p := range realDescriptors(f) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(bytes.NewReader(data))
		if err != nil {
			if e != nil {
				t.Fatal("an envelope with an error")
			}
			if !errors.Is(err, ErrNotOVF) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrEntity) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		checkInvariants(t, e)
		again, err := Parse(bytes.NewReader(data))
		if err != nil || !reflect.DeepEqual(e, again) {
			t.Fatalf("a second parse differs: %v", err)
		}
	})
}

// FuzzSniff checks that no input makes Sniff panic or read more than
// SniffBytes, that its answer is one of the three it documents, and that
// it agrees with Parse: whatever Parse accepts within SniffBytes Sniff
// calls a descriptor, and whatever Sniff refuses (short of the SniffBytes
// answer) Parse refuses in the same words, unless Parse first found an
// entity declaration, which Sniff does not look for.
func FuzzSniff(f *testing.F) {
	for _, d := range dialects {
		f.Add([]byte(d.build()))
	}
	for _, s := range []string{
		"", "\xef\xbb\xbf", " \n", "SHA256(a.ovf)= 00\n", "\x1f\x8b\x08\x00", "QFI\xfb\x00\x00\x00\x03",
		"<!-- c -->\n<Envelope/>", `<?xml version="1.0"?><!--` + strings.Repeat("-x", 400) + `--><ovf:Envelope xmlns:ovf="urn:x">`,
		`<?xml version="1.0"?><?pi x?><!DOCTYPE Envelope><Envelope/>`, `<?xml version="1.0"?>` + "\n<html/>",
		`<?xml version="1.0"?>` + "\n  text<Envelope/>", "<Envelope", "<!-- a -- b -->", `<?xml version="1.1"?><Envelope/>`,
		"\xff\xfe<\x00E\x00n\x00v\x00e\x00l\x00o\x00p\x00e\x00/\x00>\x00",
		"\x00<\x00E\x00n\x00v\x00e\x00l\x00o\x00p\x00e\x00/\x00>",
		`<!DOCTYPE x [<!ENTITY e "x">]><html/>`,
	} {
		f.Add([]byte(s))
	}
	for _, p := range realDescriptors(f) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		serr := Sniff(cr)
		if cr.n > SniffBytes {
			t.Fatalf("Sniff read %d bytes", cr.n)
		}
		if serr != nil && !errors.Is(serr, ErrNotOVF) {
			t.Fatalf("Sniff = %v, which wraps no sentinel", serr)
		}
		var xe *XMLError
		if errors.Is(serr, ErrNotXML) && errors.As(serr, &xe) {
			t.Fatalf("Sniff = %v, both not XML and an XMLError", serr)
		}
		if errors.As(serr, &xe) && (xe.Line < 1 || xe.Column < 1) {
			t.Fatalf("Sniff = %v, at an impossible position", serr)
		}
		_, perr := Parse(bytes.NewReader(data))
		if perr == nil && len(data) <= SniffBytes && serr != nil {
			t.Fatalf("Parse accepts what Sniff refuses: %v", serr)
		}
		if serr != nil && serr != errNotRecognised && !errors.Is(perr, ErrEntity) && (perr == nil || perr.Error() != serr.Error()) {
			t.Fatalf("Sniff = %v, but Parse = %v", serr, perr)
		}
	})
}

// realDescriptors lists the real descriptors in the fixtures, if present.
func realDescriptors(f *testing.F) []string {
	dir := os.Getenv("OVFMOUNT_FIXTURES")
	if dir == "" {
		dir = filepath.Join(testutil.RepoRoot(f), "..", "shared", "fixtures", "real")
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "descriptors", "*", "*.ovf"))
	more, _ := filepath.Glob(filepath.Join(dir, "glennmatthews-cot", "*.ovf"))
	return append(paths, more...)
}

// checkInvariants asserts what every successfully parsed envelope promises.
func checkInvariants(t *testing.T, e *Envelope) {
	t.Helper()
	if len(e.Warnings) > maxWarnings+1 {
		t.Fatalf("%d warnings", len(e.Warnings))
	}
	if e.Files == nil || e.Disks == nil || e.Networks == nil || e.Systems == nil || e.Warnings == nil {
		t.Fatal("a nil list")
	}
	for _, f := range e.Files {
		if f.Size < -1 || f.ChunkSize < 0 {
			t.Fatalf("file %+v", f)
		}
	}
	for _, d := range e.Disks {
		if d.Capacity < -1 || d.PopulatedSize < -1 {
			t.Fatalf("disk %+v", d)
		}
	}
	for _, s := range e.Systems {
		if s.CPUs < 0 || s.MemoryBytes < 0 || s.OS.ID < -1 || s.Disks == nil || s.NICs == nil {
			t.Fatalf("system %+v", s)
		}
		// One sizing per deployment option, the default's the summary
		// (none when there are too many to size).
		if s.Configuration != e.DefaultConfiguration || (len(s.ByConfiguration) != len(e.DeploymentOptions) && s.ByConfiguration != nil) {
			t.Fatalf("system %q: configuration %q, %d sizings for %d options", s.ID, s.Configuration, len(s.ByConfiguration), len(e.DeploymentOptions))
		}
		for i, z := range s.ByConfiguration {
			if z.Configuration != e.DeploymentOptions[i].ID || z.CPUs < 0 || z.MemoryBytes < 0 ||
				(z.Configuration == s.Configuration && (z.CPUs != s.CPUs || z.MemoryBytes != s.MemoryBytes)) {
				t.Fatalf("system %q: sizing %+v", s.ID, z)
			}
		}
	}
	for _, c := range e.Collections {
		if c.Members == nil {
			t.Fatalf("collection %+v", c)
		}
		for _, s := range c.Startup {
			if s.Order < -1 || s.Order > 65535 || s.StartDelay < 0 || s.StopDelay < 0 {
				t.Fatalf("startup %+v", s)
			}
		}
		for _, a := range c.Resources {
			if a.Reservation < -1 || a.Limit < -1 || a.Shares < -1 {
				t.Fatalf("allocation %+v", a)
			}
		}
	}
	for _, df := range e.DiskFiles() {
		if df.Disk.FileRef == "" || df.Disk.FileRef != df.File.ID {
			t.Fatalf("DiskFile %+v", df)
		}
	}
	if _, err := json.Marshal(e); err != nil {
		t.Fatal(err)
	}
}
