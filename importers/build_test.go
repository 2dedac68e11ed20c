package importers_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/importers"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

// diskSize is the virtual size of the test packages' disk.
const diskSize = 1 << 20

var (
	streamOnce sync.Once
	streamVMDK []byte
)

// streamOptimized is a 1 MiB disk as a streamOptimized VMDK, what vSphere
// wants.
func streamOptimized(t *testing.T) []byte {
	streamOnce.Do(func() {
		raw := make([]byte, diskSize)
		copy(raw[510:], []byte{0x55, 0xaa})
		var b bytes.Buffer
		if err := vmdkwriter.Write(&b, bytes.NewReader(raw), diskSize); err != nil {
			panic(err)
		}
		streamVMDK = b.Bytes()
	})
	return streamVMDK
}

// ref is one File of a test package.
type ref struct {
	id, href string
	data     []byte
	attrs    string // more attributes of the File element
	size     string // ovf:size as written; "" for the data's length, "-" for none
	disk     bool   // a Disk of the DiskSection uses it
	capacity string // its ovf:capacity; "" for diskSize
	stored   bool   // false: the archive leaves it out
	tweak    func(*tar.Header)
	chunks   [][]byte // stored as href.000000000, ... instead of data
}

// spec describes a test package; the zero value (after defaults) is clean
// for every importer.
type spec struct {
	namespace, version string
	refs               []ref
	system             string // XML inside the Envelope, after the DiskSection
	descriptor         []byte // replaces the generated descriptor
	descName           string
	alg                string                                // the manifest's algorithm; "" for SHA256, "none" for no manifest
	line               func(alg, name, digest string) string // one manifest line
	cert               []byte
	extra              []testpkg.TarMember // more members, after the files
	order              func([]testpkg.TarMember) []testpkg.TarMember
	descTweak          func(*tar.Header)
}

func defaults() *spec {
	return &spec{namespace: "http://schemas.dmtf.org/ovf/envelope/1", version: "1.0", descName: "appliance.ovf",
		refs: []ref{{id: "file1", href: "disk1.vmdk", disk: true, stored: true}}}
}

func (s *spec) descriptorXML() []byte {
	if s.descriptor != nil {
		return s.descriptor
	}
	var refs, disks strings.Builder
	for i, r := range s.refs {
		size := fmt.Sprintf(` ovf:size="%d"`, len(r.data))
		if r.chunks != nil {
			n := 0
			for _, c := range r.chunks {
				n += len(c)
			}
			size = fmt.Sprintf(` ovf:size="%d"`, n)
		}
		switch r.size {
		case "":
		case "-":
			size = ""
		default:
			size = fmt.Sprintf(` ovf:size=%q`, r.size)
		}
		fmt.Fprintf(&refs, `<File ovf:id=%q ovf:href=%q%s %s/>`, r.id, r.href, size, r.attrs)
		if r.disk {
			capacity := r.capacity
			if capacity == "" {
				capacity = fmt.Sprint(diskSize)
			}
			fmt.Fprintf(&disks, `<Disk ovf:diskId="disk%d" ovf:fileRef=%q ovf:capacity=%q ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`, i+1, r.id, capacity)
		}
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope ovf:version=%q xmlns=%q xmlns:ovf=%q xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
<References>%s</References>
<DiskSection><Info>disks</Info>%s</DiskSection>
%s
</Envelope>
`, s.version, s.namespace, s.namespace, refs.String(), disks.String(), s.system))
}

// write writes the package as an OVA in a temporary folder.
func (s *spec) write(t *testing.T) string {
	t.Helper()
	for i := range s.refs {
		if s.refs[i].data == nil && s.refs[i].disk && s.refs[i].chunks == nil {
			s.refs[i].data = streamOptimized(t)
		}
	}
	desc := testpkg.File{Name: s.descName, Data: s.descriptorXML()}
	var files []testpkg.TarMember
	var listed []testpkg.File
	for _, r := range s.refs {
		if !r.stored {
			continue
		}
		if r.chunks != nil {
			for i, c := range r.chunks {
				f := testpkg.File{Name: fmt.Sprintf("%s.%09d", r.href, i), Data: c}
				files = append(files, testpkg.TarMember{File: f, Tweak: r.tweak})
				listed = append(listed, f)
			}
			continue
		}
		f := testpkg.File{Name: r.href, Data: r.data}
		files = append(files, testpkg.TarMember{File: f, Tweak: r.tweak})
		listed = append(listed, f)
	}
	members := []testpkg.TarMember{{File: desc, Tweak: s.descTweak}}
	base := strings.TrimSuffix(s.descName, ".ovf")
	if s.alg != "none" {
		alg := s.alg
		if alg == "" {
			alg = "SHA256"
		}
		line := s.line
		if line == nil {
			line = func(alg, name, digest string) string { return fmt.Sprintf("%s(%s)= %s\n", alg, name, digest) }
		}
		var mf strings.Builder
		hashAlg := strings.NewReplacer("SHA2-", "SHA", "-", "").Replace(strings.ToUpper(alg))
		for _, f := range append([]testpkg.File{desc}, listed...) {
			mf.WriteString(line(alg, f.Name, digest(hashAlg, f.Data)))
		}
		members = append(members, testpkg.M(testpkg.File{Name: base + ".mf", Data: []byte(mf.String())}))
		if s.cert != nil {
			members = append(members, testpkg.M(testpkg.File{Name: base + ".cert", Data: s.cert}))
		}
	}
	members = append(members, files...)
	members = append(members, s.extra...)
	if s.order != nil {
		members = s.order(members)
	}
	path := filepath.Join(t.TempDir(), "test.ova")
	testpkg.WriteTar(t, path, members...)
	return path
}

// digest is a manifest digest; MD5 is computed here as testpkg has none.
func digest(alg string, b []byte) string {
	if alg == "MD5" {
		return md5hex(b)
	}
	return testpkg.Digest(alg, b)
}

// check opens the package at path as ovfmount check does (integrity off)
// and checks it.
func check(t *testing.T, path string, opts importers.Options) []importers.Finding {
	t.Helper()
	p, err := appliance.OpenPath(path, appliance.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer p.Close()
	return importers.Check(p, opts)
}

// verdicts maps each target to the rules it breaks and how badly.
func verdicts(fs []importers.Finding) map[importers.Target]map[string]importers.Severity {
	out := map[importers.Target]map[string]importers.Severity{}
	for _, f := range fs {
		if out[f.Target] == nil {
			out[f.Target] = map[string]importers.Severity{}
		}
		if out[f.Target][f.Rule] != importers.Fail {
			out[f.Target][f.Rule] = f.Severity
		}
	}
	return out
}

// expect checks that rule is reported exactly for the targets in want,
// with those severities, and for no other target.
func expect(t *testing.T, fs []importers.Finding, rule string, want map[importers.Target]importers.Severity) {
	t.Helper()
	got := map[importers.Target]importers.Severity{}
	for tg, rules := range verdicts(fs) {
		if s, ok := rules[rule]; ok {
			got[tg] = s
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rule %s: got %v, want %v\nall findings:\n%s", rule, got, want, dump(fs))
	}
	for _, f := range fs {
		if f.Rule == rule && (f.Fix == "" || f.Message == "" || f.Source == "" || f.Subject == "") {
			t.Errorf("finding %+v lacks a subject, message, fix or source", f)
		}
	}
}

func dump(fs []importers.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s %s: %s: %s\n", f.Target, f.Severity, f.Rule, f.Subject, f.Message)
	}
	return b.String()
}

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return b
}
