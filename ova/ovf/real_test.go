package ovf

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

// wantSystem and wantDisk hold values read from the fixtures by hand.
type wantSystem struct {
	id        string
	cpus      int
	mem       int64
	nics      int // all NIC items, whatever their configuration
	activeNIC int // NICs in the default configuration
	disks     int // disk attachments
	// sizes is what each deployment option gives the system, in
	// DeploymentOptionSection order; nil when there is none.
	sizes []Sizing
}

type wantDisk struct {
	id       string
	capacity int64
	href     string // "" when the disk has no (resolvable) file
}

type realCase struct {
	file    string // relative to the fixtures folder; "a.ova!m.ovf" for an archive member
	err     error  // for malformed descriptors: the sentinel Parse must wrap
	version string
	systems []wantSystem
	disks   []wantDisk
	// warns are substrings of the expected warnings, in order; a warning
	// not listed fails the test, so a new false alarm cannot slip in.
	warns []string
	check func(t *testing.T, e *Envelope)
}

// csrSizes are the four profiles of both CSR 1000V descriptors.
var csrSizes = []Sizing{{"1CPU-4GB", 1, 4 * GiB}, {"2CPU-4GB", 2, 4 * GiB}, {"4CPU-4GB", 4, 4 * GiB}, {"4CPU-8GB", 4, 8 * GiB}}

var realCases = []realCase{
	{
		file: "descriptors/glennmatthews-cot/csr1000v.ovf", version: "1.0",
		// Default 1CPU-4GB: the unconditional CPU (1) and memory (4096 MiB) items.
		// The other profiles override the CPU item (InstanceID 1) and, for
		// 4CPU-8GB, the memory item (2).
		systems: []wantSystem{{id: "com.cisco.csr1000v", cpus: 1, mem: 4096 * MiB, nics: 3, activeNIC: 3, disks: 1, sizes: csrSizes}},
		disks:   []wantDisk{{"vmdisk1", 1 * GiB, "input.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			vs := e.Systems[0]
			eq(t, "default configuration", e.DefaultConfiguration, "1CPU-4GB")
			eq(t, "deployment options", len(e.DeploymentOptions), 4)
			eq(t, "product", vs.Product.Vendor, "Cisco Systems, Inc.")
			eq(t, "product class", vs.Product.Class, "com.cisco.csr1000v")
			eq(t, "cdroms", len(vs.CDROMs), 2)
			eq(t, "cdrom file", vs.CDROMs[0].FileID, "csr1000v.iso")
			eq(t, "disk controller", vs.Disks[0].ControllerType, "scsi")
			eq(t, "properties", len(vs.Properties), 27)
			eq(t, "password property", vs.Properties[3].Key+"/"+boolStr(vs.Properties[3].Password), "login-password/true")
			eq(t, "category", vs.Properties[1].Category, "1. Bootstrap Properties")
		},
	},
	{
		file: "descriptors/glennmatthews-cot/csr1000v_2017.ovf", version: "1.0",
		systems: []wantSystem{{id: "com.cisco.csr1000v", cpus: 1, mem: 4096 * MiB, nics: 3, activeNIC: 3, disks: 1, sizes: csrSizes}},
		disks:   []wantDisk{{"vmdisk1", 1 * GiB, "input.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "firmware", e.Systems[0].Firmware, "bios")
			eq(t, "os type", e.Systems[0].OS.VMwareType, "other3xLinux64Guest")
		},
	},
	{
		file: "descriptors/glennmatthews-cot/ersatz_ovf_3.0.ovf", version: "3.0",
		systems: []wantSystem{{id: "x"}},
		warns:   []string{"OVF 3.0 is newer than this reader knows"},
	},
	{
		// Schema-invalid but well-formed: a lenient reader reads it, and
		// every inconsistency is a warning. Default configuration is the
		// first (myprofile), which has the 3-CPU item and the NIC but not
		// the memory item.
		file: "descriptors/glennmatthews-cot/invalid.ovf", version: "1.0",
		// The other profile has only the memory item, without units.
		systems: []wantSystem{{id: "x", cpus: 3, mem: 0, nics: 1, activeNIC: 1, disks: 1, sizes: []Sizing{
			{"myprofile", 3, 0}, {"howlongofaprofilenamecanweusehere", 0, 1 * MiB},
		}}},
		disks: []wantDisk{
			{"input.vmdk", 1 * GiB, "this_is_a_really_long_filename_for_a_disk.vmdk"},
			{"flash2", 128 * MiB, ""},
		},
		warns: []string{
			`memory item "5" has no AllocationUnits; read as MiB`,
			`HostResource "nonexistent.vmdk" is not an ovf:/disk/ or ovf:/file/ reference`,
			`rasd:Parent "27", which is not a storage controller`,
			`Disk "flash2": fileRef "flash2" names no File`,
			`Disk "input.vmdk" is not attached`,
			`Disk "flash2" is not attached`,
		},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "default configuration", e.DefaultConfiguration, "myprofile")
			eq(t, "property class", e.Systems[0].Properties[0].Class, "net.e-dad")
		},
	},
	{
		// Default 1CPU-384MB-2NIC: 2 of the 16 NICs; flash2 has no file.
		file: "descriptors/glennmatthews-cot/iosv.ovf", version: "1.0",
		// The other profiles override the memory item (InstanceID 2).
		systems: []wantSystem{{id: "com.cisco.iosv", cpus: 1, mem: 384 * MiB, nics: 16, activeNIC: 2, disks: 2, sizes: []Sizing{
			{"1CPU-384MB-2NIC", 1, 384 * MiB}, {"1CPU-1GB-8NIC", 1, 1 * GiB}, {"1CPU-3GB-10NIC", 1, 3 * GiB}, {"1CPU-3GB-16NIC", 1, 3 * GiB},
		}}},
		disks: []wantDisk{
			{"flash2", 128 * MiB, ""},
			{"vios-adventerprisek9-m.vmdk", 1073741824, "input.vmdk"},
		},
	},
	{
		file: "descriptors/glennmatthews-cot/minimal.ovf", version: "1.0",
		systems: []wantSystem{{id: "x"}},
	},
	{
		file: "descriptors/glennmatthews-cot/v0.9.ovf", version: "0.9",
		systems: []wantSystem{{id: "v0.9", cpus: 1, mem: 8192 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 1073741824, "input.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			vs := e.Systems[0]
			eq(t, "os id", vs.OS.ID, 107)
			eq(t, "os type", vs.OS.VMwareType, "other26xLinux64Guest")
			eq(t, "annotation", vs.Annotation, "Hello world! This is a version 0.9 OVF.\n\nAre you still reading this?")
			eq(t, "eulas", len(vs.EULAs), 1)
			eq(t, "eula start", strings.HasPrefix(vs.EULAs[0], "Licensing text, oh licensing text!"), true)
			eq(t, "network", e.Networks[0].Name, "bridged")
			eq(t, "cdrom controller", vs.CDROMs[0].ControllerType, "ide")
			eq(t, "hardware family", vs.HardwareFamily, "vmx-04")
		},
	},
	{
		file: "descriptors/glennmatthews-cot/vmware.ovf", version: "1.0",
		systems: []wantSystem{{id: "vmw", cpus: 2, mem: 1536 * MiB, nics: 4, activeNIC: 4, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 1 * GiB, "input.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "populated size", e.Disks[0].PopulatedSize, int64(293011456))
			eq(t, "os version", e.Systems[0].OS.Version, "6")
		},
	},
	{
		// VirtualCenter 2008: OVF 1.0 namespace with 0.9-style sections,
		// and a HostResource written ovf://disk/.
		file: "descriptors/vmware-govmomi/NostalgiaCert.ovf", version: "1.0",
		systems: []wantSystem{{id: "Nostalgia", cpus: 1, mem: 16 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 107373568, "NostalgiaCert-disk1.vmdk"}},
		warns:   []string{`HostResource "ovf://disk/vmdisk1" read as ovf:/disk/vmdisk1`},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "annotation", e.Systems[0].Annotation, "A great collection of old favorites")
			eq(t, "attached disk", e.Systems[0].Disks[0].DiskID, "vmdisk1")
		},
	},
	{
		file: "descriptors/vmware-govmomi/VM_OVF09.ovf", version: "0.9",
		systems: []wantSystem{{id: "ubuntu-name", cpus: 1, mem: 256 * MiB, nics: 1, activeNIC: 1, disks: 2}},
		disks:   []wantDisk{{"system", 2147483648, "system.vmdk"}, {"data1", 2147483648, "data1.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			vs := e.Systems[0]
			eq(t, "product", vs.Product.Name, "ubuntu-name")
			eq(t, "full version (0.9 spelling)", vs.Product.FullVersion, "1.0.0.0 alpha")
			eq(t, "os", vs.OS.Description, "Ubuntu Linux 8.04.1")
			eq(t, "eula", vs.EULAs, []string(nil))
		},
	},
	{
		file: "descriptors/vmware-govmomi/bitnami-tomcatstack-8.0.36-x86_64.ovf", version: "1.0",
		systems: []wantSystem{{id: "bitnami-tomcatstack", cpus: 1, mem: 1024 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 17 * GiB, "bitnami-tomcatstack-8.0.36-2-linux-ubuntu-14.04-x86_64-disk1.vmdk"}},
	},
	{
		// ovf:default="true" on "large": 8 CPUs, 8192 MiB, three disks.
		file: "descriptors/vmware-govmomi/deployment-configs.ovf", version: "1.0",
		// Each configuration has its own CPU and memory items, as the
		// fixture's opening comment says.
		systems: []wantSystem{{id: "deployment-configs-vm", cpus: 8, mem: 8192 * MiB, nics: 1, activeNIC: 1, disks: 6, sizes: []Sizing{
			{"small", 2, 2 * GiB}, {"medium", 4, 4 * GiB}, {"large", 8, 8 * GiB},
		}}},
		disks: []wantDisk{
			{"vmdisk_small_1", 1 * GiB, "system-and-model-small.vmdk"},
			{"vmdisk_med_1", 2 * GiB, "system-and-model-medium.vmdk"},
			{"vmdisk_med_2", 2 * GiB, ""},
			{"vmdisk_large_1", 4 * GiB, "system-large.vmdk"},
			{"vmdisk_large_2", 4 * GiB, "model-large.vmdk"},
			{"vmdisk_large_3", 4 * GiB, ""},
		},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "default configuration", e.DefaultConfiguration, "large")
			active := 0
			for _, d := range e.Systems[0].Disks {
				if d.Active {
					active++
				}
			}
			eq(t, "active disks", active, 3)
			eq(t, "property configuration", e.Systems[0].Properties[1].Configuration, "small")
		},
	},
	{
		// The disk's SCSI controller (InstanceId 8) comes after the disk.
		file: "descriptors/vmware-govmomi/gzip_compression.ovf", version: "1.0",
		systems: []wantSystem{{id: "PTC01_VM", disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 329197568, "valid_disk_gzip.vmdk.gz"}},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "compression", e.Files[0].Compression, "gzip")
			eq(t, "controller", e.Systems[0].Disks[0].ControllerType, "scsi")
		},
	},
	{
		// Its one fault, a VirtualSystem without ovf:id, leaves the model
		// intact: a warning, not an error.
		file: "descriptors/vmware-govmomi/invalid.ovf", version: "1.0",
		systems: []wantSystem{{id: ""}},
		warns:   []string{`VirtualSystem "Test System" has no ovf:id`},
	},
	{
		file: "descriptors/vmware-govmomi/nvapp-disks-12.ovf", version: "1.0",
		systems: []wantSystem{{id: "web", cpus: 1, mem: 256 * MiB, disks: 12}},
		disks: func() []wantDisk {
			var d []wantDisk
			for i := 1; i <= 12; i++ {
				d = append(d, wantDisk{"vmdisk" + itoa(i), 4294967296, "disks/disk" + itoa(i) + ".vmdk"})
			}
			return d
		}(),
	},
	{
		file: "descriptors/vmware-govmomi/photon.ovf", version: "1.0",
		systems: []wantSystem{{id: "111378-Photon-1.0-Rev2-64-Open-VM-Tools-HW13", cpus: 1, mem: 2048 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 16 * GiB, "photon-disk1.vmdk"}},
	},
	{
		file: "descriptors/vmware-govmomi/trivial.ovf", version: "1.0",
		systems: []wantSystem{{id: "vs1"}},
	},
	{
		file: "descriptors/vmware-govmomi/vApp_with_2vms.ovf", version: "1.0",
		systems: []wantSystem{
			{id: "sql2k5-win-2k3-32-ent-sp2-ovf", cpus: 1, mem: 1024 * MiB, nics: 1, activeNIC: 1, disks: 1},
			{id: "centos-5.5-32-esx-qa", cpus: 1, mem: 256 * MiB, nics: 1, activeNIC: 1, disks: 1},
		},
		disks: []wantDisk{
			{"vmdisk-8d158857-e2a0-4082-93bd-a2d154fd9a1d-2000", 4 * GiB, "vApp_with_2vms-disk1.vmdk"},
			{"vmdisk-1e592958-26a9-4099-ba4f-ccdd6ad36335-2000", 10 * GiB, "vApp_with_2vms-disk2.vmdk"},
		},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "path", strings.Join(e.Systems[1].Path, "/"), "sql2k5-win-2k3-32-ent-sp2-ovf")
			eq(t, "collections", len(e.Collections), 1)
			// ovftool gave the vApp the id of its first VM.
			c := e.Collections[0]
			eq(t, "vApp name", c.Name, "sql2k5-win-2k3-32-ent-sp2-ovf")
			eq(t, "vApp members", c.Members, []string{"sql2k5-win-2k3-32-ent-sp2-ovf", "centos-5.5-32-esx-qa"})
			eq(t, "vApp startup", c.Startup, []StartupItem{
				{ID: "sql2k5-win-2k3-32-ent-sp2-ovf", Order: 0, StartAction: "powerOn", StopAction: "powerOff"},
				{ID: "centos-5.5-32-esx-qa", Order: 0, StartAction: "powerOn", StopAction: "powerOff"},
			})
			eq(t, "vApp resources", c.Resources, []Allocation(nil))
			// vcloud:Configuration inside vcloud:NetworkConfigSection is
			// not a deployment option.
			eq(t, "deployment options", len(e.DeploymentOptions), 0)
		},
	},
	{
		file: "descriptors/vmware-govmomi/vCD_vApp_OVF.ovf", version: "1.0",
		systems: []wantSystem{
			{id: "s-xp", cpus: 2, mem: 512 * MiB, nics: 2, activeNIC: 2, disks: 2},
			{id: "vCD_scratch_vm", cpus: 1, mem: 64 * MiB, nics: 1, activeNIC: 1, disks: 1},
		},
		disks: []wantDisk{
			{"vmdisk-2130172404-2000", 2 * GiB, "vm-2130172404-disk-0.vmdk"},
			{"vmdisk-2066209010-2000", 1536 * MiB, "vm-2066209010-disk-0.vmdk"},
			{"vmdisk-2066209010-2001", 2 * GiB, "vm-2066209010-disk-1.vmdk"},
		},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "collection", e.Collections[0].ID, "vCD_vApp")
			c := e.Collections[0]
			eq(t, "vApp name", c.Name, "vCD_vApp")
			eq(t, "vApp members", c.Members, []string{"s-xp", "vCD_scratch_vm"})
			// vCloud Director lists the startup items in another order
			// than the systems, every one at order 0: all start together.
			eq(t, "vApp startup", c.Startup, []StartupItem{
				{ID: "vCD_scratch_vm", Order: 0, StartAction: "powerOn", StopAction: "powerOff"},
				{ID: "s-xp", Order: 0, StartAction: "powerOn", StopAction: "powerOff"},
			})
			eq(t, "os type", e.Systems[0].OS.VMwareType, "winXPProGuest")
		},
	},
	{
		// XenCenter: a false encoding="utf-16" on ASCII bytes is read as
		// UTF-8 with a warning; the disk is a ResourceType 19 item. XML
		// reads its CRLF line ends as LF.
		file: "descriptors/xenserver-xenadmin/sample_app.ovf", version: "1.0",
		systems: []wantSystem{{id: "68f97bfd-1a03-422f-97d5-db5046c20b78", cpus: 1, mem: 64 * MiB, disks: 1}},
		disks:   []wantDisk{{"64891892-169e-470b-9779-368ee4ad2c15", 10485760, "5936bc8c-20ae-4052-9083-b8e5b96dc683.vhd"}},
		warns:   []string{`declares encoding "utf-16" but its bytes are not UTF-16`},
		check: func(t *testing.T, e *Envelope) {
			// XenCenter's StartupSection sits in the Envelope; with one
			// system and no VirtualSystemCollection there is no vApp.
			eq(t, "collections", len(e.Collections), 0)
			eq(t, "eula", e.Systems[0].EULAs, []string{"this is my eula document\n\nblah blah blah"})
			eq(t, "os id", e.Systems[0].OS.ID, 0)
		},
	},
	{
		file: "glennmatthews-cot/input.ovf", version: "1.0",
		systems: []wantSystem{{id: "test", cpus: 4, mem: 4096 * MiB, nics: 3, activeNIC: 3, disks: 1, sizes: []Sizing{
			{"1CPU-1GB-1NIC", 1, 1 * GiB}, {"2CPU-2GB-1NIC", 2, 2 * GiB}, {"4CPU-4GB-3NIC", 4, 4 * GiB},
		}}},
		disks: []wantDisk{{"vmdisk1", 1 * GiB, "input.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			eq(t, "files", len(e.Files), 3)
			eq(t, "cdrom file", e.Systems[0].CDROMs[0].FileID, "file2")
			eq(t, "app url", e.Systems[0].Product.AppURL, "APPLICATION_URL")
		},
	},
	{
		file: "glennmatthews-cot/ubuntu.2.0.ovf", version: "2.0",
		systems: []wantSystem{{id: "ubuntu", cpus: 1, mem: 512 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 8589934592, "ubuntu.2.0-disk1.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			vs := e.Systems[0]
			eq(t, "StorageItem disk controller", vs.Disks[0].ControllerType, "sata")
			eq(t, "EthernetPortItem network", vs.NICs[0].Network, "NAT")
			eq(t, "EthernetPortItem name from Caption", vs.NICs[0].Name, "Ethernet adapter on 'NAT'")
			eq(t, "file size absent", e.Files[0].Size, int64(-1))
		},
	},
	{
		file: "openstack-glance/testserver.ova!testserver.ovf", version: "1.0",
		systems: []wantSystem{{id: "testserver", cpus: 1, mem: 512 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk2", 8589934592, "testserver-disk1.vmdk"}},
	},
	{
		file: "openstack-glance/testserver-no-disk.ova!testserver.ovf", version: "1.0",
		systems: []wantSystem{{id: "testserver", cpus: 1, mem: 512 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk2", 8589934592, "testserver-disk1.vmdk"}},
	},
	{
		// "<OpenTag> does not match <<ClosingTag>>": not an envelope.
		file: "openstack-glance/testserver-bad-ovf.ova!illegal-xml.ovf", err: ErrNotOVF,
	},
	{
		file: "kubevirt-containerized-data-importer/fake.ova!fake.ovf", version: "1.0",
		systems: []wantSystem{{id: "2K8R2EESP1_2_Medium", cpus: 1, mem: 1024 * MiB, nics: 1, activeNIC: 1, disks: 1}},
		disks:   []wantDisk{{"vmdisk1", 50 * GiB, "disk1.vmdk"}},
		check: func(t *testing.T, e *Envelope) {
			// The declared size is wrong for the packed disk; the model
			// reports what the descriptor says.
			eq(t, "declared size", e.Files[0].Size, int64(7804077568))
		},
	},
}

// TestRealDescriptors parses every descriptor in the fixtures and checks
// the values read from each file by hand.
func TestRealDescriptors(t *testing.T) {
	dir := testutil.RealFixtures(t)
	covered := map[string]bool{}
	for _, c := range realCases {
		covered[c.file] = true
		t.Run(c.file, func(t *testing.T) {
			data := loadFixture(t, dir, c.file)
			e, err := Parse(bytes.NewReader(data))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkEnvelope(t, e, c)
		})
	}
	// Every descriptor in the folder must have a row: a new fixture
	// without hand-read values fails here.
	var all []string
	err := filepath.WalkDir(filepath.Join(dir, "descriptors"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ovf") {
			all = append(all, p)
		}
		return err
	})
	if err != nil || len(all) == 0 {
		t.Fatalf("no descriptors found in the fixtures: %v", err)
	}
	cot, _ := filepath.Glob(filepath.Join(dir, "glennmatthews-cot", "*.ovf"))
	for _, p := range append(all, cot...) {
		rel, _ := filepath.Rel(dir, p)
		if !covered[filepath.ToSlash(rel)] {
			t.Errorf("%s has no row in realCases", rel)
		}
	}
}

func checkEnvelope(t *testing.T, e *Envelope, c realCase) {
	t.Helper()
	checkInvariants(t, e)
	eq(t, "version", e.Version, c.version)
	if len(e.Systems) != len(c.systems) {
		t.Fatalf("%d systems, want %d", len(e.Systems), len(c.systems))
	}
	for i, w := range c.systems {
		vs := e.Systems[i]
		eq(t, "system id", vs.ID, w.id)
		eq(t, w.id+" cpus", vs.CPUs, w.cpus)
		eq(t, w.id+" memory", vs.MemoryBytes, w.mem)
		eq(t, w.id+" nics", len(vs.NICs), w.nics)
		active := 0
		for _, n := range vs.NICs {
			if n.Active {
				active++
			}
		}
		eq(t, w.id+" active nics", active, w.activeNIC)
		eq(t, w.id+" disk attachments", len(vs.Disks), w.disks)
		eq(t, w.id+" configuration", vs.Configuration, e.DefaultConfiguration)
		eq(t, w.id+" by configuration", vs.ByConfiguration, w.sizes)
	}
	if len(e.Disks) != len(c.disks) {
		t.Fatalf("%d disks, want %d", len(e.Disks), len(c.disks))
	}
	hrefs := map[string]string{}
	for _, df := range e.DiskFiles() {
		hrefs[df.Disk.ID] = df.File.Href
	}
	for i, w := range c.disks {
		eq(t, "disk id", e.Disks[i].ID, w.id)
		eq(t, w.id+" capacity", e.Disks[i].Capacity, w.capacity)
		eq(t, w.id+" href", hrefs[w.id], w.href)
	}
	checkWarnings(t, e.Warnings, c.warns)
	if c.check != nil {
		c.check(t, e)
	}
}

// checkWarnings wants exactly the listed warnings, by substring, in order.
func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("warnings:\n  %s\nwant %d matching %q", strings.Join(got, "\n  "), len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

// loadFixture reads a fixture file, or a member of an OVA fixture named
// "archive.ova!member".
func loadFixture(t testing.TB, dir, name string) []byte {
	t.Helper()
	archive, member, inTar := strings.Cut(name, "!")
	f, err := os.Open(filepath.Join(dir, archive))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !inTar {
		data, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: member %s not found: %v", archive, member, err)
		}
		if h.Name == member {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}
