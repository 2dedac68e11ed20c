package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchDiskHash measures `ovfmount verify --disks --hash md5,sha1,sha256`
// of the bench VMDK OVA against the pipelines an examiner would run for
// the same three digests of the decoded disk: qemu's decoder streamed
// through tee into md5sum, sha1sum and sha256sum at once (nbdcopy out of
// qemu-nbd, since qemu-img convert cannot write a pipe: given "-" it
// writes a file of that name), and qemu-img convert to a raw file, then
// the same tee over the file. Every run's digests are compared, so a
// fast wrong answer fails the bench.
func benchDiskHash(r *report) error {
	heading("verify --disks: md5, sha1 and sha256 of a 4 GiB streamOptimized VMDK's decoded disk")
	img, archive, size, err := benchVMDKOVA()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(*work, "diskhash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var want map[string]string
	check := func(who string, got map[string]string) error {
		if want == nil {
			want = got
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: digests %v, others gave %v", who, got, want)
		}
		return nil
	}
	ovfmount := func() (float64, error) {
		start := time.Now()
		out, err := exec.Command(*binary, "verify", "--disks", "--hash", "md5,sha1,sha256", "--json", archive).Output()
		secs := time.Since(start).Seconds()
		// The bench OVA is a bare tar of the disk: no descriptor, no
		// manifest, so verify's verdict fails (exit 1) while the digests
		// are all there, reported unverified.
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
			return 0, fmt.Errorf("ovfmount verify --disks: %v", err)
		}
		var rep struct {
			Hashes struct {
				Views []struct {
					Path    string            `json:"path"`
					Digests map[string]string `json:"digests"`
					Error   string            `json:"error"`
				} `json:"views"`
			} `json:"hashes"`
		}
		if err := json.Unmarshal(out, &rep); err != nil || len(rep.Hashes.Views) != 1 {
			return 0, fmt.Errorf("ovfmount verify --disks: no view's digests in %.300s (%v)", out, err)
		}
		v := rep.Hashes.Views[0]
		if v.Error != "" {
			return 0, fmt.Errorf("ovfmount verify --disks: %s: %s", v.Path, v.Error)
		}
		return secs, check("ovfmount", v.Digests)
	}
	// tee into named pipes, and wait for every hash to finish: bash does
	// not wait for >(...) process substitutions.
	tee := func(src string) string {
		return fmt.Sprintf(`set -e -o pipefail; d=%s; rm -f $d/*; mkfifo $d/a $d/b
md5sum < $d/a > $d/md5 & p1=$!; sha1sum < $d/b > $d/sha1 & p2=$!
%s | tee $d/a $d/b | sha256sum > $d/sha256; wait $p1 $p2`, tmp, src)
	}
	pipeline := func(who, script string) func() (float64, error) {
		return func() (float64, error) {
			start := time.Now()
			if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
				return 0, fmt.Errorf("%s: %v\n%s", who, err, out)
			}
			secs := time.Since(start).Seconds()
			got := map[string]string{}
			for _, alg := range []string{"md5", "sha1", "sha256"} {
				b, err := os.ReadFile(filepath.Join(tmp, alg))
				if err != nil || len(strings.Fields(string(b))) == 0 {
					return 0, fmt.Errorf("%s: no %s digest (%v)", who, alg, err)
				}
				got[alg] = strings.Fields(string(b))[0]
			}
			return secs, check(who, got)
		}
	}
	runs := []func() (float64, error){ovfmount}
	var labels []string
	if _, err := exec.LookPath("nbdcopy"); err == nil {
		if _, err := exec.LookPath("qemu-nbd"); err == nil {
			runs = append(runs, pipeline("nbdcopy", tee(fmt.Sprintf("nbdcopy -- [ qemu-nbd -r -f vmdk %s ] -", img))))
			labels = append(labels, "nbdcopy from qemu-nbd | tee >(md5sum) >(sha1sum) | sha256sum")
		}
	}
	raw := filepath.Join(*work, "diskhash-convert.raw")
	defer os.Remove(raw)
	runs = append(runs, pipeline("qemu-img convert", fmt.Sprintf("trap 'rm -f %s' EXIT; qemu-img convert -f vmdk -O raw %s %s\n%s",
		raw, img, raw, tee("cat "+raw))))
	labels = append(labels, "qemu-img convert -O raw to a file, then tee | sums")
	secs, err := inTurns(turns, []string{archive, img}, runs...)
	if err != nil {
		return err
	}
	r.add("diskhash", "ovfmount verify --disks --hash md5,sha1,sha256", mbps(size, secs[0]), fmt.Sprintf("%.1f s", secs[0]))
	for i, l := range labels {
		r.add("diskhash", l, mbps(size, secs[i+1]), fmt.Sprintf("%.1f s, %s", secs[i+1], ratio(secs[i+1], secs[0], "ovfmount/peer (target 2x)")))
	}
	if len(labels) == 1 {
		r.add("diskhash", "nbdcopy or qemu-nbd", "n/a", "not installed: no streaming peer")
	}
	fmt.Println()
	return nil
}
