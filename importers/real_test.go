package importers_test

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/ovfmount/ovfmount/importers"
	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/internal/testutil"
)

// expectRules checks that the findings break exactly these rules, each
// for exactly these targets with these severities.
func expectRules(t *testing.T, fs []importers.Finding, want map[string]sev) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range fs {
		seen[f.Rule] = true
	}
	for r := range seen {
		if _, ok := want[r]; !ok {
			t.Errorf("unexpected rule %s:\n%s", r, dump(fs))
		}
	}
	var ids []string
	for r := range want {
		ids = append(ids, r)
	}
	sort.Strings(ids)
	for _, r := range ids {
		expect(t, fs, r, want[r])
	}
}

// TestRealArchives checks the real OVAs and unpacked packages other
// projects' tests ship. Each expected finding is written down with why the
// package earns it.
func TestRealArchives(t *testing.T) {
	dir := testutil.RealFixtures(t)
	for _, c := range []struct {
		path string
		want map[string]sev
	}{
		// OpenStack Glance's test OVA, made with VirtualBox: its
		// "testserver-disk1.vmdk" is 512 bytes of raw data, not a VMDK,
		// which every importer that reads only VMDK refuses and Proxmox
		// refuses for the name; the descriptor claims 8 GiB for it; and
		// its hardware family is "virtualbox-2.2", which vSphere does not
		// know. virt-v2v (qemu reads raw) and oVirt take it.
		{"openstack-glance/testserver.ova", map[string]sev{
			"capacity-mismatch": {dsp: F},
			"disk-format":       {vs: F, vbox: F, pve: F},
			"hardware-version":  {vs: F},
		}},
		// Its descriptor is not an OVF envelope (<OpenTag>): nothing can
		// import it.
		{"openstack-glance/testserver-bad-ovf.ova", map[string]sev{
			"xml-invalid": {vs: F, vbox: F, v2v: F, pve: F, ovrt: F, dsp: F},
		}},
		// The descriptor names testserver-disk1.vmdk, which is absent; the
		// family is virtualbox-2.2 as above.
		{"openstack-glance/testserver-no-disk.ova", map[string]sev{
			"hardware-version":  {vs: F},
			"reference-missing": {vs: W, vbox: F, v2v: F, pve: F, ovrt: F, dsp: F},
		}},
		// No .ovf at all.
		{"openstack-glance/testserver-no-ovf.ova", map[string]sev{
			"descriptor-missing": {vs: F, vbox: F, v2v: F, pve: F, ovrt: F, dsp: F},
		}},
		// KubeVirt CDI's fake.ova: the manifest (disk1.mf, SHA1) is the
		// last member, after the disk, which OVF 1.0 does not allow; it
		// is SHA1, which newer vCenters refuse; the disk is a 64 KiB
		// monolithicSparse VMDK whose header says 10240 bytes while the
		// descriptor says 50 GiB and ovf:size 7804077568; the family is
		// vmx-10 (ESXi 5.5).
		{"kubevirt-containerized-data-importer/fake.ova", map[string]sev{
			"capacity-mismatch":   {dsp: F},
			"hardware-version":    {vs: W},
			"manifest-algorithm":  {vs: W},
			"manifest-cert-order": {vs: W, dsp: F},
			"size-mismatch":       {dsp: F},
			"vmdk-subformat":      {vs: W},
		}},
		// COT's test.tar is a tar of a manifest and a text file, no
		// descriptor: COT uses it to test its refusal of such a package.
		{"glennmatthews-cot/test.tar", map[string]sev{
			"descriptor-missing": {vs: F, vbox: F, v2v: F, pve: F, ovrt: F, dsp: F},
		}},
		// COT's unpacked package: a SHA1 manifest (vSphere warns), vmx-07
		// and vmx-08 (ESXi 4.0), and a References entry for
		// sample_cfg.txt, which is not beside it (not a disk: only the
		// spec fails it, vSphere's answer is unknown).
		{"glennmatthews-cot/input.ovf", map[string]sev{
			"hardware-version":   {vs: W},
			"manifest-algorithm": {vs: W},
			"reference-missing":  {vs: W, dsp: F},
		}},
		// A VirtualBox OVF 2.0 export: the envelope/2 namespace that
		// virt-v2v, Proxmox and oVirt do not read, and the virtualbox-2.2
		// family vSphere refuses.
		{"glennmatthews-cot/ubuntu.2.0.ovf", map[string]sev{
			"hardware-version": {vs: F},
			"ovf-version":      {v2v: F, pve: F, ovrt: F},
		}},
	} {
		t.Run(c.path, func(t *testing.T) {
			expectRules(t, check(t, filepath.Join(dir, c.path), importers.Options{}), c.want)
		})
	}
}

// TestRealDescriptors packs each real descriptor alone into an OVA (its
// files are not in the fixtures, so every one it references is missing,
// which every target refuses) and checks what else each one earns.
func TestRealDescriptors(t *testing.T) {
	dir := testutil.RealFixtures(t)
	missing := sev{vs: W, vbox: F, v2v: F, pve: F, ovrt: F, dsp: F}
	for _, c := range []struct {
		path string
		want map[string]sev
	}{
		// Cisco CSR1000v: vmx-08 to vmx-11 families, so vSphere needs
		// ESXi 5.0 (a warning: no release named).
		{"glennmatthews-cot/csr1000v.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"glennmatthews-cot/csr1000v_2017.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		// An envelope/3 namespace, which DSP0243 does not define: no
		// importer reads it.
		{"glennmatthews-cot/ersatz_ovf_3.0.ovf", map[string]sev{"ovf-version": {v2v: F, pve: F, ovrt: F, dsp: F}}},
		// COT's "invalid" descriptor breaks COT's own rules (a CD-ROM
		// drive whose parent reference is invalid), which no rule here
		// checks; as a package it only lacks its files.
		{"glennmatthews-cot/invalid.ovf", map[string]sev{"reference-missing": missing}},
		{"glennmatthews-cot/iosv.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		// No References, no system: nothing to refuse.
		{"glennmatthews-cot/minimal.ovf", map[string]sev{}},
		// OVF 0.9 (VMware's pre-standard namespace): the 1.x-only
		// importers find nothing in it; DSP0243 warns.
		{"glennmatthews-cot/v0.9.ovf", map[string]sev{"hardware-version": {vs: W}, "ovf-version": {v2v: F, pve: F, ovrt: F, dsp: W}, "reference-missing": missing}},
		{"glennmatthews-cot/vmware.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/NostalgiaCert.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/VM_OVF09.ovf", map[string]sev{"hardware-version": {vs: W}, "ovf-version": {v2v: F, pve: F, ovrt: F, dsp: W}, "reference-missing": missing}},
		{"vmware-govmomi/bitnami-tomcatstack-8.0.36-x86_64.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/deployment-configs.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		// ovf:compression="gzip": Proxmox imports the .gz as it is.
		{"vmware-govmomi/gzip_compression.ovf", map[string]sev{"compression": {pve: F}, "hardware-version": {vs: W}, "reference-missing": missing}},
		// govmomi's "invalid" descriptor lacks a VirtualSystem's ovf:id, a
		// schema rule this check does not validate (it is not among the
		// rules), and references nothing: no finding.
		{"vmware-govmomi/invalid.ovf", map[string]sev{}},
		{"vmware-govmomi/nvapp-disks-12.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/photon.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/trivial.ovf", map[string]sev{}},
		{"vmware-govmomi/vApp_with_2vms.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		{"vmware-govmomi/vCD_vApp_OVF.ovf", map[string]sev{"hardware-version": {vs: W}, "reference-missing": missing}},
		// XenServer's family, "xen-3.0-unknown", names no vmx-NN: vSphere
		// refuses it.
		{"xenserver-xenadmin/sample_app.ovf", map[string]sev{"hardware-version": {vs: F}, "reference-missing": missing}},
	} {
		t.Run(c.path, func(t *testing.T) {
			b := readFixture(t, filepath.Join(dir, "descriptors", c.path))
			out := filepath.Join(t.TempDir(), "packed.ova")
			testpkg.WriteTar(t, out, testpkg.M(testpkg.File{Name: filepath.Base(c.path), Data: b}))
			expectRules(t, check(t, out, importers.Options{}), c.want)
		})
	}
	// Every descriptor of the fixtures is in the table above.
	all, _ := filepath.Glob(filepath.Join(dir, "descriptors", "*", "*.ovf"))
	if len(all) != 20 {
		t.Errorf("%d descriptors in the fixtures, the table covers 20: %v", len(all), all)
	}
}
