package integration

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/sample"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
)

// sampleOVA writes an appliance with a streamOptimized VMDK of a
// partitioned 64 MiB disk, and returns the OVA.
func sampleOVA(t *testing.T) string {
	t.Helper()
	return sampleOVAOf(t, testutil.PartitionedDisk(t, 64<<20, 24<<20))
}

// smallSampleOVA is sampleOVA with 3 MiB of files on the disk: small
// enough for an xz decoder under the race detector to read it whole in
// seconds.
func smallSampleOVA(t *testing.T) string {
	t.Helper()
	return sampleOVAOf(t, testutil.PartitionedDisk(t, 64<<20, 3<<20))
}

func sampleOVAOf(t *testing.T, raw string) string {
	t.Helper()
	dir := t.TempDir()
	vmdk := filepath.Join(dir, "disk1.vmdk")
	in, _ := os.Open(raw)
	out, _ := os.Create(vmdk)
	if err := vmdkwriter.Write(out, in, 64<<20); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	ova := filepath.Join(dir, "appliance.ova")
	if err := sample.WriteOVA(ova, sample.Appliance{Name: "appliance", Disks: []sample.Disk{{File: "disk1.vmdk", Path: vmdk,
		Capacity: 64 << 20, Format: sample.StreamOptimized}}}); err != nil {
		t.Fatal(err)
	}
	return ova
}

// compressWith runs a compressor that writes to stdout, as its users run
// it, and returns the compressed file.
func compressWith(t *testing.T, src, dst string, tool string, args ...string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(testutil.RequireTool(t, tool), args...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, stderr.Bytes())
	}
	return dst
}

// TestCompressedArchives mounts an OVA compressed whole by the real
// tools, and compares every member with the plain archive's (as tar
// extracts it) and the raw view with what qemu-img makes of the disk.
// A second mount with the same cache folder loads the index instead of
// building it.
func TestCompressedArchives(t *testing.T) {
	testutil.RequireFUSE(t)
	ova := smallSampleOVA(t)
	dir := t.TempDir()
	members := tarMembers(t, ova)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	os.WriteFile(vmdk, tarExtract(t, ova, "disk1.vmdk"), 0o644)
	rawWant := filepath.Join(dir, "want.raw")
	if out, err := exec.Command(testutil.RequireTool(t, "qemu-img"), "convert", "-O", "raw", vmdk, rawWant).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(rawWant)
	// zipOf zips the package's folder as vendors do: its files under one
	// top-level folder.
	zipOf := func(t *testing.T) (string, string) {
		d := t.TempDir()
		os.Mkdir(filepath.Join(d, "appliance"), 0o755)
		if out, err := exec.Command("tar", "-xf", ova, "-C", filepath.Join(d, "appliance")).CombinedOutput(); err != nil {
			t.Fatalf("tar -x: %v\n%s", err, out)
		}
		cmd := exec.Command(testutil.RequireTool(t, "zip"), "-qr", "appliance.zip", "appliance")
		cmd.Dir = d
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("zip: %v\n%s", err, out)
		}
		return filepath.Join(d, "appliance.zip"), "appliance/"
	}
	compressed := func(tool string, args ...string) func(t *testing.T) (string, string) {
		return func(t *testing.T) (string, string) {
			return compressWith(t, ova, filepath.Join(t.TempDir(), "appliance.ova.x"), tool, args...), ""
		}
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T) (archive, prefix string)
		// what info says of it, and what the log says of the first
		// and the second mount ("" for nothing to say)
		info, built string
		loaded      []string
	}{
		{"gzip", compressed("gzip", "-c", "-6"), "(gzip-compressed, read through a seek index)", "compressed archive indexed", []string{"compressed archive's index loaded", "compressed archive's tar index loaded"}},
		// pigz's stream is read by the same code as gzip's: one mount.
		{"pigz", compressed("pigz", "-c", "-p", "2"), "(gzip-compressed, read through a seek index)", "compressed archive indexed", nil},
		{"xz -T0", compressed("xz", "-c", "-T0", "-3"), "(xz-compressed, read through a seek index)", "compressed archive indexed", []string{"compressed archive's tar index loaded"}},
		{"zstd", compressed("zstd", "-c", "-q"), "(zstd-compressed, read through a seek index)", "compressed archive indexed", []string{"compressed archive's tar index loaded"}},
		{"zip", zipOf, "(a zip archive, read through its central directory)", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive, prefix := tc.make(t)
			cache := t.TempDir()
			rounds := 2
			if tc.loaded == nil {
				rounds = 1 // nothing is kept between runs
			}
			for round := range rounds {
				m := mountArchive(t, archive, "--cache-dir", cache, "--verify", "strict")
				for name, size := range members {
					got, err := os.ReadFile(m.path(prefix + name))
					if err != nil {
						t.Fatal(err)
					}
					if int64(len(got)) != size || sha256.Sum256(got) != sha256.Sum256(tarExtract(t, ova, name)) {
						t.Errorf("%s: %d bytes, differs from tar's (%d bytes)", name, len(got), size)
					}
					if v := xattr(t, m.path(prefix+name), "user.ovfmount.verify"); name != "appliance.mf" && v != "verified" {
						t.Errorf("%s: user.ovfmount.verify %q", name, v)
					}
				}
				got, err := os.ReadFile(m.path("disks/" + prefix + "disk1.vmdk.raw"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("raw view (%d bytes) differs from qemu-img's (%d bytes) at byte %d", len(got), len(want), firstDiff(got, want))
				}
				log := readFile(m.logFile)
				says := []string{tc.built}
				if round == 1 {
					says = tc.loaded
				}
				for _, say := range says {
					if !strings.Contains(log, say) {
						t.Errorf("round %d: the log does not say %q:\n%s", round, say, log)
					}
				}
				m.unmount(t)
			}
			code, out := runOvfmount(t, "info", archive)
			if code != 0 || !strings.Contains(out, tc.info) {
				t.Errorf("info: exit %d\n%s", code, out)
			}
			if tc.name == "gzip" { // the mounts verified every member; verify reads them once more
				if code, out := runOvfmount(t, "verify", archive); code != 0 {
					t.Errorf("verify: exit %d\n%s", code, out)
				}
			}
		})
	}
	// A single xz block or zstd frame too large to read at random offsets
	// is refused, saying how to recompress it.
	for _, tc := range []struct{ tool, advice string }{{"xz", "xz -T0"}, {"zstd", "pzstd"}} {
		big := filepath.Join(t.TempDir(), "big.ova."+tc.tool)
		cmd := exec.Command("sh", "-c", "head -c 300M /dev/zero | "+testutil.RequireTool(t, tc.tool)+" -q -c -1 -T1 > "+big)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", tc.tool, err, out)
		}
		if code, out := runOvfmount(t, "info", big); code != 2 || !strings.Contains(out, "too large for random access") || !strings.Contains(out, tc.advice) {
			t.Errorf("a single %s unit of 300 MiB: exit %d\n%s", tc.tool, code, out)
		}
	}
	// A gzip stream that is no OVA is named as what it holds.
	text := filepath.Join(t.TempDir(), "notes.ova.gz")
	os.WriteFile(filepath.Join(dir, "notes"), bytes.Repeat([]byte("hello\n"), 200), 0o644)
	compressWith(t, filepath.Join(dir, "notes"), text, "gzip", "-c")
	code, out := runOvfmount(t, "info", text)
	if code != 2 || !strings.Contains(out, "not an OVA: gzip-compressed, holding a text file without a valid tar header") {
		t.Errorf("gzip of text: exit %d\n%s", code, out)
	}
}
