package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

type infoJSON struct {
	OVFVersion     string `json:"ovfVersion"`
	VirtualSystems []struct {
		CPUs        int   `json:"cpus"`
		MemoryBytes int64 `json:"memoryBytes"`
		Product     struct {
			Name, Vendor, Version string
		} `json:"product"`
		Disks []string `json:"disks"`
		NICs  []struct {
			Network string `json:"network"`
		} `json:"nics"`
	} `json:"virtualSystems"`
	Disks []struct {
		ID            string `json:"id"`
		File          string `json:"file"`
		Format        string `json:"format"`
		CapacityBytes int64  `json:"capacityBytes"`
		RawView       string `json:"rawView"`
	} `json:"disks"`
	Files []struct {
		Href       string   `json:"href"`
		StoredSize int64    `json:"storedSize"`
		Members    []string `json:"members"`
	} `json:"files"`
	Networks []struct {
		Name string `json:"name"`
	} `json:"networks"`
	Signature struct {
		Status string `json:"status"`
	} `json:"signature"`
	Warnings []string `json:"warnings"`
}

func runInfo(t *testing.T, path string) infoJSON {
	t.Helper()
	code, out := runOvfmount(t, "info", "--json", path)
	if code != 0 {
		t.Fatalf("info: exit %d\n%s", code, out)
	}
	var r infoJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("info --json printed %q: %v", out, err)
	}
	return r
}

func TestInfoSample(t *testing.T) {
	ova := sampleOVA(t)
	r := runInfo(t, ova)
	if r.OVFVersion != "1.0" || len(r.VirtualSystems) != 1 || len(r.Disks) != 1 || len(r.Files) != 1 {
		t.Fatalf("shape: %+v", r)
	}
	s := r.VirtualSystems[0]
	if s.CPUs != 2 || s.MemoryBytes != 2<<30 || s.Product.Name != "ovfmount sample appliance" || len(s.NICs) != 1 || s.NICs[0].Network != "VM Network" {
		t.Errorf("system: %+v", s)
	}
	d := r.Disks[0]
	if d.File != "disk1.vmdk" || d.CapacityBytes != 64<<20 || !strings.HasPrefix(d.Format, "vmdk streamOptimized") || d.RawView != "disks/disk1.vmdk.raw" {
		t.Errorf("disk: %+v", d)
	}
	if r.Files[0].Members[0] != "disk1.vmdk" || r.Networks[0].Name != "VM Network" || r.Signature.Status != "absent" || len(r.Warnings) != 0 {
		t.Errorf("files %+v, networks %+v, signature %+v, warnings %v", r.Files, r.Networks, r.Signature, r.Warnings)
	}
	// The raw view info announces is where the mount puts it.
	m := mountArchive(t, ova)
	if _, err := os.Stat(m.path(d.RawView)); err != nil {
		t.Errorf("info said %s, the mount has: %v", d.RawView, err)
	}
	// Human output names the essentials on aligned lines.
	code, human := runOvfmount(t, "info", ova)
	for _, want := range []string{"2 CPU(s), 2.0 GiB memory", "disk1.vmdk  vmdk streamOptimized", "disks/disk1.vmdk.raw", "Signature   absent"} {
		if code != 0 || !strings.Contains(human, want) {
			t.Errorf("info output lacks %q:\n%s", want, human)
		}
	}
}

func TestInfoRealOVAs(t *testing.T) {
	fx := testutil.RealFixtures(t)
	r := runInfo(t, filepath.Join(fx, "kubevirt-containerized-data-importer/fake.ova"))
	if len(r.VirtualSystems) != 1 || r.VirtualSystems[0].CPUs != 1 || r.VirtualSystems[0].MemoryBytes != 1<<30 {
		t.Errorf("fake.ova systems: %+v", r.VirtualSystems)
	}
	if len(r.Disks) != 1 || r.Disks[0].CapacityBytes != 10240 || !strings.HasPrefix(r.Disks[0].Format, "vmdk monolithicSparse") {
		t.Errorf("fake.ova disk: %+v", r.Disks)
	}
	joined := strings.Join(r.Warnings, "\n")
	for _, want := range []string{"ovf:size says", "ovf:capacity is 53687091200 bytes, the image's header says 10240", "no entry for the descriptor"} {
		if !strings.Contains(joined, want) {
			t.Errorf("fake.ova warnings lack %q:\n%s", want, joined)
		}
	}
	r = runInfo(t, filepath.Join(fx, "openstack-glance/testserver.ova"))
	if len(r.Disks) != 1 || r.Disks[0].Format != "raw" || r.Disks[0].CapacityBytes != 512 { // a 4-byte raw disk, padded to a sector as qemu-img does
		t.Errorf("testserver.ova disk: %+v", r.Disks)
	}
	r = runInfo(t, filepath.Join(fx, "openstack-glance/testserver-no-ovf.ova"))
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "no descriptor") {
		t.Errorf("a package without a descriptor: %v", r.Warnings)
	}
	r = runInfo(t, filepath.Join(fx, "openstack-glance/testserver-bad-ovf.ova"))
	if len(r.Warnings) == 0 {
		t.Error("a malformed descriptor must be reported")
	}
	if code, out := runOvfmount(t, "info", filepath.Join(fx, "openstack-glance/testserver-not-tar.ova")); code != 2 || !strings.Contains(out, "not an OVA") {
		t.Errorf("not a tar: exit %d, %q", code, out)
	}
}
