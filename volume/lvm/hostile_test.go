package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// Damaged and hostile metadata: errors or warnings, never a panic, a hang
// or an allocation the volume cannot justify.

func TestConfigSyntax(t *testing.T) {
	root, err := parseConfig(`# comment
vg { id = "x\"y\\z" # a comment after a value
	n = -12 f = 1.5 bare = word
	arr = [ "a", 1, 'single', ] empty = []
	sec { k = 1 }
	sec { k2 = 2 }   # merged with the first, as LVM merges sections
	n = 7            # the last value wins
}
"quoted name" { k = 3 }
` + "tail = 1\x00garbage after the NUL")
	if err != nil {
		t.Fatal(err)
	}
	vg := root.child("vg")
	if s, _ := vg.str("id"); s != `x"y\z` {
		t.Errorf("id %q", s)
	}
	if n, _ := vg.int("n"); n != 7 {
		t.Errorf("n %d", n)
	}
	if s, _ := vg.str("bare"); s != "word" {
		t.Errorf("bare %q", s)
	}
	if a := vg.strings("arr"); strings.Join(a, ",") != "a,single" {
		t.Errorf("arr %q", a)
	}
	if sec := vg.child("sec"); len(sec.children) != 2 {
		t.Errorf("sections not merged: %+v", sec)
	}
	if root.child("quoted name") == nil || root.child("tail") == nil {
		t.Errorf("root %+v", root.children)
	}
	for _, bad := range []string{
		strings.Repeat("a {", 1000),
		strings.Repeat("a {", 10) + strings.Repeat("}", 9),
		"a = ",
		"a = [1, 2",
		"a = [ { ]",
		`a = "unterminated`,
		"a = 99999999999999999999999",
		"= 1",
		"a b",
		"}",
	} {
		if _, err := parseConfig(bad); err == nil {
			t.Errorf("%.40q parsed", bad)
		}
	}
	if _, err := parseConfig(strings.Repeat("x", maxTextSize+1)); err == nil {
		t.Error("oversized text parsed")
	}
	big := "a = [" + strings.Repeat("1, ", 200000) + "]"
	if _, err := parseConfig(big); err != nil {
		t.Errorf("a long array: %v", err)
	}
}

// smallPV makes a PV with a volume group of two LVs, read back as bytes.
func smallPV(t testing.TB) (img []byte, e *lvmEnv) {
	e = newLVM(t, 8<<20)
	e.lvm("pvcreate", "-y", "--metadatasize", "32k", "--dataalignment", "4k", e.devs[0])
	e.lvm("vgcreate", "-s", "1m", "vgs", e.devs[0])
	e.lvm("lvcreate", "-an", "-Zn", "-L", "2M", "-n", "one", "vgs")
	e.lvm("lvcreate", "-an", "-Zn", "-i", "1", "-L", "3M", "-n", "two", "vgs")
	b, err := os.ReadFile(e.imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	return b, e
}

// mdaText returns the current metadata text of the first metadata area.
func mdaText(t testing.TB, img []byte) string {
	pv, err := ReadPV(bytes.NewReader(img), int64(len(img)))
	if err != nil || len(pv.Texts) == 0 {
		t.Fatalf("ReadPV: %v %+v", err, pv)
	}
	mt := pv.Texts[0]
	off := mt.Area.Offset + mt.Offset
	return string(img[off : off+mt.Size-1])
}

// setText writes text as the committed metadata of the first area (at
// its start) and fixes the CRCs, as a tool writing bad metadata would.
func setText(t testing.TB, img []byte, text string) {
	le := binary.LittleEndian
	const area = 4096
	h := img[area : area+512]
	b := append([]byte(text), 0)
	copy(img[area+512:], b)
	le.PutUint64(h[40:], 512)
	le.PutUint64(h[48:], uint64(len(b)))
	le.PutUint32(h[56:], lvmCRC(initialCRC, b))
	le.PutUint32(h[0:], lvmCRC(initialCRC, h[4:]))
}

func readBytes(img []byte) (*PV, error) { return ReadPV(bytes.NewReader(img), int64(len(img))) }

func TestHostilePV(t *testing.T) {
	orig, _ := smallPV(t)
	text := mdaText(t, orig)
	le := binary.LittleEndian

	t.Run("label CRC", func(t *testing.T) {
		img := bytes.Clone(orig)
		img[512+100] ^= 1
		if _, err := readBytes(img); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v", err)
		}
	})
	t.Run("no label", func(t *testing.T) {
		img := bytes.Clone(orig)
		copy(img[512:], "NOTLABEL")
		if _, err := readBytes(img); !errors.Is(err, ErrNoLabel) {
			t.Errorf("%v", err)
		}
	})
	t.Run("text outside the area", func(t *testing.T) {
		img := bytes.Clone(orig)
		h := img[4096 : 4096+512]
		le.PutUint64(h[40:], 1<<40)
		le.PutUint32(h[0:], lvmCRC(initialCRC, h[4:]))
		pv, err := readBytes(img)
		if err != nil || pv.VGName != "" || len(pv.Warnings) != 1 {
			t.Errorf("%v %+v", err, pv)
		}
	})
	t.Run("text larger than the area", func(t *testing.T) {
		img := bytes.Clone(orig)
		h := img[4096 : 4096+512]
		le.PutUint64(h[48:], 1<<40)
		le.PutUint32(h[0:], lvmCRC(initialCRC, h[4:]))
		if pv, err := readBytes(img); err != nil || pv.VGName != "" {
			t.Errorf("%v %+v", err, pv)
		}
	})
	t.Run("area larger than the volume", func(t *testing.T) {
		img := bytes.Clone(orig)
		h := img[4096 : 4096+512]
		le.PutUint64(h[32:], 1<<40)
		le.PutUint32(h[0:], lvmCRC(initialCRC, h[4:]))
		if pv, err := readBytes(img); err != nil || pv.VGName != "" {
			t.Errorf("%v %+v", err, pv)
		}
	})
	t.Run("text CRC", func(t *testing.T) {
		img := bytes.Clone(orig)
		mt, _ := readBytes(img)
		img[mt.Texts[0].Area.Offset+mt.Texts[0].Offset+10] ^= 1
		if pv, err := readBytes(img); err != nil || pv.VGName != "" || !strings.Contains(pv.Warnings[0], "CRC") {
			t.Errorf("%v %+v", err, pv)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		img := bytes.Clone(orig)
		setText(t, img, strings.Repeat("a {", 5000))
		if pv, err := readBytes(img); err != nil || pv.VGName != "" || !strings.Contains(pv.Warnings[0], "nested") {
			t.Errorf("%v %+v", err, pv)
		}
	})
	t.Run("extents past the PV", func(t *testing.T) {
		img := bytes.Clone(orig)
		setText(t, img, strings.Replace(text, `"pv0", 0`, `"pv0", 100000`, 1))
		pv, err := readBytes(img)
		if err != nil || pv.VGName != "vgs" {
			t.Fatalf("%v %+v", err, pv)
		}
		vgs, _ := Assemble([]*PV{pv})
		lv := vgs[0].lv("one")
		if lv.Supported || !strings.Contains(lv.Reason, "past its end") {
			t.Errorf("%+v", lv)
		}
		if _, err := lv.Open(); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("huge extent numbers", func(t *testing.T) {
		img := bytes.Clone(orig)
		bad := strings.Replace(text, "extent_count = 2", "extent_count = 9223372036854775807", 1)
		bad = strings.Replace(bad, `"pv0", 0`, `"pv0", 9223372036854775000`, 1)
		setText(t, img, bad)
		pv, _ := readBytes(img)
		vgs, _ := Assemble([]*PV{pv})
		if lv := vgs[0].lv("one"); lv == nil || lv.Supported {
			t.Errorf("%+v", lv)
		}
	})
	t.Run("stripes naming no PV", func(t *testing.T) {
		img := bytes.Clone(orig)
		setText(t, img, strings.Replace(text, `"pv0", 0`, `"pv9", 0`, 1))
		pv, _ := readBytes(img)
		vgs, _ := Assemble([]*PV{pv})
		if lv := vgs[0].lv("one"); lv == nil || lv.Supported || !strings.Contains(lv.Reason, "pv9") {
			t.Errorf("%+v", lv)
		}
	})
	t.Run("gap between segments", func(t *testing.T) {
		img := bytes.Clone(orig)
		setText(t, img, strings.Replace(text, "start_extent = 0", "start_extent = 5", 1))
		pv, _ := readBytes(img)
		vgs, _ := Assemble([]*PV{pv})
		if lv := vgs[0].lv("one"); lv == nil || lv.Supported || !strings.Contains(lv.Reason, "in no segment") {
			t.Errorf("%+v", lv)
		}
	})
	t.Run("volume cut short", func(t *testing.T) {
		img := bytes.Clone(orig[:3<<20]) // "two" lies past 3 MiB
		pv, err := readBytes(img)
		if err != nil {
			t.Fatal(err)
		}
		vgs, _ := Assemble([]*PV{pv})
		if one, two := vgs[0].lv("one"), vgs[0].lv("two"); !one.Supported || two.Supported {
			t.Errorf("one %+v two %+v", one, two)
		}
		if len(pv.Warnings) != 1 {
			t.Errorf("warnings %q", pv.Warnings)
		}
	})
	t.Run("two PVs with one UUID", func(t *testing.T) {
		a, _ := readBytes(orig)
		b, _ := readBytes(orig)
		vgs, warnings := Assemble([]*PV{a, b})
		if len(vgs) != 1 || len(warnings) != 1 {
			t.Errorf("%d VGs, %q", len(vgs), warnings)
		}
	})
}

// A PV created with --metadatacopies 0 carries no metadata: its volume
// group is found through the other PV.
func TestPVWithoutMetadata(t *testing.T) {
	e := newLVM(t, 16<<20, 16<<20)
	e.lvm("pvcreate", "-y", e.devs[0])
	e.lvm("pvcreate", "-y", "--metadatacopies", "0", e.devs[1])
	e.lvm("vgcreate", "-s", "1m", "vgm", e.devs[0], e.devs[1])
	e.lvm("lvcreate", "-an", "-Zn", "-l", "100%FREE", "-n", "all", "vgm")
	pvs := e.readPVs(0, 1)
	if pvs[1].VGName != "" || len(pvs[1].MetadataAreas) != 0 || pvs[0].VGName != "vgm" {
		t.Fatalf("%+v %+v", pvs[0], pvs[1])
	}
	vgs, warnings := Assemble(pvs)
	if len(vgs) != 1 || len(warnings) != 0 {
		t.Fatalf("%d VGs, %q", len(vgs), warnings)
	}
	lv := vgs[0].lv("all")
	lvs := e.report("lv", "lvs", "-o", "lv_name,lv_size")
	if lv == nil || !lv.Supported || lv.Size != atoi(t, lvs[0]["lv_size"]) || len(lv.Segments) != 2 {
		t.Errorf("%+v; lvs %v", lv, lvs)
	}
	// Alone, the metadata-less PV is an orphan: no volume group.
	if vgs, _ := Assemble(pvs[1:]); len(vgs) != 0 {
		t.Errorf("%+v", vgs)
	}
}
