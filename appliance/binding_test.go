package appliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// twoPackages is aaa (unsigned: a manifest, no certificate) and app
// (signed by a CA the test trusts), in that order, as files of one
// archive or one folder.
func twoPackages(t *testing.T) ([]testpkg.File, *testpkg.Signer) {
	t.Helper()
	s := testpkg.NewSigner(t, nil)
	aaaOVF := testpkg.File{Name: "aaa.ovf", Data: testpkg.Descriptor("aaa-disk1.img")}
	aaaDisk := disk("aaa-disk1.img", 3<<20, 1)
	aaaMF := testpkg.Manifest("SHA256", aaaOVF, aaaDisk).Named("aaa.mf")
	appOVF := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("app-disk1.img")}
	appDisk := disk("app-disk1.img", 2<<20, 2)
	appMF := testpkg.Manifest("SHA256", appOVF, appDisk).Named("app.mf")
	appCert := testpkg.File{Name: "app.cert", Data: s.Sign(t, "SHA256", "app.mf", appMF.Data, nil)}
	return []testpkg.File{aaaOVF, aaaMF, aaaDisk, appOVF, appMF, appCert, appDisk}, s
}

// TestForeignSignatureVouchesForNothing: in an archive holding two
// packages, the first descriptor's package is unsigned, whatever the other
// package's certificate says; under a strict, trusted-signer-only mount
// its files are refused, and its manifest is not shown as verified.
func TestForeignSignatureVouchesForNothing(t *testing.T) {
	files, s := twoPackages(t)
	path := writeOVA(t, files...)
	strict := integrity.Options{Mode: integrity.Strict, Roots: s.Pool, RequireTrustedSigner: true}
	p := openAt(t, path, strict)
	if p.Descriptor.Member.Name != "aaa.ovf" || p.Manifest == nil || p.Manifest.Name != "aaa.mf" || p.Cert != nil {
		t.Fatalf("descriptor %s, manifest %v, cert %v", p.Descriptor.Member.Name, p.Manifest, p.Cert)
	}
	if sig := p.Checks.Signature(); sig.State != "absent" {
		t.Fatalf("aaa's signature is %s (%v): app.cert signed it", sig.State, sig.Err)
	}
	var foreign []string
	for _, m := range p.Foreign {
		foreign = append(foreign, m.Name)
	}
	if strings.Join(foreign, ",") != "app.cert,app.mf" {
		t.Errorf("foreign: %v", foreign)
	}
	if _, err := readEntry(t, p, "aaa-disk1.img"); !errors.Is(err, integrity.ErrUnsigned) {
		t.Errorf("aaa's unsigned disk under --require-trusted-signer: %v", err)
	}
	if st := status(t, p, "aaa.mf"); st == "verified" {
		t.Error("aaa's unsigned manifest shows as verified")
	}
	if st := status(t, p, "app.mf"); st != "foreign" {
		t.Errorf("app.mf in aaa's package: %s, want foreign", st)
	}
	if e := p.Lookup("app.cert"); e == nil || e.Role != RoleForeign {
		t.Errorf("app.cert's role: %+v", e)
	}
	if !strings.Contains(joined(p.Warnings), "other descriptors, not used: app.ovf") {
		t.Errorf("warnings do not name the other descriptor:\n%s", joined(p.Warnings))
	}

	// The same archive with --descriptor app.ovf is app's package: signed,
	// served, and aaa's manifest is an ordinary file.
	q := openAt(t, path, strict, func(o *Options) { o.Descriptor = "app.ovf" })
	if sig := q.Checks.Signature(); sig.State != "ok" || q.Cert == nil {
		t.Fatalf("app's signature: %s (%v)", sig.State, sig.Err)
	}
	if got, err := readEntry(t, q, "app-disk1.img"); err != nil || len(got) != 2<<20 {
		t.Errorf("app's signed disk: %d bytes, %v", len(got), err)
	}
	if st := status(t, q, "aaa.mf"); st != "foreign" {
		t.Errorf("aaa.mf in app's package: %s", st)
	}
	if st := status(t, q, "app.mf"); st != "verified" {
		t.Errorf("app's signed manifest: %s", st)
	}
	// Lazily, aaa's files are served (nothing requires a signer), and
	// verified against aaa's own manifest only.
	lazy := openAt(t, path, integrity.Options{Mode: integrity.Lazy, Roots: s.Pool})
	if err := lazy.Checks.VerifyAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"aaa.ovf": "verified", "aaa-disk1.img": "verified", "app.ovf": "unlisted",
		"app-disk1.img": "unlisted", "app.mf": "foreign", "app.cert": "foreign", "aaa.mf": "metadata"} {
		if got := status(t, lazy, name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// TestFolderTakesOnlyItsOwnFiles: an unpacked package reads only its own
// manifest and certificate from a folder holding two packages.
func TestFolderTakesOnlyItsOwnFiles(t *testing.T) {
	files, s := twoPackages(t)
	dir := t.TempDir()
	testpkg.WriteFolder(t, dir, files...)
	strict := integrity.Options{Mode: integrity.Strict, Roots: s.Pool, RequireTrustedSigner: true}
	p := openAt(t, filepath.Join(dir, "aaa.ovf"), strict)
	got := joined(paths(p))
	for _, absent := range []string{"app.mf", "app.cert", "app.ovf", "app-disk1.img"} {
		if p.Lookup(absent) != nil {
			t.Errorf("aaa's package shows %s:\n%s", absent, got)
		}
	}
	if p.Checks.Signature().State != "absent" {
		t.Errorf("aaa's signature: %s", p.Checks.Signature().State)
	}
	if _, err := readEntry(t, p, "aaa-disk1.img"); !errors.Is(err, integrity.ErrUnsigned) {
		t.Errorf("aaa's disk: %v", err)
	}
	q := openAt(t, filepath.Join(dir, "app.ovf"), strict)
	if q.Checks.Signature().State != "ok" || q.Lookup("aaa.mf") != nil {
		t.Errorf("app's package: signature %s, entries %v", q.Checks.Signature().State, paths(q))
	}
	// Verifying either package is not failed by the other's files.
	for _, pk := range []*Package{openAt(t, filepath.Join(dir, "aaa.ovf"), integrity.Options{Mode: integrity.Lazy}),
		openAt(t, filepath.Join(dir, "app.ovf"), integrity.Options{Mode: integrity.Lazy, Roots: s.Pool})} {
		if err := pk.Checks.VerifyAll(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if cov := pk.Checks.Coverage(); !cov.Complete() {
			t.Errorf("%s: coverage %+v", pk.Descriptor.Member.Name, cov)
		}
	}
}

// TestSignatureBindsDescriptor: a valid signature over a manifest that
// does not vouch for this descriptor vouches for nothing.
func TestSignatureBindsDescriptor(t *testing.T) {
	s := testpkg.NewSigner(t, nil)
	ovf := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img")}
	d := disk("disk1.img", 1<<20, 3)
	for _, tc := range []struct {
		name   string
		listed []testpkg.File
		mfName string // what the certificate says it signs
		why    string
	}{
		{"descriptor unlisted", []testpkg.File{d}, "app.mf", "does not list the descriptor"},
		{"descriptor of another", []testpkg.File{testpkg.File{Name: "app.ovf", Data: []byte("<Envelope/>")}, d}, "app.mf", "does not match its digest"},
		{"another manifest signed", []testpkg.File{ovf, d}, "other.mf", "signs other.mf, not the package's manifest app.mf"},
		{"bound", []testpkg.File{ovf, d}, "app.mf", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf := testpkg.Manifest("SHA256", tc.listed...).Named("app.mf")
			cert := testpkg.File{Name: "app.cert", Data: s.Sign(t, "SHA256", tc.mfName, mf.Data, nil)}
			p := openAt(t, writeOVA(t, ovf, mf, cert, d), integrity.Options{Mode: integrity.Lazy, Roots: s.Pool})
			sig := p.Checks.Signature()
			if tc.why == "" {
				if sig.State != "ok" {
					t.Fatalf("a bound signature: %s (%v)", sig.State, sig.Err)
				}
				return
			}
			if sig.State != "bad" || sig.Err == nil || !strings.Contains(sig.Err.Error(), tc.why) {
				t.Fatalf("signature %s (%v); want bad, saying %q", sig.State, sig.Err, tc.why)
			}
		})
	}
}

// TestLenientManifest: a lone manifest not named after the descriptor is
// read, with a warning, and checks digests; it never makes the package
// signed. Several such manifests: none is used.
func TestLenientManifest(t *testing.T) {
	s := testpkg.NewSigner(t, nil)
	ovf := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img")}
	d := disk("disk1.img", 1<<20, 4)
	mf := testpkg.Manifest("SHA1", ovf, d).Named("disk1.mf")
	cert := testpkg.File{Name: "disk1.cert", Data: s.Sign(t, "SHA1", "disk1.mf", mf.Data, nil)}
	p := openAt(t, writeOVA(t, ovf, mf, cert, d), integrity.Options{Mode: integrity.Lazy, Roots: s.Pool})
	if p.Manifest == nil || p.Manifest.Name != "disk1.mf" || !p.ManifestLenient || p.Cert != nil {
		t.Fatalf("manifest %v lenient %v cert %v", p.Manifest, p.ManifestLenient, p.Cert)
	}
	if p.Checks.Signature().State != "absent" {
		t.Errorf("a lenient manifest made the package signed: %s", p.Checks.Signature().State)
	}
	if !strings.Contains(joined(p.Warnings), "disk1.mf is read instead, leniently") {
		t.Errorf("no warning about the lenient manifest:\n%s", joined(p.Warnings))
	}
	p.Checks.VerifyAll(context.Background(), nil)
	if st := status(t, p, "disk1.img"); st != "verified" {
		t.Errorf("the lenient manifest's digests are not checked: %s", st)
	}

	two := openAt(t, writeOVA(t, ovf, mf, mf.Named("disk2.mf"), d), integrity.Options{Mode: integrity.Lazy})
	if two.Manifest != nil || !strings.Contains(joined(two.Warnings), "none is used") {
		t.Errorf("several stray manifests: %v\n%s", two.Manifest, joined(two.Warnings))
	}
}

// TestDescriptorChoice: an OVA's descriptor is the first .ovf in archive
// order, not by name; --descriptor picks another, and a wrong one fails
// naming those there are.
func TestDescriptorChoice(t *testing.T) {
	path := writeOVA(t, testpkg.F("zzz.ovf", "<Envelope/>"), testpkg.F("aaa.ovf", "<Envelope/>"))
	p := openAt(t, path, integrity.Options{})
	if p.Descriptor.Member.Name != "zzz.ovf" {
		t.Errorf("descriptor %s, want the first member zzz.ovf", p.Descriptor.Member.Name)
	}
	if q := openAt(t, path, integrity.Options{}, func(o *Options) { o.Descriptor = "aaa.ovf" }); q.Descriptor.Member.Name != "aaa.ovf" {
		t.Errorf("--descriptor aaa.ovf gave %s", q.Descriptor.Member.Name)
	}
	_, err := OpenPath(path, Options{Descriptor: "nope.ovf"})
	var nd *NoSuchDescriptorError
	if !errors.As(err, &nd) || !strings.Contains(err.Error(), "zzz.ovf, aaa.ovf") {
		t.Errorf("a wrong --descriptor: %v", err)
	}
	first := writeOVA(t, testpkg.F("disk.img", "x"), testpkg.F("app.ovf", "<Envelope/>"))
	if w := joined(openAt(t, first, integrity.Options{}).Warnings); !strings.Contains(w, "not the archive's first member") {
		t.Errorf("a descriptor that is not first is not reported:\n%s", w)
	}

	dir := t.TempDir()
	testpkg.WriteFolder(t, dir, testpkg.F("a.ovf", "<Envelope/>"), testpkg.F("b.ovf", "<Envelope/>"))
	var several *SeveralDescriptorsError
	if _, err := OpenPath(dir, Options{}); !errors.As(err, &several) || !strings.Contains(err.Error(), "a.ovf, b.ovf") {
		t.Errorf("a folder with two descriptors: %v", err)
	}
	os.Remove(filepath.Join(dir, "b.ovf"))
	if q := openAt(t, dir, integrity.Options{}); q.Source != SourceFolder || q.Descriptor.Member.Name != "a.ovf" {
		t.Errorf("a folder with one descriptor: %+v", q.Descriptor)
	}
}
