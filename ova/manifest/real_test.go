package manifest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// tarFiles reads every regular member of a tar archive into memory; the
// fixtures are a few kilobytes.
func tarFiles(t *testing.T, p string) (names []string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files = map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		files[h.Name] = b
	}
}

// checkDigest reports whether e's digest matches data.
func checkDigest(e Entry, data []byte) bool {
	h := e.Algorithm.New()
	h.Write(data)
	return bytes.Equal(h.Sum(nil), e.Digest)
}

// TestRealManifests parses manifests written by VirtualBox, COT and a
// vSphere export, and checks every digest against the file it names where
// that file is at hand.
func TestRealManifests(t *testing.T) {
	dir := testutil.RealFixtures(t)
	cot := filepath.Join(dir, "glennmatthews-cot")
	_, cotTar := tarFiles(t, filepath.Join(cot, "test.tar"))
	fakeNames, fake := tarFiles(t, filepath.Join(dir, "kubevirt-containerized-data-importer", "fake.ova"))

	// fromDisk reads a file beside the manifest, or from the tar it came in.
	fromDisk := func(extra map[string][]byte) func(string) ([]byte, bool) {
		return func(name string) ([]byte, bool) {
			if b, ok := extra[name]; ok {
				return b, true
			}
			b, err := os.ReadFile(filepath.Join(cot, name))
			return b, err == nil
		}
	}
	readFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(cot, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		mf      []byte
		alg     Algorithm
		entries int
		crlf    bool
		file    func(string) ([]byte, bool)
		match   []string // names whose digest must match
		stale   []string // names whose digest must not match (the fixture is out of date)
	}{
		{"COT input.mf (SHA1)", readFile("input.mf"), SHA1, 4, false, fromDisk(cotTar),
			[]string{"input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt"}, nil},
		{"VirtualBox ubuntu.2.0.mf (SHA256)", readFile("ubuntu.2.0.mf"), SHA256, 2, false, fromDisk(nil),
			[]string{"ubuntu.2.0.ovf", "ubuntu.2.0-disk1.vmdk"}, nil},
		// COT's test.tar carries an older input.mf: its input.ovf digest
		// predates the input.ovf beside it, which the check must catch.
		{"COT test.tar input.mf", cotTar["input.mf"], SHA1, 3, false, fromDisk(cotTar),
			[]string{"input.vmdk", "input.iso"}, []string{"input.ovf"}},
		{"vSphere fake.ova disk1.mf (CRLF)", fake["disk1.mf"], SHA1, 1, true, func(n string) ([]byte, bool) {
			b, ok := fake[n]
			return b, ok
		}, []string{"disk1.vmdk"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mf == nil {
				t.Fatal("manifest not found in the fixture")
			}
			if got := bytes.Contains(tc.mf, []byte("\r\n")); got != tc.crlf {
				t.Fatalf("fixture CRLF = %v, want %v: the fixture changed", got, tc.crlf)
			}
			m, err := Parse(bytes.NewReader(tc.mf))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Entries) != tc.entries || len(m.Warnings) != 0 {
				t.Fatalf("%d entries, warnings %q; want %d entries and no warnings", len(m.Entries), m.Warnings, tc.entries)
			}
			for _, e := range m.Entries {
				if e.Algorithm != tc.alg {
					t.Errorf("%s: algorithm %s, want %s", e.Name, e.Algorithm, tc.alg)
				}
			}
			for _, n := range append(append([]string{}, tc.match...), tc.stale...) {
				e, ok := m.Lookup(n)
				if !ok {
					t.Fatalf("%s not listed", n)
				}
				data, ok := tc.file(n)
				if !ok {
					t.Fatalf("%s not available to check", n)
				}
				want := !slices.Contains(tc.stale, n)
				if got := checkDigest(e, data); got != want {
					t.Errorf("%s: digest matches = %v, want %v", n, got, want)
				}
			}
		})
	}

	// The package fake.ova as a whole: its only manifest is not named
	// after the descriptor and does not list it.
	var mf *Manifest
	for _, n := range fakeNames {
		if strings.HasSuffix(n, ".mf") {
			m, err := Parse(bytes.NewReader(fake[n]))
			if err != nil {
				t.Fatal(err)
			}
			mf = m
		}
	}
	if mf == nil {
		t.Fatal("fake.ova holds no manifest")
	}
	r := Coverage(mf, fakeNames, "fake.ovf", nil)
	if !r.DescriptorUnlisted || len(r.Missing) != 0 || len(r.Unlisted) != 0 {
		t.Errorf("coverage of fake.ova = %+v, want only the descriptor unlisted", r)
	}

	// COT's input package, with sample_cfg.txt from test.tar, is complete.
	m, err := Parse(bytes.NewReader(readFile("input.mf")))
	if err != nil {
		t.Fatal(err)
	}
	r = Coverage(m, []string{"input.ovf", "input.mf", "input.vmdk", "input.iso", "sample_cfg.txt"}, "input.ovf", nil)
	if !r.Complete() {
		t.Errorf("coverage of COT's input package = %+v, want complete", r)
	}
}
