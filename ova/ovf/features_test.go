package ovf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// env10 wraps body in an OVF 1.0 envelope with the usual prefixes bound.
func env10(body string) string {
	return `<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ` +
		rasdNS + ` xmlns:vmw="http://www.vmware.com/schema/ovf">` + body + `</Envelope>`
}

// itemXML writes an Item with InstanceID id, ResourceType rt and the
// given rasd field/value pairs; attrs go on the Item element.
func itemXML(attrs, id string, rt int, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<Item %s><rasd:InstanceID>%s</rasd:InstanceID><rasd:ResourceType>%d</rasd:ResourceType>`, attrs, id, rt)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "<rasd:%s>%s</rasd:%s>", fields[i], fields[i+1], fields[i])
	}
	b.WriteString("</Item>")
	return b.String()
}

// vsXML is a VirtualSystem with the given items and other sections.
func vsXML(id, sections string, items ...string) string {
	return fmt.Sprintf(`<VirtualSystem ovf:id=%q>%s<VirtualHardwareSection>%s</VirtualHardwareSection></VirtualSystem>`, id, sections, strings.Join(items, ""))
}

func TestParseUnits(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  error
	}{
		{"byte", 1, nil},
		{"bytes", 1, nil},
		{"byte * 2^30", 1 << 30, nil},
		{"byte*2^20", 1 << 20, nil},
		{"  byte  *  2 ^ 10 ", 1 << 10, nil},
		{"byte * 10^9", 1e9, nil},
		{"byte * 1024", 1024, nil},
		{"byte * 2^10 * 2^10", 1 << 20, nil},
		{"2^30 * byte", 1 << 30, nil},
		{"BYTE * 2^30", 1 << 30, nil},
		{"kilobyte", 1000, nil},
		{"kibibyte", 1024, nil},
		{"megabyte", 1e6, nil},
		{"mebibyte", 1 << 20, nil},
		{"gigabyte", 1e9, nil},
		{"gibibyte", 1 << 30, nil},
		{"terabyte", 1e12, nil},
		{"KiloBytes", 1 << 10, nil},
		{"MegaBytes", 1 << 20, nil},
		{"GigaBytes", 1 << 30, nil},
		{"MB", 1 << 20, nil},
		{"GB", 1 << 30, nil},
		{"byte * 2^63", 0, errOverflow},
		{"byte * 2^62", 1 << 62, nil},
		{"exbibyte * 16", 0, errOverflow},
		{"byte * 2^99999999999999", 0, errOverflow},
		{"byte * 1^99999999999999", 1, nil},
		{"", 0, errUnits},
		{"hertz * 10^6", 0, errUnits},
		{"Disk", 0, errUnits},
		{"2^20", 0, errUnits},
		{"byte * byte", 0, errUnits},
		{"byte * 2^-3", 0, errUnits},
		{"byte * 0", 0, errUnits},
		{"byte * -4", 0, errUnits},
		{"byte **2^3", 0, errUnits},
		{"byte * 2^", 0, errUnits},
		{"byte * 0^2", 0, errUnits},
	}
	for _, c := range cases {
		got, err := parseUnits(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("parseUnits(%q) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestCapacities checks capacity, units and ${property} resolution end to
// end, including the values that must come out as -1 with a warning.
func TestCapacities(t *testing.T) {
	product := `<ProductSection ovf:class="org.app" ovf:instance="1"><Property ovf:key="size" ovf:value="3"/>` +
		`<Property ovf:key="bad" ovf:value="three"/><Property ovf:key="small" ovf:configuration="small" ovf:value="1"/>` +
		`<Property ovf:key="perconf" ovf:value="1"><Value ovf:value="7" ovf:configuration="big"/></Property></ProductSection>` +
		`<ProductSection><Property ovf:key="plain" ovf:value="5"/></ProductSection>`
	options := `<DeploymentOptionSection><Configuration ovf:id="small"/><Configuration ovf:id="big" ovf:default="true"/></DeploymentOptionSection>`
	cases := []struct {
		capacity, units string
		want            int64
		warn            string
	}{
		{"1073741824", "", 1 << 30, ""},
		{"1073741824", "byte", 1 << 30, ""},
		{"2", "byte * 2^30", 2 << 30, ""},
		{"128", "byte*2^20", 128 << 20, ""},
		{"3", "kilobyte", 3000, ""},
		{"3", "GigaBytes", 3 << 30, ""},
		{"4", "MegaBytes", 4 << 20, ""},
		{" 7 ", "", 7, ""},
		{"${plain}", "byte * 2^30", 5 << 30, ""},
		{"${org.app.size.1}", "byte * 2^30", 3 << 30, ""},
		{"${org.app.size}", "byte * 2^30", -1, "names no ProductSection property"},
		{"${size}", "byte * 2^30", -1, "names no ProductSection property"},
		{"${org.app.bad.1}", "byte", -1, `capacity "three"`},
		{"${org.app.small.1}", "byte", -1, "names no ProductSection property"},
		{"${org.app.perconf.1}", "byte * 2^30", 7 << 30, ""},
		{"${missing}", "", -1, "names no ProductSection property"},
		{"1180591620717411303424", "byte", -1, "beyond 2^63"}, // 2^70
		{"1024", "byte * 2^60", -1, "beyond 2^63"},
		{"-1", "byte", -1, "not a non-negative integer"},
		{"1.5", "byte * 2^30", -1, "not a non-negative integer"},
		{"0x10", "", -1, "not a non-negative integer"},
		{"1", "furlongs", -1, "not a byte unit"},
		{"", "", -1, "has no ovf:capacity"},
	}
	for _, c := range cases {
		t.Run(c.capacity+" "+c.units, func(t *testing.T) {
			disk := `<DiskSection><Disk ovf:diskId="d" ovf:capacity="` + c.capacity + `" ovf:capacityAllocationUnits="` + c.units + `"/></DiskSection>`
			if c.capacity == "" {
				disk = `<DiskSection><Disk ovf:diskId="d"/></DiskSection>`
			}
			e := mustParse(t, env10(`<References/>`+disk+options+vsXML("vm", product, itemXML("", "1", rtDisk, "HostResource", "ovf:/disk/d"))))
			eq(t, "capacity", e.Disks[0].Capacity, c.want)
			var warns []string
			if c.warn != "" {
				warns = []string{c.warn}
			}
			checkWarnings(t, e.Warnings, warns)
		})
	}
}

func TestCollectionsNest(t *testing.T) {
	doc := env10(`<References/><VirtualSystemCollection ovf:id="outer"><Name>Outer</Name>` +
		`<ProductSection><Product>Suite</Product><Vendor>V</Vendor><Property ovf:key="k" ovf:value="v"/></ProductSection>` +
		`<EulaSection><License>one</License></EulaSection><EulaSection><License>two</License></EulaSection>` +
		vsXML("a", "") +
		`<VirtualSystemCollection ovf:id="inner">` + vsXML("b", "") + vsXML("c", "") + `</VirtualSystemCollection>` +
		vsXML("d", "") + `</VirtualSystemCollection>`)
	e := mustParse(t, doc)
	checkWarnings(t, e.Warnings, nil)
	var got []string
	for _, s := range e.Systems {
		got = append(got, strings.Join(append(append([]string{}, s.Path...), s.ID), "/"))
	}
	eq(t, "systems", got, []string{"outer/a", "outer/inner/b", "outer/inner/c", "outer/d"})
	eq(t, "collections", len(e.Collections), 2)
	eq(t, "outer product", e.Collections[0].Product.Name, "Suite")
	eq(t, "outer eulas", e.Collections[0].EULAs, []string{"one", "two"})
	eq(t, "outer properties", len(e.Collections[0].Properties), 1)
	eq(t, "inner path", e.Collections[1].Path, []string{"outer"})

	// OVF 0.9 writes both as Content elements told apart by xsi:type.
	content := func(typ, id, inner string) string {
		return `<ovf:Content ovf:id="` + id + `" xsi:type="ovf:` + typ + `_Type">` + inner + `</ovf:Content>`
	}
	e = mustParse(t, `<ovf:Envelope xmlns:ovf="http://www.vmware.com/schema/ovf/1/envelope" `+xsiNS+`><ovf:References/>`+
		content("VirtualSystemCollection", "top", content("VirtualSystem", "x", `<ovf:Section xsi:type="ovf:VirtualHardwareSection_Type"/>`)+
			content("VirtualSystemCollection", "sub", content("VirtualSystem", "y", `<ovf:Section xsi:type="ovf:VirtualHardwareSection_Type"/>`)))+
		`</ovf:Envelope>`)
	checkWarnings(t, e.Warnings, nil)
	eq(t, "0.9 version", e.Version, "0.9")
	eq(t, "0.9 paths", [][]string{e.Systems[0].Path, e.Systems[1].Path}, [][]string{{"top"}, {"top", "sub"}})
}

func TestDeploymentOptions(t *testing.T) {
	cpu := func(attrs, id, n string) string { return itemXML(attrs, id, rtCPU, "VirtualQuantity", n) }
	mem := func(attrs, id, n string) string {
		return itemXML(attrs, id, rtMemory, "AllocationUnits", "byte * 2^20", "VirtualQuantity", n)
	}
	nic := func(attrs, id string) string { return itemXML(attrs, id, rtEthernet, "Connection", "n") }
	opts := func(cfgs ...string) string {
		return "<DeploymentOptionSection>" + strings.Join(cfgs, "") + "</DeploymentOptionSection>"
	}
	cases := []struct {
		name    string
		options string
		items   []string
		def     string
		cpus    int
		mem     int64
		nics    int      // active
		sizes   []Sizing // per deployment option
		warns   []string
	}{
		{
			name:  "no section: unconditional items",
			items: []string{cpu("", "1", "2"), mem("", "2", "1024"), nic("", "3")},
			cpus:  2, mem: 1024 * MiB, nics: 1,
		},
		{
			name:    "explicit default overrides unconditional item with the same InstanceID",
			options: opts(`<Configuration ovf:id="s"/>`, `<Configuration ovf:id="l" ovf:default="true"/>`),
			items: []string{
				cpu("", "1", "1"), cpu(`ovf:configuration="s"`, "1", "2"), cpu(`ovf:configuration="l"`, "1", "8"),
				mem("", "2", "1024"), mem(`ovf:configuration="s l"`, "2", "4096"),
				nic("", "3"), nic(`ovf:configuration="l"`, "4"), nic(`ovf:configuration="s"`, "5"),
			},
			def: "l", cpus: 8, mem: 4096 * MiB, nics: 2,
			sizes: []Sizing{{"s", 2, 4096 * MiB}, {"l", 8, 4096 * MiB}},
		},
		{
			name:    "override listed before the unconditional item still wins",
			options: opts(`<Configuration ovf:id="s"/>`),
			items:   []string{cpu(`ovf:configuration="s"`, "1", "4"), cpu("", "1", "1")},
			def:     "s", cpus: 4,
			sizes: []Sizing{{"s", 4, 0}},
		},
		{
			name:    "no default attribute: the first configuration",
			options: opts(`<Configuration ovf:id="a"/>`, `<Configuration ovf:id="b"/>`),
			items:   []string{cpu(`ovf:configuration="a"`, "1", "3"), cpu(`ovf:configuration="b"`, "1", "5")},
			def:     "a", cpus: 3,
			sizes: []Sizing{{"a", 3, 0}, {"b", 5, 0}},
		},
		{
			name:    "two defaults: the first wins",
			options: opts(`<Configuration ovf:id="a"/>`, `<Configuration ovf:id="b" ovf:default="true"/>`, `<Configuration ovf:id="c" ovf:default="1"/>`),
			items:   []string{cpu(`ovf:configuration="b"`, "1", "3"), cpu(`ovf:configuration="c"`, "1", "5")},
			def:     "b", cpus: 3,
			sizes: []Sizing{{"a", 0, 0}, {"b", 3, 0}, {"c", 5, 0}},
			warns: []string{`deployment options "b" and "c" are both marked default`},
		},
		{
			name:  "item for an undeclared configuration",
			items: []string{cpu(`ovf:configuration="ghost"`, "1", "3"), cpu("", "2", "1")},
			cpus:  1,
			warns: []string{`belongs to configuration "ghost", which no DeploymentOptionSection declares`},
		},
		{
			name:    "duplicate and id-less configurations",
			options: opts(`<Configuration ovf:id="a"/>`, `<Configuration ovf:id="a"/>`, `<Configuration><Label>x</Label></Configuration>`),
			def:     "a",
			sizes:   []Sizing{{"a", 0, 0}},
			warns:   []string{`deployment option "a" declared twice`, `deployment option "x" has no ovf:id`},
		},
		{
			name:  "bound min and max items are ranges, not values",
			items: []string{cpu(`ovf:bound="min"`, "1", "1"), cpu("", "1", "2"), cpu(`ovf:bound="max"`, "1", "16")},
			cpus:  2,
		},
		{
			name:  "two CPU items add up; memory without units is MiB",
			items: []string{cpu("", "1", "2"), cpu("", "9", "2"), itemXML("", "2", rtMemory, "VirtualQuantity", "256")},
			cpus:  4, mem: 256 * MiB,
			warns: []string{`memory item "2" has no AllocationUnits; read as MiB`},
		},
		{
			name: "sums past the bounds",
			items: []string{
				cpu("", "1", "1048576"), cpu("", "2", "1048576"),
				itemXML("", "3", rtMemory, "AllocationUnits", "byte * 2^60", "VirtualQuantity", "6"),
				itemXML("", "4", rtMemory, "AllocationUnits", "byte * 2^60", "VirtualQuantity", "6"),
				itemXML("", "5", rtMemory, "AllocationUnits", "byte * 2^20", "VirtualQuantity", "1"),
			},
			warns: []string{"memory adds up beyond 2^63 bytes", "2097152 CPUs in all"},
		},
		{
			name: "unusable quantities",
			items: []string{
				cpu("", "1", "lots"), cpu("", "3", "99999999999"),
				itemXML("", "2", rtMemory, "AllocationUnits", "byte * 2^40", "VirtualQuantity", "99999999"),
				itemXML("", "4", rtMemory, "AllocationUnits", "Disk", "VirtualQuantity", "1"),
			},
			warns: []string{`VirtualQuantity "lots"`, `VirtualQuantity "99999999999"`, "beyond 2^63", "not a byte unit"},
		},
		{
			// The unusable item overrides the CPU item in x and y; it is
			// reported once, when x first counts it.
			name:    "an unusable item in other configurations is reported once",
			options: opts(`<Configuration ovf:id="d"/>`, `<Configuration ovf:id="x"/>`, `<Configuration ovf:id="y"/>`),
			items:   []string{cpu("", "1", "2"), cpu(`ovf:configuration="x y"`, "1", "lots"), mem("", "2", "512")},
			def:     "d", cpus: 2, mem: 512 * MiB,
			sizes: []Sizing{{"d", 2, 512 * MiB}, {"x", 0, 512 * MiB}, {"y", 0, 512 * MiB}},
			warns: []string{`VirtualSystem "vm": CPU item "1" has VirtualQuantity "lots"; not counted`},
		},
		{
			name:    "a sum past the bound in another configuration names it",
			options: opts(`<Configuration ovf:id="d"/>`, `<Configuration ovf:id="big"/>`),
			items: []string{
				mem("", "1", "1024"),
				itemXML(`ovf:configuration="big"`, "2", rtMemory, "AllocationUnits", "byte * 2^60", "VirtualQuantity", "6"),
				itemXML(`ovf:configuration="big"`, "3", rtMemory, "AllocationUnits", "byte * 2^60", "VirtualQuantity", "6"),
			},
			def: "d", mem: 1024 * MiB,
			sizes: []Sizing{{"d", 0, 1024 * MiB}, {"big", 0, 0}},
			warns: []string{`VirtualSystem "vm": memory adds up beyond 2^63 bytes in configuration "big"; not counted`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustParse(t, env10(`<References/><NetworkSection><Network ovf:name="n"/></NetworkSection>`+c.options+vsXML("vm", "", c.items...)))
			vs := e.Systems[0]
			eq(t, "default", e.DefaultConfiguration, c.def)
			eq(t, "cpus", vs.CPUs, c.cpus)
			eq(t, "memory", vs.MemoryBytes, c.mem)
			active := 0
			for _, n := range vs.NICs {
				if n.Active {
					active++
				}
			}
			eq(t, "active nics", active, c.nics)
			eq(t, "configuration", vs.Configuration, c.def)
			eq(t, "by configuration", vs.ByConfiguration, c.sizes)
			checkWarnings(t, e.Warnings, c.warns)
		})
	}
}

func TestCheckHref(t *testing.T) {
	cases := []struct{ href, want string }{
		{"disk1.vmdk", ""},
		{"./disk1.vmdk", ""},
		{"disks/disk1.vmdk", ""},
		{"disk..1.vmdk", ""},
		{"my disk (1).vmdk", ""},
		{"my disk: part 2.vmdk", ""},
		{"", "is empty"},
		{"/etc/passwd", "absolute"},
		{"\\\\server\\share\\d.vmdk", "absolute"},
		{"C:\\disks\\d.vmdk", "absolute"},
		{"c:d.vmdk", "absolute"},
		{"../d.vmdk", "climbs out"},
		{"disks/../../d.vmdk", "climbs out"},
		{"disks\\..\\..\\d.vmdk", "climbs out"},
		{"..", "climbs out"},
		{"http://example.com/d.vmdk", "URL"},
		{"https://example.com/d.vmdk", "URL"},
		{"file:///etc/passwd", "URL"},
		{"ftp:d.vmdk", "URL"},
		{"d\x00.vmdk", "control character"},
		{"d\n.vmdk", "control character"},
	}
	for _, c := range cases {
		got := checkHref(c.href)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("checkHref(%q) = %q, want %q", c.href, got, c.want)
		}
	}
}

func TestControllerType(t *testing.T) {
	cases := []struct {
		rt      int
		subType string
		want    string
	}{
		{rtIDE, "PIIX4", "ide"}, {rtSCSI, "lsilogic", "scsi"}, {rtFC, "", "fc"}, {rtISCSI, "", "iscsi"}, {rtIB, "", "ib"},
		{rtOtherStore, "AHCI", "sata"}, {rtOtherStore, "vmware.sata.ahci", "sata"}, {rtOtherStore, "vmware.nvme.controller", "nvme"},
		{rtOtherStore, "", "other"}, {rtCPU, "", ""}, {rtDisk, "", ""}, {23, "usb", ""},
	}
	for _, c := range cases {
		if got := controllerType(c.rt, c.subType); got != c.want {
			t.Errorf("controllerType(%d, %q) = %q, want %q", c.rt, c.subType, got, c.want)
		}
	}
}

func TestParseHostResource(t *testing.T) {
	cases := []struct {
		in, kind, id  string
		canonical, ok bool
	}{
		{"ovf:/disk/vmdisk1", "disk", "vmdisk1", true, true},
		{"/disk/vmdisk1", "disk", "vmdisk1", true, true},
		{"ovf:/file/iso", "file", "iso", true, true},
		{"ovf://disk/vmdisk1", "disk", "vmdisk1", false, true},
		{"OVF:/Disk/x", "disk", "x", false, true},
		{"/file/iso", "file", "iso", false, true},
		{"ovf:/disk/a/b", "disk", "a/b", true, true},
		{"disk/vmdisk1", "", "", false, false},
		{"nonexistent.vmdk", "", "", false, false},
		{"ovf:/disk/", "", "", false, false},
		{"ovf:/net/x", "", "", false, false},
		{"", "", "", false, false},
	}
	for _, c := range cases {
		kind, id, canonical, ok := parseHostResource(c.in)
		if kind != c.kind || id != c.id || canonical != c.canonical || ok != c.ok {
			t.Errorf("parseHostResource(%q) = %q %q %v %v; want %q %q %v %v", c.in, kind, id, canonical, ok, c.kind, c.id, c.canonical, c.ok)
		}
	}
}

// TestConsistency checks the warnings only the whole model can give.
func TestConsistency(t *testing.T) {
	disk := func(id string) string { return itemXML("", "d"+id, rtDisk, "HostResource", "ovf:/disk/"+id) }
	cases := []struct {
		name  string
		body  string
		warns []string
	}{
		{
			name: "clean",
			body: `<References><File ovf:id="f1" ovf:href="a.vmdk"/></References><DiskSection><Disk ovf:diskId="a" ovf:fileRef="f1" ovf:capacity="1"/></DiskSection>` +
				vsXML("vm", "", disk("a")),
		},
		{
			name: "unsafe hrefs",
			body: `<References><File ovf:id="f1" ovf:href="../a.vmdk"/><File ovf:id="f2" ovf:href="/abs"/><File ovf:id="f3" ovf:href="https://x/y"/><File ovf:href="b"/></References>` +
				vsXML("vm", ""),
			warns: []string{`"f1": href "../a.vmdk" climbs out`, `"f2": href "/abs" is an absolute path`, `"f3": href "https://x/y" is a URL`, `File "b" has no ovf:id`},
		},
		{
			name: "files referenced twice",
			body: `<References><File ovf:id="f1" ovf:href="a.vmdk"/><File ovf:id="f2" ovf:href="./a.vmdk"/><File ovf:id="f1" ovf:href="c.vmdk"/></References>` +
				`<DiskSection><Disk ovf:diskId="a" ovf:fileRef="f1" ovf:capacity="1"/><Disk ovf:diskId="b" ovf:fileRef="f1" ovf:capacity="1"/></DiskSection>` +
				vsXML("vm", "", disk("a"), disk("b")),
			warns: []string{`Files "f1" and "f2" both name "./a.vmdk"`, `File id "f1" is declared twice`, `File "f1" is the image of two disks, "a" and "b"`},
		},
		{
			name: "dangling references",
			body: `<References/><DiskSection><Disk ovf:diskId="a" ovf:fileRef="nofile" ovf:capacity="1"/><Disk ovf:diskId="lonely" ovf:capacity="1"/>` +
				`<Disk ovf:diskId="delta" ovf:parentRef="ghost" ovf:capacity="1"/><Disk ovf:diskId="a" ovf:capacity="1"/></DiskSection>` +
				vsXML("vm", "", disk("a"), disk("delta"), disk("unknown"), itemXML("", "c", rtCD, "HostResource", "ovf:/file/nofile")),
			warns: []string{
				`Disk id "a" is declared twice`, `Disk "a": fileRef "nofile" names no File`, `Disk "delta": parentRef "ghost" names no Disk`,
				`item "dunknown" HostResource names disk "unknown"`, `item "c" HostResource names file "nofile"`,
				`Disk "lonely" is not attached`,
			},
		},
		{
			name: "same system id twice, missing ids and hardware",
			body: `<References/><VirtualSystemCollection>` + vsXML("vm", "") + vsXML("vm", "") +
				`<VirtualSystem><Name>anon</Name></VirtualSystem></VirtualSystemCollection>`,
			warns: []string{`VirtualSystemCollection "" has no ovf:id`, `VirtualSystem "anon" has no ovf:id`, `VirtualSystem "" has no VirtualHardwareSection`, `more than one VirtualSystem has ovf:id "vm"`},
		},
		{
			name: "controller wiring",
			body: `<References/><DiskSection><Disk ovf:diskId="a" ovf:capacity="1"/></DiskSection>` + vsXML("vm", "",
				itemXML("", "1", rtDisk, "HostResource", "ovf:/disk/a", "Parent", "99"),
				itemXML("", "2", rtCD, "Parent", "3"), itemXML("", "3", rtEthernet, "Connection", "nowhere"),
				itemXML("", "4", rtOtherStore, "ResourceSubType", "vmware.nvme.controller"),
				itemXML("", "5", rtCD, "Parent", "4", "HostResource", "ovf:/disk/a", "HostResource", "ovf:/disk/a")),
			warns: []string{
				`item "1" has rasd:Parent "99", which names no item`,
				`item "2" has rasd:Parent "3", which is not a storage controller (ResourceType 10)`,
				`item "5" has 2 HostResources; the first is used`,
				`NIC "3" connects to network "nowhere"`,
			},
		},
		{
			name: "items without InstanceID or ResourceType",
			body: `<References/>` + vsXML("vm", "", `<Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>`,
				`<Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>`,
				`<Item><rasd:InstanceID>9</rasd:InstanceID><rasd:ResourceType>many</rasd:ResourceType></Item>`),
			warns: []string{`item 0 ("") has no InstanceID`, `item 1 ("") has no InstanceID`, `item "9" has no usable ResourceType ("many")`},
		},
		{
			name: "bad file and disk numbers",
			body: `<References><File ovf:id="f" ovf:href="a" ovf:size="-3" ovf:chunkSize="0" ovf:compression="bzip2"/></References>` +
				`<DiskSection><Disk ovf:fileRef="f" ovf:capacity="1" ovf:populatedSize="lots"/></DiskSection>` + vsXML("vm", "", disk("")),
			warns: []string{`ovf:size "-3"`, `ovf:chunkSize "0" is not a positive integer`, `ovf:compression "bzip2" is neither gzip nor identity`,
				`Disk with fileRef "f" has no ovf:diskId`, `ovf:populatedSize "lots"`, `HostResource "ovf:/disk/" is not an ovf:/disk/`, `Disk "" is not attached`},
		},
		{
			name:  "no systems",
			body:  `<References/>`,
			warns: []string{"Envelope has no VirtualSystem"},
		},
		{
			name:  "two top-level systems",
			body:  `<References/>` + vsXML("a", "") + vsXML("b", ""),
			warns: []string{"2 top-level VirtualSystem/VirtualSystemCollection elements"},
		},
		{
			name: "more hardware sections, OS id, property without key, sections inside the system",
			body: `<References/><VirtualSystem ovf:id="vm"><OperatingSystemSection ovf:id="linux"/>` +
				`<DiskSection><Disk ovf:diskId="x" ovf:capacity="1"/></DiskSection><NetworkSection><Network/></NetworkSection>` +
				`<ProductSection><Property><Label>L</Label></Property></ProductSection>` +
				`<VirtualHardwareSection>` + disk("x") + `</VirtualHardwareSection><VirtualHardwareSection/></VirtualSystem>`,
			warns: []string{"Network has no ovf:name", `OperatingSystemSection ovf:id "linux"`, `property "L" has no ovf:key`, "1 more VirtualHardwareSections"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustParse(t, env10(c.body))
			checkWarnings(t, e.Warnings, c.warns)
		})
	}
}

// TestDanglingDisks is separate from TestConsistency because its warnings'
// order depends on the disk list.
func TestDanglingDisks(t *testing.T) {
	e := mustParse(t, env10(`<References><File ovf:id="f" ovf:href="f.vmdk"/></References><DiskSection>`+
		`<Disk ovf:diskId="base" ovf:fileRef="f" ovf:capacity="1"/><Disk ovf:diskId="delta" ovf:parentRef="base" ovf:capacity="1"/>`+
		`<Disk ovf:diskId="lonely" ovf:capacity="1"/></DiskSection>`+vsXML("vm", "", itemXML("", "1", rtDisk, "HostResource", "ovf:/disk/delta"))))
	// base is in use through delta's parentRef; lonely is not in use.
	checkWarnings(t, e.Warnings, []string{`Disk "lonely" is not attached`})
	eq(t, "disk files", len(e.DiskFiles()), 1)
}

// TestFileBackedDrives: a disk or CD item may name a File directly.
func TestFileBackedDrives(t *testing.T) {
	e := mustParse(t, env10(`<References><File ovf:id="raw" ovf:href="raw.img"/><File ovf:id="iso" ovf:href="x.iso"/></References>`+
		vsXML("vm", "", itemXML("", "1", rtDisk, "HostResource", "ovf:/file/raw"), itemXML("", "2", rtDVD, "HostResource", "ovf:/file/iso"),
			itemXML("", "3", rtFloppy, "HostResource", "ovf:/file/iso"))))
	checkWarnings(t, e.Warnings, nil)
	vs := e.Systems[0]
	eq(t, "disks", len(vs.Disks), 1)
	eq(t, "disk file", vs.Disks[0].FileID, "raw")
	eq(t, "dvd file", vs.CDROMs[0].FileID, "iso")
	eq(t, "disk files", len(e.DiskFiles()), 0)
}

func TestProductAndOS(t *testing.T) {
	e := mustParse(t, env10(`<References/>`+vsXML("vm",
		`<OperatingSystemSection ovf:id="101" ovf:version="8" vmw:osType="ubuntu64Guest"><Info/><Description>Ubuntu</Description></OperatingSystemSection>`+
			`<ProductSection ovf:class="a"><Info/><vmw:Property ovf:key="vendor"/><Property ovf:key="only" ovf:value="1"/></ProductSection>`+
			`<ProductSection ovf:class="b" ovf:instance="2"><Product>P</Product><Vendor>V</Vendor><Version>1</Version><FullVersion>1.0.0</FullVersion>`+
			`<ProductUrl>pu</ProductUrl><VendorUrl>vu</VendorUrl><AppUrl>au</AppUrl><Category>C</Category>`+
			`<Property ovf:key="pw" ovf:type="string" ovf:password="true" ovf:userConfigurable="1" ovf:qualifiers="MaxLen(8)" ovf:value=""><Label>Pw</Label></Property></ProductSection>`+
			`<AnnotationSection><Annotation>  note  </Annotation></AnnotationSection>`)))
	vs := e.Systems[0]
	eq(t, "os", vs.OS, OS{ID: 101, Version: "8", VMwareType: "ubuntu64Guest", Description: "Ubuntu"})
	eq(t, "product", vs.Product, Product{Name: "P", Vendor: "V", Version: "1", FullVersion: "1.0.0", ProductURL: "pu", VendorURL: "vu", AppURL: "au", Class: "b", Instance: "2"})
	eq(t, "properties", vs.Properties, []Property{
		{Key: "only", Class: "a", Value: "1"},
		{Key: "pw", Class: "b", Instance: "2", Type: "string", Qualifiers: "MaxLen(8)", Label: "Pw", Category: "C", UserConfigurable: true, Password: true},
	})
	eq(t, "annotation", vs.Annotation, "note")
	eq(t, "no os", mustParse(t, env10(`<References/>`+vsXML("x", ""))).Systems[0].OS.ID, -1)
}
