package ovf

import (
	"fmt"
	"strings"
	"testing"
)

// dialect says how one family of producers spells the same appliance.
type dialect struct {
	name    string
	root    string // the Envelope start tag
	close   string // the Envelope end tag
	el      func(name string) string
	section func(kind string) (open, close string)
	system  func(id string) (open, close string)
	items   func(rt int) (tag, prefix string) // element and field prefix per ResourceType
	idField string                            // InstanceID or InstanceId (0.9)
	extra   string                            // vendor extension elements inside the system
}

const (
	rasdNS  = `xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"`
	xsiNS   = `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`
	vendors = `xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vbox="http://www.virtualbox.org/ovf/machine" xmlns:ovirt="http://www.ovirt.org/ovf" xmlns:xenovf="http://schemas.citrix.com/ovf/envelope/1"`
)

func plain(name string) string      { return name }
func ovfEl(name string) string      { return "ovf:" + name }
func rasdItem(int) (string, string) { return "Item", "rasd" }

func namedSection(el func(string) string) func(string) (string, string) {
	return func(kind string) (string, string) { return "<" + el(kind) + ">", "</" + el(kind) + ">" }
}

func namedSystem(el func(string) string) func(string) (string, string) {
	return func(id string) (string, string) {
		return fmt.Sprintf(`<%s ovf:id=%q>`, el("VirtualSystem"), id), "</" + el("VirtualSystem") + ">"
	}
}

// typedSection writes OVF 0.9's <Section xsi:type="ovf:DiskSection_Type">.
func typedSection(el func(string) string) func(string) (string, string) {
	return func(kind string) (string, string) {
		return fmt.Sprintf(`<%s xsi:type="ovf:%s_Type">`, el("Section"), kind), "</" + el("Section") + ">"
	}
}

func typedSystem(el func(string) string) func(string) (string, string) {
	return func(id string) (string, string) {
		return fmt.Sprintf(`<%s ovf:id=%q xsi:type="ovf:VirtualSystem_Type">`, el("Content"), id), "</" + el("Content") + ">"
	}
}

var dialects = []dialect{
	{
		name:    "OVF 0.9 Section xsi:type",
		root:    `<ovf:Envelope xmlns:ovf="http://www.vmware.com/schema/ovf/1/envelope" ` + rasdNS + ` ` + xsiNS + ` ovf:version="0.9">`,
		close:   `</ovf:Envelope>`,
		el:      ovfEl,
		section: typedSection(ovfEl), system: typedSystem(ovfEl), items: rasdItem, idField: "InstanceId",
	},
	{
		name:    "OVF 1.0 default namespace",
		root:    `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ` + rasdNS + `>`,
		close:   `</Envelope>`,
		el:      plain,
		section: namedSection(plain), system: namedSystem(plain), items: rasdItem, idField: "InstanceID",
	},
	{
		name:    "OVF 1.0 ovf: prefix without default namespace (Cisco)",
		root:    `<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ` + rasdNS + `>`,
		close:   `</ovf:Envelope>`,
		el:      ovfEl,
		section: namedSection(ovfEl), system: namedSystem(ovfEl), items: rasdItem, idField: "InstanceID",
	},
	{
		name: "OVF 2.0 StorageItem and EthernetPortItem",
		root: `<Envelope ovf:version="2.0" xmlns="http://schemas.dmtf.org/ovf/envelope/2" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" ` + rasdNS +
			` xmlns:sasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData.xsd"` +
			` xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData.xsd">`,
		close:   `</Envelope>`,
		el:      plain,
		section: namedSection(plain), system: namedSystem(plain), idField: "InstanceID",
		items: func(rt int) (string, string) {
			switch rt {
			case rtDisk:
				return "StorageItem", "sasd"
			case rtEthernet:
				return "EthernetPortItem", "epasd"
			}
			return "Item", "rasd"
		},
	},
	{
		name:    "trailing-slash namespace (oVirt), xsi:type sections, disagreeing ovf:version",
		root:    `<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" ` + rasdNS + ` ` + xsiNS + ` ` + vendors + ` ovf:version="4.4.0.0">`,
		close:   `</ovf:Envelope>`,
		el:      ovfEl,
		section: typedSection(ovfEl), system: typedSystem(ovfEl), items: rasdItem, idField: "InstanceId",
	},
	{
		name:    "vendor extensions ignored",
		root:    `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ` + rasdNS + ` ` + vendors + `>`,
		close:   `</Envelope>`,
		el:      plain,
		section: namedSection(plain), system: namedSystem(plain), items: rasdItem, idField: "InstanceID",
		extra: `<vbox:Machine ovf:required="false"><Hardware><CPU count="8"/><Memory RAMSize="99"/></Hardware>` +
			`<StorageControllers><StorageController name="SATA"/></StorageControllers></vbox:Machine>` +
			`<ovirt:Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>64</rasd:VirtualQuantity></ovirt:Item>` +
			`<xenovf:VirtualSystemOtherConfigurationData Name="platform"><xenovf:Value>x</xenovf:Value></xenovf:VirtualSystemOtherConfigurationData>`,
	},
	{
		name:    "no namespace at all",
		root:    `<Envelope>`,
		close:   `</Envelope>`,
		el:      plain,
		section: namedSection(plain), system: namedSystem(plain), items: rasdItem, idField: "InstanceID",
	},
}

// build writes the same appliance in dialect d: one 4 GiB disk in a.vmdk on
// a SCSI controller, 2 CPUs, 512 MiB and one NIC on network "n".
func (d dialect) build() string {
	var b strings.Builder
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	item := func(rt int, fields ...string) {
		tag, px := d.items(rt)
		w("<", d.el(tag), ">")
		for i := 0; i+1 < len(fields); i += 2 {
			w("<", px, ":", fields[i], ">", fields[i+1], "</", px, ":", fields[i], ">")
		}
		w(fmt.Sprintf("<%s:ResourceType>%d</%s:ResourceType>", px, rt, px), "</", d.el(tag), ">")
	}
	w(`<?xml version="1.0" encoding="UTF-8"?>`, d.root)
	w("<", d.el("References"), `><`, d.el("File"), ` ovf:id="f1" ovf:href="a.vmdk" ovf:size="100"/></`, d.el("References"), ">")
	open, end := d.section("DiskSection")
	w(open, "<", d.el("Info"), "/><", d.el("Disk"), ` ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="4" ovf:capacityAllocationUnits="byte * 2^30"/>`, end)
	open, end = d.section("NetworkSection")
	w(open, "<", d.el("Network"), ` ovf:name="n"/>`, end)
	sopen, send := d.system("vm")
	w(sopen, "<", d.el("Name"), ">Appliance</", d.el("Name"), ">")
	open, end = d.section("VirtualHardwareSection")
	w(open)
	item(rtCPU, d.idField, "1", "Caption", "2 CPUs", "VirtualQuantity", "2")
	item(rtMemory, d.idField, "2", "AllocationUnits", "byte * 2^20", "VirtualQuantity", "512")
	item(rtSCSI, d.idField, "3", "ResourceSubType", "lsilogic")
	item(rtDisk, d.idField, "4", "HostResource", "ovf:/disk/d1", "Parent", "3", "AddressOnParent", "0")
	item(rtEthernet, d.idField, "5", "Connection", "n", "ResourceSubType", "E1000")
	w(end, d.extra, send, d.close)
	return b.String()
}

func TestDialects(t *testing.T) {
	want := map[string]struct {
		version string
		warns   []string
	}{
		"OVF 0.9 Section xsi:type":                              {version: "0.9"},
		"OVF 1.0 default namespace":                             {version: "1.0"},
		"OVF 1.0 ovf: prefix without default namespace (Cisco)": {version: "1.0"},
		"OVF 2.0 StorageItem and EthernetPortItem":              {version: "2.0"},
		"trailing-slash namespace (oVirt), xsi:type sections, disagreeing ovf:version": {
			version: "1.0", warns: []string{`ovf:version "4.4.0.0" disagrees with the envelope namespace`},
		},
		"vendor extensions ignored": {version: "1.0"},
		"no namespace at all":       {version: "", warns: []string{"Envelope is in no namespace"}},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			w, ok := want[d.name]
			if !ok {
				t.Fatal("no expectation for this dialect")
			}
			e := mustParse(t, d.build())
			eq(t, "version", e.Version, w.version)
			checkWarnings(t, e.Warnings, w.warns)
			if len(e.Systems) != 1 || len(e.Disks) != 1 || len(e.Files) != 1 {
				t.Fatalf("systems %d, disks %d, files %d; want 1 each", len(e.Systems), len(e.Disks), len(e.Files))
			}
			vs := e.Systems[0]
			eq(t, "id", vs.ID, "vm")
			eq(t, "name", vs.Name, "Appliance")
			eq(t, "cpus", vs.CPUs, 2)
			eq(t, "memory", vs.MemoryBytes, 512*MiB)
			eq(t, "capacity", e.Disks[0].Capacity, 4*GiB)
			eq(t, "network", e.Networks[0].Name, "n")
			if len(vs.Disks) != 1 || len(vs.NICs) != 1 {
				t.Fatalf("disks %d, nics %d; want 1 each", len(vs.Disks), len(vs.NICs))
			}
			eq(t, "disk", vs.Disks[0].DiskID, "d1")
			eq(t, "controller", vs.Disks[0].ControllerType, "scsi")
			eq(t, "nic network", vs.NICs[0].Network, "n")
			eq(t, "nic type", vs.NICs[0].SubType, "E1000")
			df := e.DiskFiles()
			if len(df) != 1 || df[0].File.Href != "a.vmdk" || df[0].File.Size != 100 {
				t.Fatalf("DiskFiles = %+v", df)
			}
		})
	}
}

// TestNamespaceVariants covers envelope namespaces and versions that only
// change Version and the warnings.
func TestNamespaceVariants(t *testing.T) {
	body := `<References/><VirtualSystem ovf:id="x"><VirtualHardwareSection/></VirtualSystem>`
	cases := []struct {
		name, root, version string
		warns               []string
	}{
		{"1.1 from ovf:version", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ovf:version="1.1">`, "1.1", nil},
		{"2.1 from ovf:version", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/2" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" ovf:version="2.1">`, "2.1", nil},
		{"unknown major 3", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/3" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/3">`, "3.0", []string{"OVF 3.0 is newer than this reader knows"}},
		{"ovf:version not a number", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ovf:version="one">`, "1.0", []string{`ovf:version "one" is not a version number`}},
		{"unbound ovf prefix", `<ovf:Envelope ovf:version="1.0">`, "1.0", []string{"Envelope is in no namespace"}},
		{"foreign namespace", `<Envelope xmlns="urn:example" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`, "", []string{`namespace "urn:example" is not an OVF namespace`}},
		{"namespace without major", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/x" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`, "", []string{"has no usable major version"}},
		{"ovf: prefix bound to another namespace", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="urn:example:ovf">`, "1.0", nil},
		{"version with an empty part", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ovf:version="1.">`, "1.0", []string{`ovf:version "1." is not a version number`}},
		{"empty version", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/2" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" ovf:version="">`, "2.0", []string{`ovf:version "" is not a version number`}},
		{"vendor version attribute ignored", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:xenovf="http://schemas.citrix.com/ovf/envelope/1" xenovf:version="7.0">`, "1.0", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			closeTag := "</Envelope>"
			if strings.HasPrefix(c.root, "<ovf:") {
				closeTag = "</ovf:Envelope>"
			}
			e := mustParse(t, c.root+body+closeTag)
			eq(t, "version", e.Version, c.version)
			eq(t, "system id", e.Systems[0].ID, "x")
			checkWarnings(t, e.Warnings, c.warns)
		})
	}
}
