package importers_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/importers"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

type sev = map[importers.Target]importers.Severity

const (
	vs   = importers.VSphere
	vbox = importers.VirtualBox
	v2v  = importers.VirtV2V
	pve  = importers.Proxmox
	ovrt = importers.OVirt
	dsp  = importers.Spec
	F    = importers.Fail
	W    = importers.Warn
)

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// TestCleanPackage: a package as DSP0243 and every importer want it (the
// descriptor first, a canonical SHA256 manifest next, a streamOptimized
// VMDK whose capacity and size are right, OVF 1.0) has no finding at all.
func TestCleanPackage(t *testing.T) {
	fs := check(t, defaults().write(t), importers.Options{})
	if len(fs) != 0 {
		t.Fatalf("findings on a clean package:\n%s", dump(fs))
	}
}

func TestArchiveContainer(t *testing.T) {
	path := defaults().write(t)
	raw, _ := os.ReadFile(path)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzPath := filepath.Join(t.TempDir(), "test.ova.gz")
	os.WriteFile(gzPath, gz.Bytes(), 0o644)
	// virt-v2v and Proxmox's GNU tar read a gzip-compressed tar.
	expect(t, check(t, gzPath, importers.Options{}), "archive-container", sev{dsp: F, vs: W, vbox: W})

	// A zip of the same files: virt-v2v reads it, Proxmox's tar and
	// oVirt's tarfile do not.
	var zb bytes.Buffer
	zw2 := zip.NewWriter(&zb)
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		w, _ := zw2.Create(h.Name)
		io.Copy(w, tr)
	}
	zw2.Close()
	zipPath := filepath.Join(t.TempDir(), "test.zip")
	os.WriteFile(zipPath, zb.Bytes(), 0o644)
	expect(t, check(t, zipPath, importers.Options{}), "archive-container", sev{dsp: F, vs: W, vbox: W, pve: F, ovrt: F})
}

func TestDescriptorMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disks.ova")
	testpkg.WriteTar(t, path, testpkg.M(testpkg.File{Name: "disk1.vmdk", Data: streamOptimized(t)}))
	expect(t, check(t, path, importers.Options{}), "descriptor-missing", sev{dsp: F, vs: F, vbox: F, v2v: F, pve: F, ovrt: F})
}

func TestDescriptorFirst(t *testing.T) {
	s := defaults()
	s.order = func(m []testpkg.TarMember) []testpkg.TarMember { return []testpkg.TarMember{m[2], m[0], m[1]} }
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "descriptor-first", sev{dsp: F, vs: F})
}

func TestManifestCertOrder(t *testing.T) {
	s := defaults()
	s.order = func(m []testpkg.TarMember) []testpkg.TarMember { return []testpkg.TarMember{m[0], m[2], m[1]} }
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-cert-order", sev{dsp: F, vs: W})

	// OVF 2.x lets the manifest be last.
	s = defaults()
	s.namespace, s.version = "http://schemas.dmtf.org/ovf/envelope/2", "2.0"
	s.order = func(m []testpkg.TarMember) []testpkg.TarMember { return []testpkg.TarMember{m[0], m[2], m[1]} }
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-cert-order", sev{})
}

func TestReferencesOrder(t *testing.T) {
	s := defaults()
	s.refs = append(s.refs, ref{id: "file2", href: "notes.txt", data: []byte("notes\n"), stored: true})
	s.order = func(m []testpkg.TarMember) []testpkg.TarMember { return []testpkg.TarMember{m[0], m[1], m[3], m[2]} }
	expect(t, check(t, s.write(t), importers.Options{}), "references-order", sev{dsp: F, vbox: W, vs: W})
}

func TestTarSize8GiB(t *testing.T) {
	s := defaults()
	// A member of 8 GiB + 1 block whose data is a hole of the file: a GNU
	// base-256 size, which VirtualBox reads.
	s.refs = append(s.refs, ref{id: "file2", href: "big.bin", data: []byte("x"), size: "8589935104", stored: true,
		tweak: func(h *tar.Header) { h.Size, h.Format = 8589935104, tar.FormatGNU }})
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "tar-size-8gib", sev{dsp: F, vs: W})
	expect(t, fs, "tar-pax-header", sev{})
}

func TestTarLongName(t *testing.T) {
	long := strings.Repeat("n", 120) + ".txt"
	s := defaults()
	s.refs = append(s.refs, ref{id: "file2", href: long, data: []byte("notes\n"), stored: true,
		tweak: func(h *tar.Header) { h.Format = tar.FormatGNU }})
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "tar-long-name", sev{dsp: F, vs: W})
	expect(t, fs, "tar-pax-header", sev{}) // a GNU long name, which VirtualBox reads
}

func TestTarPaxHeader(t *testing.T) {
	s := defaults()
	s.refs[0].tweak = func(h *tar.Header) {
		h.Format = tar.FormatPAX
		h.PAXRecords = map[string]string{"comment": "made by a pax writer"}
	}
	expect(t, check(t, s.write(t), importers.Options{}), "tar-pax-header", sev{dsp: F, vbox: F, vs: W})
}

func TestTarGNUSparse(t *testing.T) {
	s := defaults()
	// ova's testdata holds GNU sparse members ("sparse", "after") made by
	// GNU tar; splice them in after the package's own files.
	s.extra = []testpkg.TarMember{{Raw: testpkg.RawMembers(t, filepath.Join(testutil.RepoRoot(t), "ova", "testdata", "gnu-sparse.tar"))}}
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "tar-gnu-sparse", sev{dsp: F, vbox: F, vs: W})
	expect(t, fs, "file-unreferenced", sev{dsp: W})
}

func TestManifestAlgorithm(t *testing.T) {
	s := defaults()
	s.alg = "SHA512"
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-algorithm", sev{v2v: W, ovrt: W})

	s = defaults()
	s.alg = "SHA1"
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-algorithm", sev{vs: W})

	// SHA256 on vSphere 6.0, whose C# client takes SHA1 only; and SHA1
	// is what it wants.
	path := defaults().write(t)
	expect(t, check(t, path, importers.Options{VSphereVersion: "6.0"}), "manifest-algorithm", sev{vs: W})
	expect(t, check(t, path, importers.Options{VSphereVersion: "6.5"}), "manifest-algorithm", sev{})
	s = defaults()
	s.alg = "SHA1"
	expect(t, check(t, s.write(t), importers.Options{VSphereVersion: "6.0"}), "manifest-algorithm", sev{})

	s = defaults()
	s.alg = "MD5"
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-algorithm", sev{dsp: F, v2v: W, ovrt: W})
}

func TestManifestSpelling(t *testing.T) {
	s := defaults()
	s.alg = "SHA2-256" // OpenSSL 3's spelling
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "manifest-spelling", sev{dsp: F, vs: F, vbox: W, v2v: W, ovrt: W})

	// Oracle's SHA-256: only the unconfirmed vSphere warning.
	s = defaults()
	s.alg = "SHA-256"
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-spelling", sev{dsp: F, vs: W, vbox: W, v2v: W, ovrt: W})
}

func TestManifestSyntax(t *testing.T) {
	// IPRT's form: blanks around the delimiters. virt-v2v's pattern takes
	// it.
	s := defaults()
	s.line = func(alg, name, d string) string { return alg + " (" + name + ") = " + d + "\n" }
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-syntax", sev{dsp: F, vs: F})

	// No blank after "=": virt-v2v checks nothing on such lines.
	s = defaults()
	s.line = func(alg, name, d string) string { return alg + "(" + name + ")=" + d + "\n" }
	expect(t, check(t, s.write(t), importers.Options{}), "manifest-syntax", sev{dsp: F, vs: W, v2v: W, ovrt: W})
}

func TestCertFormat(t *testing.T) {
	s := defaults()
	s.cert = []byte("SHA256(appliance.mf)= 00\nthis is no certificate\n")
	expect(t, check(t, s.write(t), importers.Options{}), "cert-format", sev{dsp: F, vs: W, vbox: F})

	// A good certificate over the manifest passes.
	s = defaults()
	signer := testpkg.NewSigner(t, nil)
	path := s.write(t) // to learn the manifest's bytes, then rebuild signed
	mf := testutil.TarMember(t, path, "appliance.mf")
	s.cert = signer.Sign(t, "SHA256", "appliance.mf", mf, nil)
	expect(t, check(t, s.write(t), importers.Options{}), "cert-format", sev{})

	// A certificate with no manifest to sign.
	s = defaults()
	s.alg = "none"
	s.extra = []testpkg.TarMember{testpkg.M(testpkg.File{Name: "appliance.cert", Data: signer.Sign(t, "SHA256", "appliance.mf", mf, nil)})}
	expect(t, check(t, s.write(t), importers.Options{}), "cert-format", sev{dsp: F, vs: W, vbox: F})
}

func TestDiskFormat(t *testing.T) {
	dir := testutil.RealFixtures(t)
	qcow := readFixture(t, filepath.Join(dir, "log2timeline-dfvfs", "ext2.qcow2"))
	s := defaults()
	s.refs[0].href, s.refs[0].data, s.refs[0].capacity = "disk1.qcow2", qcow, "" // capacity checked below
	fs := check(t, s.write(t), importers.Options{})
	// Proxmox takes a .qcow2 named as such; vSphere and VirtualBox only VMDK.
	expect(t, fs, "disk-format", sev{vs: F, vbox: F})

	// Named .img, Proxmox refuses it too.
	s = defaults()
	s.refs[0].href, s.refs[0].data = "disk1.img", qcow
	expect(t, check(t, s.write(t), importers.Options{}), "disk-format", sev{vs: F, vbox: F, pve: F})
}

func TestVMDKSubformat(t *testing.T) {
	dir := testutil.RealFixtures(t)
	sparse := readFixture(t, filepath.Join(dir, "strozfriedberg-vmdk-rs", "monolithicSparse.vmdk"))
	s := defaults()
	s.refs[0].data = sparse
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "vmdk-subformat", sev{vs: W})
	expect(t, fs, "disk-format", sev{})
}

func TestCapacityMismatch(t *testing.T) {
	s := defaults()
	s.refs[0].capacity = "2097152"
	expect(t, check(t, s.write(t), importers.Options{}), "capacity-mismatch", sev{dsp: F})
}

func TestSizeMismatch(t *testing.T) {
	s := defaults()
	s.refs[0].size = "12345"
	expect(t, check(t, s.write(t), importers.Options{}), "size-mismatch", sev{dsp: F})
}

func TestCompression(t *testing.T) {
	s := defaults()
	s.refs = append(s.refs, ref{id: "file2", href: "notes.txt.bz2", data: []byte("BZh9"), attrs: `ovf:compression="bzip2"`, stored: true})
	expect(t, check(t, s.write(t), importers.Options{}), "compression", sev{dsp: F, v2v: F, ovrt: F, pve: F, vs: W, vbox: W})

	// gzip: everyone but Proxmox decompresses it.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(streamOptimized(t))
	zw.Close()
	s = defaults()
	s.refs[0].href, s.refs[0].data, s.refs[0].attrs = "disk1.vmdk.gz", gz.Bytes(), `ovf:compression="gzip"`
	expect(t, check(t, s.write(t), importers.Options{}), "compression", sev{pve: F})
}

func TestChunkSize(t *testing.T) {
	s := defaults()
	data := []byte(strings.Repeat("chunk data ", 100))
	s.refs = append(s.refs, ref{id: "file2", href: "data.bin", chunks: [][]byte{data[:512], data[512:]}, attrs: `ovf:chunkSize="512"`, stored: true})
	expect(t, check(t, s.write(t), importers.Options{}), "chunk-size", sev{v2v: F, ovrt: F, pve: F, vbox: F})
}

func system(family string) string {
	return `<VirtualSystem ovf:id="vm"><Info>a system</Info><VirtualHardwareSection><Info>hw</Info>` +
		`<System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>` +
		`<vssd:VirtualSystemType>` + family + `</vssd:VirtualSystemType></System></VirtualHardwareSection></VirtualSystem>`
}

func TestHardwareVersion(t *testing.T) {
	s := defaults()
	s.system = system("virtualbox-2.2")
	expect(t, check(t, s.write(t), importers.Options{}), "hardware-version", sev{vs: F})

	s = defaults()
	s.system = system("vmx-19")
	path := s.write(t)
	expect(t, check(t, path, importers.Options{}), "hardware-version", sev{vs: W})
	expect(t, check(t, path, importers.Options{VSphereVersion: "6.7"}), "hardware-version", sev{vs: F})
	expect(t, check(t, path, importers.Options{VSphereVersion: "7.0U3"}), "hardware-version", sev{})
}

func TestOVFVersion(t *testing.T) {
	s := defaults()
	s.namespace, s.version = "http://schemas.dmtf.org/ovf/envelope/2", "2.0"
	expect(t, check(t, s.write(t), importers.Options{}), "ovf-version", sev{v2v: F, ovrt: F, pve: F})

	s = defaults()
	s.namespace, s.version = "http://www.vmware.com/schema/ovf/1/envelope", "0.9"
	expect(t, check(t, s.write(t), importers.Options{}), "ovf-version", sev{v2v: F, ovrt: F, pve: F, dsp: W})
}

func TestXMLInvalid(t *testing.T) {
	s := defaults()
	s.descriptor = []byte(`<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References>`)
	expect(t, check(t, s.write(t), importers.Options{}), "xml-invalid", sev{dsp: F, vs: F, vbox: F, v2v: F, pve: F, ovrt: F})
}

func TestXMLUndefinedPrefix(t *testing.T) {
	s := defaults()
	s.system = `<vmw:StorageGroupSection ovf:required="false"><Info>undeclared vmw</Info></vmw:StorageGroupSection>`
	fs := check(t, s.write(t), importers.Options{})
	expect(t, fs, "xml-undefined-prefix", sev{dsp: F, vs: W, vbox: W, v2v: W, pve: W, ovrt: W})
	expect(t, fs, "xml-invalid", sev{})
}

func TestReferenceMissing(t *testing.T) {
	s := defaults()
	s.refs[0].stored = false
	expect(t, check(t, s.write(t), importers.Options{}), "reference-missing", sev{dsp: F, vs: W, vbox: F, v2v: F, pve: F, ovrt: F})

	// Only a missing disk is known to stop the importers.
	s = defaults()
	s.refs = append(s.refs, ref{id: "file2", href: "notes.txt", data: []byte("x")})
	expect(t, check(t, s.write(t), importers.Options{}), "reference-missing", sev{dsp: F, vs: W})
}

func TestFileUnreferenced(t *testing.T) {
	s := defaults()
	s.extra = []testpkg.TarMember{testpkg.M(testpkg.F("README.txt", "read me\n"))}
	expect(t, check(t, s.write(t), importers.Options{}), "file-unreferenced", sev{dsp: W})
}

// TestTargetsOption: only the selected targets are reported.
func TestTargetsOption(t *testing.T) {
	s := defaults()
	s.refs[0].stored = false
	fs := check(t, s.write(t), importers.Options{Targets: []importers.Target{v2v, pve}})
	for _, f := range fs {
		if f.Target != v2v && f.Target != pve {
			t.Errorf("finding for an unselected target: %+v", f)
		}
	}
	if !importers.Failed(fs) {
		t.Errorf("a missing disk fails virt-v2v and Proxmox:\n%s", dump(fs))
	}
}

// TestHostileCaps: a package breaking one rule a hundred times, and a
// manifest inventing fifty algorithm names, give a bounded report.
func TestHostileCaps(t *testing.T) {
	s := defaults()
	s.alg = "none"
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("extra%03d.txt", i)
		s.extra = append(s.extra, testpkg.M(testpkg.F(name, "x")))
	}
	var mf strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&mf, "ALG%d(disk1.vmdk)= 00\n", i)
	}
	s.extra = append(s.extra, testpkg.M(testpkg.F("appliance.mf", mf.String())))
	fs := check(t, s.write(t), importers.Options{Targets: []importers.Target{dsp}})
	n := map[string]int{}
	for _, f := range fs {
		n[f.Rule]++
	}
	// 20 files listed, then one summary.
	if n["file-unreferenced"] != 21 || !strings.Contains(dump(fs), "(more): 80 more breaches") {
		t.Errorf("file-unreferenced: %d findings\n%s", n["file-unreferenced"], dump(fs))
	}
	// Ten names, then the others together.
	if n["manifest-algorithm"] != 11 {
		t.Errorf("manifest-algorithm: %d findings\n%s", n["manifest-algorithm"], dump(fs))
	}
}

// TestHostileArchives: the ova package's damaged and unusual archives
// (truncated members, bad checksums, huge pax headers, unsafe names...)
// are checked without a panic, and every finding names a rule of the
// table.
func TestHostileArchives(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "ova", "testdata", "*"))
	checked := 0
	for _, p := range paths {
		pkg, err := appliance.OpenPath(p, appliance.Options{})
		if err != nil {
			continue // not a package at all: check would exit 2, as info does
		}
		for _, f := range importers.Check(pkg, importers.Options{}) {
			if _, ok := importers.RuleByID(f.Rule); !ok || f.Source == "" {
				t.Errorf("%s: %+v", p, f)
			}
		}
		pkg.Close()
		checked++
	}
	if checked < 20 {
		t.Errorf("only %d of %d test archives opened", checked, len(paths))
	}
}
