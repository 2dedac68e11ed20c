package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// twoPackageFiles are two packages in one set of files: aaa, whose manifest
// nothing signs, then app, signed by a CA the test trusts (--ca).
func twoPackageFiles(t *testing.T) ([]testpkg.File, string) {
	t.Helper()
	s := testpkg.NewSigner(t, nil)
	aaaOVF := testpkg.File{Name: "aaa.ovf", Data: testpkg.Descriptor("aaa-disk1.img")}
	aaaDisk := testpkg.File{Name: "aaa-disk1.img", Data: bytes.Repeat([]byte("aaa disk "), 1<<17)}
	aaaMF := testpkg.Manifest("SHA256", aaaOVF, aaaDisk).Named("aaa.mf")
	appOVF := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("app-disk1.img")}
	appDisk := testpkg.File{Name: "app-disk1.img", Data: bytes.Repeat([]byte("app disk "), 1<<17)}
	appMF := testpkg.Manifest("SHA256", appOVF, appDisk).Named("app.mf")
	appCert := testpkg.File{Name: "app.cert", Data: s.Sign(t, "SHA256", "app.mf", appMF.Data, nil)}
	return []testpkg.File{aaaOVF, aaaMF, aaaDisk, appOVF, appMF, appCert, appDisk}, s.WriteCA(t, t.TempDir())
}

// TestForeignSignature is the first report, as a user would meet
// it: another package's certificate in the archive (or the folder) never
// makes aaa's package signed, for info, verify or the mount.
func TestForeignSignature(t *testing.T) {
	files, ca := twoPackageFiles(t)
	ova := filepath.Join(t.TempDir(), "two.ova")
	testpkg.WriteOVA(t, ova, files...)
	folder := t.TempDir()
	testpkg.WriteFolder(t, folder, files...)

	for name, src := range map[string]string{"ova": ova, "folder": filepath.Join(folder, "aaa.ovf")} {
		t.Run(name, func(t *testing.T) {
			code, out := runOvfmount(t, "info", "--json", "--ca", ca, src)
			var info struct {
				Descriptor string   `json:"descriptor"`
				Manifests  []string `json:"manifests"`
				Foreign    []string `json:"foreign"`
				Signature  struct{ Status string }
			}
			if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
				t.Fatalf("info: exit %d\n%s", code, out)
			}
			if info.Descriptor != "aaa.ovf" || info.Signature.Status != "absent" || strings.Join(info.Manifests, ",") != "aaa.mf" {
				t.Errorf("info: %+v", info)
			}
			if code, out := runOvfmount(t, "info", "--ca", ca, src); !strings.Contains(out, "Signature   absent") {
				t.Errorf("info: exit %d\n%s", code, out)
			}

			code, r := runVerifyJSON(t, "--ca", ca, "--require-trusted-signer", "--cache-dir", "", src)
			if code != 1 || r["ok"] != false {
				t.Errorf("verify --require-trusted-signer of an unsigned package: exit %d, %v", code, r)
			}
			for _, f := range r["files"].([]any) {
				file := f.(map[string]any)
				if strings.HasPrefix(file["name"].(string), "app") && file["status"] == "ok" {
					t.Errorf("verify vouches for %v", file)
				}
			}

			m := mountArchive(t, src, "--verify=strict", "--require-trusted-signer", "--ca", ca)
			if _, err := os.ReadFile(m.path("aaa-disk1.img")); !errors.Is(err, syscall.EIO) {
				t.Errorf("a strict, trusted-signer-only mount served aaa's unsigned disk: %v", err)
			}
			if sig := xattr(t, m.dir, "user.ovfmount.signature"); sig != "absent" {
				t.Errorf("root signature %q", sig)
			}
			if v := xattr(t, m.path("aaa.mf"), "user.ovfmount.verify"); v == "verified" {
				t.Error("aaa.mf shows as verified")
			}
			_, err := os.Stat(m.path("app.mf"))
			if name == "folder" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the folder's other package's manifest is shown: %v", err)
			}
		})
	}
	// --descriptor picks the signed package, which then verifies.
	if code, r := runVerifyJSON(t, "--ca", ca, "--require-trusted-signer", "--descriptor", "app.ovf", "--cache-dir", "", ova); code != 0 || r["ok"] != true {
		t.Errorf("verify --descriptor app.ovf: exit %d, %v", code, r)
	}
}

// TestVerifyReadsEveryByte is the second report: an archive
// rewritten in place with its mtime put back is read again, and the digest
// printed is the one computed, as sha256sum of tar -xO gives it.
func TestVerifyReadsEveryByte(t *testing.T) {
	p := makeSignedPkg(t, false)
	cache := t.TempDir()
	if code, out := runOvfmount(t, "verify", "--ca", p.caPEM, "--cache-dir", cache, p.ova); code != 0 {
		t.Fatalf("first verify: exit %d\n%s", code, out)
	}
	code, r := runVerifyJSON(t, "--ca", p.caPEM, "--cache-dir", cache, "--trust-cache", p.ova)
	if code != 0 || !strings.Contains(fmt.Sprint(r["files"]), "cached:true") {
		t.Errorf("--trust-cache of an unchanged archive: exit %d, %v", code, r["files"])
	}
	if _, out := runOvfmount(t, "verify", "--ca", p.caPEM, "--cache-dir", cache, "--trust-cache", p.ova); !strings.Contains(out, "ok (cached)") {
		t.Errorf("the text report does not say which files were taken from the cache:\n%s", out)
	}

	st, _ := os.Stat(p.ova)
	time.Sleep(20 * time.Millisecond)
	f, _ := os.OpenFile(p.ova, os.O_WRONLY, 0)
	f.WriteAt([]byte{^p.disk[1000]}, p.diskOff+1000)
	f.Close()
	os.Chtimes(p.ova, st.ModTime(), st.ModTime())
	out, err := exec.Command("sh", "-c", "tar -xOf "+p.ova+" disk1.vmdk | sha256sum").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))[0]
	for _, trust := range []string{"", "--trust-cache"} {
		args := []string{"--ca", p.caPEM, "--cache-dir", cache, p.ova}
		if trust != "" {
			args = append([]string{trust}, args...)
		}
		code, r := runVerifyJSON(t, args...)
		var got string
		for _, f := range r["files"].([]any) {
			if file := f.(map[string]any); file["name"] == "disk1.vmdk" && file["status"] == "mismatch" {
				got = file["actual"].(string)
			}
		}
		if code != 1 || got != want {
			t.Errorf("verify %s of the rewritten archive: exit %d, disk digest %q; sha256sum says %s", trust, code, got, want)
		}
	}
}

// TestVerifyInterrupted: Ctrl-C during verify exits 130 and leaves no
// half-written cache file.
func TestVerifyInterrupted(t *testing.T) {
	testutil.RequireTool(t, "tar")
	dir := t.TempDir()
	// A 2 GiB member of zeros, stored sparse by GNU tar: hashing it takes
	// over a second (nothing to read from the disk, still 2 GiB to hash),
	// and the archive is a few KiB. Its digest is never reached.
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img")}
	testpkg.WriteFolder(t, src, desc, testpkg.F("app.mf", "SHA512(app.ovf)= "+testpkg.Digest("SHA512", desc.Data)+
		"\nSHA512(disk1.img)= "+strings.Repeat("00", 64)+"\n"))
	f, err := os.Create(filepath.Join(src, "disk1.img"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30)
	f.Close()
	ova := filepath.Join(dir, "big.ova")
	if out, err := exec.Command("tar", "--format=posix", "--sparse", "-cf", ova, "-C", src, "app.ovf", "app.mf", "disk1.img").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	cache := t.TempDir()
	cmd := exec.Command(daemon(t), "verify", "--cache-dir", cache, ova)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("verify after SIGINT: %v, want exit 130\n%s", err, out.String())
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("a partial cache file is left: %s", e.Name())
		}
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("output: %s", out.String())
	}
}

// TestNotAPackage: an ISO 9660 image, a file of zeros and a malformed
// descriptor are refused with exit 2, named as what they are, by the mount
// and by info; a descriptor that starts with a comment is one.
func TestNotAPackage(t *testing.T) {
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros.ova")
	os.WriteFile(zeros, make([]byte, 64<<10), 0o644)
	broken := filepath.Join(dir, "broken.ovf")
	os.WriteFile(broken, []byte("<?xml version=\"1.0\"?>\n<Envelope>\n  <References>\n</Envelope>\n"), 0o644)
	cases := map[string]string{zeros: "not an OVA: a file of 65536 zero bytes", broken: "not a valid OVF descriptor: line 4"}
	if fx := fixturesIfPresent(t); fx != "" {
		cases[filepath.Join(fx, "glennmatthews-cot/input.iso")] = "not an OVA: an ISO 9660 image"
	}
	mnt := t.TempDir()
	for path, want := range cases {
		for _, args := range [][]string{{path, mnt}, {"info", path}, {"verify", path}} {
			code, out := runOvfmount(t, args...)
			if code != 2 || !strings.Contains(out, want) {
				t.Errorf("ovfmount %v: exit %d, %q; want exit 2 and %q", args, code, out, want)
			}
		}
	}
	if mounted(t, mnt) {
		t.Error("a refused source left a mount")
	}

	commented := t.TempDir()
	testpkg.WriteFolder(t, commented, testpkg.File{Name: "app.ovf",
		Data: []byte("<?xml version=\"1.0\"?>\n<!-- " + strings.Repeat("licence text ", 200) + "-->\n" +
			strings.TrimPrefix(string(testpkg.Descriptor("notes.txt")), "<?xml version=\"1.0\"?>\n"))},
		testpkg.F("notes.txt", "hello"))
	m := mountArchive(t, filepath.Join(commented, "app.ovf"))
	if got := readFile(m.path("notes.txt")); got != "hello" {
		t.Errorf("a descriptor with a long comment: notes.txt reads %q", got)
	}
}

// fixturesIfPresent is the real fixtures' folder, or "" where it is absent.
func fixturesIfPresent(t *testing.T) string {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "..", "shared", "fixtures", "real")); err != nil && os.Getenv("OVFMOUNT_FIXTURES") == "" {
		return ""
	}
	return testutil.RealFixtures(t)
}

// TestLooseDisk: a disk image alone mounts as a one-disk package and is
// described by info, as vmdkmount and qemu-img info would.
func TestLooseDisk(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.PartitionedDisk(t, 16<<20, 4<<20)
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.QemuImg(t, "convert", "-O", "qcow2", "-c", raw, qcow)
	m := mountArchive(t, qcow)
	sameFile(t, m.path("disks/disk.qcow2.raw"), raw)
	if got := readFile(m.path("disk.qcow2")); got != readFile(qcow) {
		t.Error("the image itself is not served as it is")
	}
	r := runInfo(t, qcow)
	if len(r.Disks) != 1 || r.Disks[0].RawView != "disks/disk.qcow2.raw" || r.Disks[0].CapacityBytes != 16<<20 {
		t.Errorf("info of a loose disk: %+v", r.Disks)
	}
	// A tar of disks without a descriptor: info lists the disks the mount
	// shows views of.
	tarred := filepath.Join(dir, "disks.ova")
	testpkg.WriteOVA(t, tarred, testpkg.File{Name: "disk.qcow2", Data: []byte(readFile(qcow))})
	if r := runInfo(t, tarred); len(r.Disks) != 1 || r.Disks[0].File != "disk.qcow2" || r.Disks[0].RawView != "disks/disk.qcow2.raw" {
		t.Errorf("info of a tar without a descriptor: %+v", r.Disks)
	}
}

// TestSameFilesEverywhere: for every package, what the mount shows, what
// info --json lists and what verify covers are the same set of files.
func TestSameFilesEverywhere(t *testing.T) {
	sources := map[string]string{}
	signed := makeSignedPkg(t, false)
	sources["signed"] = signed.ova
	files, _ := twoPackageFiles(t)
	two := filepath.Join(t.TempDir(), "two.ova")
	testpkg.WriteOVA(t, two, files...)
	sources["two packages"] = two
	sources["sample"] = smallOVA(t, 100)
	if fx := fixturesIfPresent(t); fx != "" {
		for _, rel := range []string{"kubevirt-containerized-data-importer/fake.ova", "openstack-glance/testserver.ova",
			"openstack-glance/testserver-no-ovf.ova", "openstack-glance/testserver-no-disk.ova", "openstack-glance/testserver-bad-ovf.ova",
			"glennmatthews-cot/input.ovf", "glennmatthews-cot/ubuntu.2.0.ovf", "glennmatthews-cot/test.tar",
			"strozfriedberg-vmdk-rs/twoGbMaxExtentSparse.vmdk", "log2timeline-dfvfs/ext2.vhd", "kubevirt-containerized-data-importer/cirros-snapshot1.qcow2"} {
			sources[rel] = filepath.Join(fx, rel)
		}
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			m := mountArchive(t, src, "--verify=off")
			var shown []string
			filepath.Walk(m.dir, func(p string, info os.FileInfo, err error) error {
				if rel, _ := filepath.Rel(m.dir, p); err == nil && rel != "." {
					shown = append(shown, filepath.ToSlash(rel))
					if strings.HasPrefix(rel, "files/") && info.IsDir() {
						return filepath.SkipDir // a guest filesystem's files: not the package's
					}
				}
				return nil
			})
			code, out := runOvfmount(t, "info", "--json", src)
			var info struct {
				Mount []struct {
					Path    string   `json:"path"`
					Type    string   `json:"type"`
					Members []string `json:"members"`
				} `json:"mount"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
				t.Fatalf("info: exit %d\n%s", code, out)
			}
			var listed, covered []string
			files := map[string]bool{}
			for _, e := range info.Mount {
				listed = append(listed, e.Path)
				if e.Type == "file" {
					files[e.Path] = true
				}
			}
			_, r := runVerifyJSON(t, "--cache-dir", "", src)
			rows, _ := r["files"].([]any)
			for _, f := range rows {
				shownAs, ok := f.(map[string]any)["shownAs"].([]any)
				if !ok {
					t.Fatalf("verify --json gives no shownAs for %v", f)
				}
				for _, p := range shownAs {
					covered = append(covered, p.(string))
				}
			}
			sort.Strings(shown)
			sort.Strings(listed)
			covered = uniqueSorted(covered)
			var fileList []string
			for p := range files {
				fileList = append(fileList, p)
			}
			sort.Strings(fileList)
			if strings.Join(shown, "\n") != strings.Join(listed, "\n") {
				t.Errorf("the mount shows:\n%s\ninfo lists:\n%s", strings.Join(shown, "\n"), strings.Join(listed, "\n"))
			}
			if strings.Join(fileList, "\n") != strings.Join(covered, "\n") {
				t.Errorf("info's files:\n%s\nverify covers:\n%s", strings.Join(fileList, "\n"), strings.Join(covered, "\n"))
			}
		})
	}
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// TestWarningsOnce: each inconsistency is said once, by the mount, info
// and verify alike; verify --quiet prints only what failed and the verdict.
func TestWarningsOnce(t *testing.T) {
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img", "missing.img")}
	xxe := testpkg.F("xxe.ovf", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>`)
	ova := filepath.Join(t.TempDir(), "app.ova")
	testpkg.WriteOVA(t, ova, desc, testpkg.F("disk1.img", "data"))
	xxeOVA := filepath.Join(t.TempDir(), "xxe.ova")
	testpkg.WriteOVA(t, xxeOVA, xxe, testpkg.F("disk1.img", "data"))
	for _, tc := range []struct {
		archive string
		once    []string
	}{
		{ova, []string{"has no manifest", `referenced by the descriptor but not in the package`}},
		{xxeOVA, []string{"declares XML entities"}},
	} {
		_, info := runOvfmount(t, "info", tc.archive)
		_, verify := runOvfmount(t, "verify", tc.archive)
		m := mountArchive(t, tc.archive)
		log := readFile(m.logFile)
		for _, want := range tc.once {
			for what, out := range map[string]string{"info": info, "verify": verify, "the mount's log": log} {
				if n := strings.Count(out, want); n != 1 {
					t.Errorf("%s says %q %d times:\n%s", what, want, n, out)
				}
			}
		}
	}

	p := makeSignedPkg(t, true)
	code, out := runOvfmount(t, "verify", "--quiet", "--ca", p.caPEM, p.ova)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || !strings.HasPrefix(lines[0], "disk1.vmdk") || lines[len(lines)-1] != "verdict: FAILED" || strings.Contains(out, "app.ovf  SHA256  ok") {
		t.Errorf("verify --quiet of a damaged package: exit %d\n%s", code, out)
	}
	if code != 1 || !strings.Contains(out, "warning:") {
		t.Errorf("verify --quiet of a failed package hides the warnings that may explain it:\n%s", out)
	}
	good := makeSignedPkg(t, false)
	if code, out := runOvfmount(t, "verify", "-q", "--ca", good.caPEM, good.ova); code != 0 || strings.TrimSpace(out) != "verdict: OK" {
		t.Errorf("verify -q of a good package: exit %d\n%s", code, out)
	}
}
