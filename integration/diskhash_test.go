package integration

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/ovfmount/ovfmount/internal/nginx"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// sums are a file's digests by algorithm, computed by the tools an
// examiner would use: md5sum, sha1sum, sha256sum, and b3sum when installed
// (else BLAKE3 of the same bytes by github.com/zeebo/blake3).
func sums(t *testing.T, file string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for alg, tool := range map[string]string{"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "blake3": "b3sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		got, err := exec.Command(tool, file).Output()
		if err != nil {
			t.Fatalf("%s %s: %v", tool, file, err)
		}
		out[alg] = strings.Fields(string(got))[0]
	}
	if out["blake3"] == "" {
		s := blake3.Sum256([]byte(readFile(file)))
		out["blake3"] = hex.EncodeToString(s[:])
	}
	return out
}

type hashedView struct {
	Path    string            `json:"path"`
	Kind    string            `json:"kind"`
	Disk    string            `json:"disk"`
	Offset  int64             `json:"offset"`
	Size    int64             `json:"size"`
	Digests map[string]string `json:"digests"`
	Status  string            `json:"status"`
	Error   string            `json:"error"`
	Seconds float64           `json:"seconds"`
}

type hashedReport struct {
	OK     bool     `json:"ok"`
	Warns  []string `json:"warnings"`
	Hashes struct {
		Started, Time string
		Algorithms    []string `json:"algorithms"`
		Archive       struct {
			Path    string            `json:"path"`
			Size    int64             `json:"size"`
			Digests map[string]string `json:"digests"`
		} `json:"archive"`
		Views []hashedView `json:"views"`
	} `json:"hashes"`
}

func verifyDisksJSON(t *testing.T, args ...string) (int, hashedReport) {
	t.Helper()
	code, out := runOvfmount(t, append([]string{"verify", "--json"}, args...)...)
	var r hashedReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	return code, r
}

// TestVerifyDiskHashes: verify --disks --partitions gives, for a
// streamOptimized VMDK and a QCOW2 written by qemu-img, the digests that
// md5sum, sha1sum, sha256sum and b3sum give of qemu-img convert -O raw's
// output, and for each partition those of the range sfdisk reports, cut
// out with dd; the archive's own digests are those of the file. A disk
// whose member does not match the manifest gets an error, not a digest.
func TestVerifyDiskHashes(t *testing.T) {
	testutil.RequireTool(t, "sfdisk")
	dir := t.TempDir()
	raw := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	vmdk := filepath.Join(dir, "disk1.vmdk")
	testutil.QemuImg(t, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	qcow := filepath.Join(dir, "disk2.qcow2")
	testutil.QemuImg(t, "convert", "-O", "qcow2", raw, qcow)
	var files []testpkg.File
	for _, p := range []string{vmdk, qcow} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, testpkg.File{Name: filepath.Base(p), Data: b})
	}
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.vmdk", "disk2.qcow2")}
	mf := testpkg.Manifest("SHA256", append([]testpkg.File{desc}, files...)...).Named("app.mf")
	archive := filepath.Join(dir, "app.ova")
	testpkg.WriteOVA(t, archive, append([]testpkg.File{desc, mf}, files...)...)

	code, r := verifyDisksJSON(t, "--disks", "--partitions", "--hash", "sha256,md5,blake3,sha1", "--cache-dir", t.TempDir(), archive)
	if code != 0 || !r.OK {
		t.Fatalf("exit %d, ok %v, warnings %v", code, r.OK, r.Warns)
	}
	if fmt.Sprint(r.Hashes.Algorithms) != "[md5 sha1 sha256 blake3]" || r.Hashes.Time == "" || r.Hashes.Started == "" {
		t.Errorf("algorithms %v, started %q, time %q", r.Hashes.Algorithms, r.Hashes.Started, r.Hashes.Time)
	}
	want := sums(t, archive)
	if a := r.Hashes.Archive; fmt.Sprint(a.Digests) != fmt.Sprint(want) || a.Size != int64(len(readFile(archive))) {
		t.Errorf("archive: %v (%d bytes), want %v", a.Digests, a.Size, want)
	}
	views := map[string]hashedView{}
	for _, v := range r.Hashes.Views {
		views[v.Path] = v
	}
	checked := 0
	for _, img := range []string{vmdk, qcow} {
		oracle := testutil.RawOracle(t, dir, img, "")
		name := "disks/" + filepath.Base(img) + ".raw"
		v, ok := views[name]
		if want := sums(t, oracle); !ok || v.Status != "verified" || v.Kind != "disk" || fmt.Sprint(v.Digests) != fmt.Sprint(want) {
			t.Errorf("%s: %+v, want %v from qemu-img convert", name, v, want)
		}
		table := testutil.Sfdisk(t, oracle)
		if len(table.Partitions) == 0 {
			t.Fatalf("%s: sfdisk finds no partition", oracle)
		}
		for i, p := range table.Partitions {
			name := fmt.Sprintf("disks/%s.p%d", filepath.Base(img), i+1)
			ss := table.SectorSize
			part := filepath.Join(dir, filepath.Base(name))
			testutil.Run(t, "dd", "if="+oracle, "of="+part, "bs=1M", "iflag=skip_bytes,count_bytes", "status=none",
				fmt.Sprint("skip=", p.Start*ss), fmt.Sprint("count=", p.Size*ss))
			want := sums(t, part)
			v, ok := views[name]
			if !ok || v.Kind != "partition" || v.Offset != p.Start*ss || v.Size != p.Size*ss || v.Status != "verified" ||
				fmt.Sprint(v.Digests) != fmt.Sprint(want) {
				t.Errorf("%s: %+v, want %v at %d from dd", name, v, want, p.Start*ss)
			}
			checked++
		}
	}
	if len(r.Hashes.Views) != 2+checked {
		t.Errorf("%d views hashed, want the 2 disks and %d partitions: %+v", len(r.Hashes.Views), checked, r.Hashes.Views)
	}

	// The text report: one line per digest, as sha256sum writes it with
	// the algorithm in front.
	code, out := runOvfmount(t, "verify", "--disks", "--quiet", "--cache-dir", t.TempDir(), archive)
	if line := "sha256  " + views["disks/disk1.vmdk.raw"].Digests["sha256"] + "  disks/disk1.vmdk.raw"; code != 0 || !strings.Contains(out, line) {
		t.Errorf("text report: exit %d, no %q in\n%s", code, line, out)
	}

	// From a URL: the archive read once more through the same reader gives
	// the file's digests, and the disks the same as from the file.
	t.Run("url", func(t *testing.T) {
		if _, err := nginx.Binary(); err != nil {
			t.Skip(err)
		}
		srv, err := nginx.Start(t.TempDir(), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
		code, u := verifyDisksJSON(t, "--disks", "--hash", "sha1", "--cache-dir", "", srv.URL+"/app.ova")
		if code != 0 || u.Hashes.Archive.Digests["sha1"] != sums(t, archive)["sha1"] || len(u.Hashes.Views) != 2 {
			t.Fatalf("exit %d, %+v", code, u.Hashes)
		}
		for _, v := range u.Hashes.Views {
			if v.Status != "verified" || v.Digests["sha1"] != views[v.Path].Digests["sha1"] {
				t.Errorf("%s from the URL: %+v, from the file %+v", v.Path, v, views[v.Path])
			}
		}
	})

	// A damaged member: an error for its disk, no digest.
	bad := makeSignedPkg(t, true)
	code, r = verifyDisksJSON(t, "--disks", "--hash", "md5", bad.ova)
	if code != 1 || r.OK || len(r.Hashes.Views) != 1 {
		t.Fatalf("a tampered disk: exit %d, ok %v, views %+v", code, r.OK, r.Hashes.Views)
	}
	if v := r.Hashes.Views[0]; v.Status != "failed" || v.Digests != nil || !strings.Contains(v.Error, "manifest") {
		t.Errorf("a tampered disk: %+v", v)
	}
	if r.Hashes.Archive.Digests["md5"] != sums(t, bad.ova)["md5"] {
		t.Errorf("a tampered disk's archive: %v", r.Hashes.Archive)
	}

	// Usage errors.
	if code, out := runOvfmount(t, "verify", "--disks", "--hash", "md5,sha512", archive); code != 2 || !strings.Contains(out, `unknown hash algorithm "sha512"`) {
		t.Errorf("an unknown algorithm: exit %d, %q", code, out)
	}
	if code, out := runOvfmount(t, "verify", "--hash", "md5", archive); code != 2 || !strings.Contains(out, "need --disks") {
		t.Errorf("--hash without --disks: exit %d, %q", code, out)
	}
}
