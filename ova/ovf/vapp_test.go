package ovf

import (
	"testing"
)

// TestCollectionDetails reads a vApp with every section ovfmount info
// shows: name, annotation, product, licence, startup order and resource
// allocation, and its members.
func TestCollectionDetails(t *testing.T) {
	doc := env10(`<References/>` +
		`<DeploymentOptionSection><Configuration ovf:id="small"/><Configuration ovf:id="big" ovf:default="true"/></DeploymentOptionSection>` +
		`<VirtualSystemCollection ovf:id="app"><Info>x</Info><Name>Web shop</Name>` +
		`<AnnotationSection><Info>x</Info><Annotation>Three tiers</Annotation></AnnotationSection>` +
		`<ProductSection><Product>Shop</Product><Vendor>Example</Vendor><Version>2.1</Version></ProductSection>` +
		`<EulaSection><License>Be nice.</License></EulaSection>` +
		`<StartupSection><Info>x</Info>` +
		`<Item ovf:id="db" ovf:order="1" ovf:startDelay="120" ovf:waitingForGuest="true" ovf:stopDelay="30" ovf:startAction="powerOn" ovf:stopAction="guestShutdown"/>` +
		`<Item ovf:id="web" ovf:order="2"/>` +
		`</StartupSection>` +
		`<ResourceAllocationSection><Info>x</Info>` +
		itemXML("", "1", rtCPU, "AllocationUnits", "hertz * 10^6", "ElementName", "500 MHz reservation", "Reservation", "500", "Limit", "2000", "Weight", "4000") +
		itemXML("", "2", rtMemory, "AllocationUnits", "byte * 2^20", "Reservation", "300") +
		itemXML(`ovf:configuration="small"`, "3", rtMemory, "AllocationUnits", "byte * 2^20", "Reservation", "100") +
		itemXML(`ovf:bound="max"`, "2", rtMemory, "AllocationUnits", "byte * 2^20", "Reservation", "900") +
		itemXML("", "4", 2, "AllocationUnits", "percent", "Reservation", "10") +
		`</ResourceAllocationSection>` +
		vsXML("db", "") + vsXML("web", "") +
		`</VirtualSystemCollection>`)
	e := mustParse(t, doc)
	checkWarnings(t, e.Warnings, nil)
	if len(e.Collections) != 1 {
		t.Fatalf("%d collections", len(e.Collections))
	}
	c := e.Collections[0]
	eq(t, "name", c.Name, "Web shop")
	eq(t, "annotation", c.Annotation, "Three tiers")
	eq(t, "product", c.Product, Product{Name: "Shop", Vendor: "Example", Version: "2.1"})
	eq(t, "eulas", c.EULAs, []string{"Be nice."})
	eq(t, "members", c.Members, []string{"db", "web"})
	eq(t, "startup", c.Startup, []StartupItem{
		{ID: "db", Order: 1, StartDelay: 120, StopDelay: 30, WaitingForGuest: true, StartAction: "powerOn", StopAction: "guestShutdown"},
		// Absent delays and actions take DSP0243's defaults.
		{ID: "web", Order: 2, StartAction: "powerOn", StopAction: "powerOff"},
	})
	eq(t, "resources", c.Resources, []Allocation{
		{InstanceID: "1", ResourceType: rtCPU, Name: "500 MHz reservation", Units: "hertz * 10^6", BaseUnit: "hertz",
			Reservation: 500e6, Limit: 2000e6, Shares: 4000, Active: true},
		{InstanceID: "2", ResourceType: rtMemory, Units: "byte * 2^20", BaseUnit: "byte", Reservation: 300 * MiB, Limit: -1, Shares: -1, Active: true},
		{InstanceID: "3", ResourceType: rtMemory, Units: "byte * 2^20", BaseUnit: "byte", Reservation: 100 * MiB, Limit: -1, Shares: -1,
			Configs: []string{"small"}},
		// Units that are neither bytes nor hertz leave the numbers as written.
		{InstanceID: "4", ResourceType: 2, Units: "percent", Reservation: 10, Limit: -1, Shares: -1, Active: true},
	})
}

// TestCollectionShapes covers where producers put a vApp's sections and
// what is reported when they are wrong.
func TestCollectionShapes(t *testing.T) {
	ordered := func(ids ...string) []StartupItem {
		var out []StartupItem
		for i, id := range ids {
			out = append(out, StartupItem{ID: id, Order: i + 1, StartAction: "powerOn", StopAction: "powerOff"})
		}
		return out
	}
	cases := []struct {
		name    string
		doc     string
		members [][]string // per collection
		startup [][]StartupItem
		warns   []string
	}{
		{
			// XenCenter's appliance export: the StartupSection is in the
			// Envelope, the collection has neither Name nor its own.
			name: "XenCenter: StartupSection in the Envelope",
			doc: env10(`<References/><StartupSection><Info>Startup Options</Info>` +
				`<Item ovf:id="b" ovf:order="1"/><Item ovf:id="a" ovf:order="2"/></StartupSection>` +
				`<VirtualSystemCollection ovf:id="7e1c"><Info>x</Info>` + vsXML("a", "") + vsXML("b", "") + `</VirtualSystemCollection>`),
			members: [][]string{{"a", "b"}},
			startup: [][]StartupItem{ordered("b", "a")},
		},
		{
			name: "the collection's own StartupSection wins over the Envelope's",
			doc: env10(`<References/><StartupSection><Item ovf:id="a" ovf:order="9"/></StartupSection>` +
				`<VirtualSystemCollection ovf:id="c"><StartupSection><Item ovf:id="a" ovf:order="1"/></StartupSection>` + vsXML("a", "") + `</VirtualSystemCollection>`),
			members: [][]string{{"a"}},
			startup: [][]StartupItem{ordered("a")},
		},
		{
			// A single system has nothing to order: XenCenter's one-VM
			// export (sample_app.ovf) yields no collection.
			name:    "Envelope StartupSection beside a single system",
			doc:     env10(`<References/><StartupSection><Item ovf:id="a" ovf:order="2"/></StartupSection>` + vsXML("a", "")),
			members: [][]string{},
			startup: [][]StartupItem{},
		},
		{
			name: "OVF 0.9: Content and Section with xsi:type",
			doc: `<ovf:Envelope xmlns:ovf="http://www.vmware.com/schema/ovf/1/envelope" ` + xsiNS + ` ` + rasdNS + `><ovf:References/>` +
				`<ovf:Content ovf:id="top" xsi:type="ovf:VirtualSystemCollection_Type">` +
				`<ovf:Section xsi:type="ovf:StartupSection_Type"><ovf:Item ovf:id="x" ovf:order="1"/><ovf:Item ovf:id="y" ovf:order="2"/></ovf:Section>` +
				`<ovf:Content ovf:id="x" xsi:type="ovf:VirtualSystem_Type"><ovf:Section xsi:type="ovf:VirtualHardwareSection_Type"/></ovf:Content>` +
				`<ovf:Content ovf:id="y" xsi:type="ovf:VirtualSystem_Type"><ovf:Section xsi:type="ovf:VirtualHardwareSection_Type"/></ovf:Content>` +
				`</ovf:Content></ovf:Envelope>`,
			members: [][]string{{"x", "y"}},
			startup: [][]StartupItem{ordered("x", "y")},
		},
		{
			// A nested collection is a member of its parent, and the
			// parent's StartupSection orders it as a whole.
			name: "nested collections",
			doc: env10(`<References/><VirtualSystemCollection ovf:id="outer">` +
				`<StartupSection><Item ovf:id="inner" ovf:order="1"/><Item ovf:id="d" ovf:order="2"/></StartupSection>` +
				`<VirtualSystemCollection ovf:id="inner">` + vsXML("b", "") + vsXML("c", "") + `</VirtualSystemCollection>` +
				vsXML("d", "") + `</VirtualSystemCollection>`),
			members: [][]string{{"inner", "d"}, {"b", "c"}},
			startup: [][]StartupItem{ordered("inner", "d"), nil},
		},
		{
			name:    "an empty collection",
			doc:     env10(`<References/><VirtualSystemCollection ovf:id="c"/>`),
			members: [][]string{{}},
			startup: [][]StartupItem{nil},
		},
		{
			name: "startup items that name no member, twice, or lack numbers",
			doc: env10(`<References/><VirtualSystemCollection ovf:id="c"><StartupSection>` +
				`<Item ovf:id="ghost" ovf:order="1"/><Item ovf:id="a" ovf:order="1"/><Item ovf:id="a" ovf:order="2"/>` +
				`<Item ovf:id="b" ovf:startDelay="soon" ovf:stopDelay="70000"/><Item ovf:order="-1"/>` +
				`</StartupSection>` + vsXML("a", "") + vsXML("b", "") + `</VirtualSystemCollection>`),
			members: [][]string{{"a", "b"}},
			startup: [][]StartupItem{{
				{ID: "ghost", Order: 1, StartAction: "powerOn", StopAction: "powerOff"},
				{ID: "a", Order: 1, StartAction: "powerOn", StopAction: "powerOff"},
				{ID: "a", Order: 2, StartAction: "powerOn", StopAction: "powerOff"},
				{ID: "b", Order: -1, StartAction: "powerOn", StopAction: "powerOff"},
				{Order: -1, StartAction: "powerOn", StopAction: "powerOff"},
			}},
			warns: []string{
				`VirtualSystemCollection "c": StartupSection item "ghost" names none of its members`,
				`StartupSection names "a" twice`,
				`StartupSection item "b" has no ovf:order`,
				`item "b" has ovf:startDelay "soon", not a number from 0 to 65535`,
				`item "b" has ovf:stopDelay "70000", not a number from 0 to 65535`,
				`StartupSection item has no ovf:id`,
				`item "" has ovf:order "-1", not a number from 0 to 65535`,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustParse(t, c.doc)
			checkWarnings(t, e.Warnings, c.warns)
			members, startup := [][]string{}, [][]StartupItem{}
			for _, col := range e.Collections {
				members = append(members, col.Members)
				startup = append(startup, col.Startup)
			}
			eq(t, "members", members, c.members)
			eq(t, "startup", startup, c.startup)
		})
	}
}

// TestAllocationNumbers: unusable reservations, limits and weights are -1
// with a warning, never wrapped or negative.
func TestAllocationNumbers(t *testing.T) {
	e := mustParse(t, env10(`<References/><VirtualSystemCollection ovf:id="c"><ResourceAllocationSection>`+
		itemXML("", "1", rtMemory, "AllocationUnits", "byte * 2^40", "Reservation", "99999999", "Limit", "-1", "Weight", "99999999999999999999")+
		`<Item><rasd:Reservation>5</rasd:Reservation></Item>`+
		`</ResourceAllocationSection>`+vsXML("a", "")+`</VirtualSystemCollection>`))
	eq(t, "resources", e.Collections[0].Resources, []Allocation{
		{InstanceID: "1", ResourceType: rtMemory, Units: "byte * 2^40", BaseUnit: "byte", Reservation: -1, Limit: -1, Shares: -1, Active: true},
		{Reservation: 5, Limit: -1, Shares: -1, Active: true},
	})
	checkWarnings(t, e.Warnings, []string{
		`VirtualSystemCollection "c": item 1 ("") has no InstanceID`,
		`VirtualSystemCollection "c": item "" has no usable ResourceType ("")`,
		`VirtualSystemCollection "c": resource allocation item "1": rasd:Reservation "99999999" × "byte * 2^40" is beyond 2^63`,
		`rasd:Limit "-1" is not a non-negative integer`,
		`rasd:Weight "99999999999999999999" is beyond 2^63`,
	})
}
