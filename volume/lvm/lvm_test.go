package lvm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// scenario is a volume group made by the real tools on two PVs: linear
// volumes (one of two segments on two PVs), striped ones (64 KiB and
// 4 KiB stripes), an odd name, and, through vgcfgbackup/vgcfgrestore (the
// tools refuse to create them without device-mapper), a thin pool with a
// thin volume and a snapshot.
type scenario struct {
	e    *lvmEnv
	segs []map[string]string // lvs -a --segments
	vgs  map[string]string
	pvs  []map[string]string
}

func newScenario(t *testing.T) *scenario {
	e := newLVM(t, 64<<20, 64<<20)
	a, b := e.devs[0], e.devs[1]
	e.lvm("pvcreate", "-y", a)
	e.lvm("pvcreate", "-y", "--pvmetadatacopies", "2", b) // a metadata area at each end
	e.lvm("vgcreate", "-s", "1m", "vg0", a, b)
	lv := func(args ...string) { e.lvm(append([]string{"lvcreate", "-an", "-Zn"}, args...)...) }
	lv("-L", "6M", "-n", "lin", "vg0", a)
	lv("-L", "4M", "-n", "two", "vg0", b)
	e.lvm("lvextend", "-L", "+3M", "vg0/lin", b)
	lv("-i", "2", "-I", "64k", "-L", "8M", "-n", "str", "vg0")
	lv("-i", "2", "-I", "4k", "-L", "2M", "-n", "str4k", "vg0")
	lv("-L", "4M", "-n", "pdata", "vg0")
	lv("-L", "2M", "-n", "pmeta", "vg0")
	lv("-L", "4M", "-n", "snap", "vg0")
	lv("-L", "1M", "-n", "odd+name_1.x-y", "vg0")
	addThinAndSnapshot(t, e)
	s := &scenario{e: e}
	s.segs = e.report("seg", "lvs", "-a", "--segments", "-o",
		"lv_name,lv_uuid,lv_attr,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges,stripes,stripe_size,origin,lv_size")
	s.vgs = e.report("vg", "vgs", "-o", "vg_name,vg_uuid,vg_extent_size,vg_seqno")[0]
	s.pvs = e.report("pv", "pvs", "-o", "pv_name,pv_uuid,pe_start,dev_size")
	return s
}

// addThinAndSnapshot turns pdata and pmeta into a thin pool's hidden
// data and metadata volumes, adds the pool and a thin volume, and makes
// snap a snapshot of lin, by editing the text vgcfgbackup writes and
// restoring it with vgcfgrestore, which checks it and writes it to the
// PVs in its own format.
func addThinAndSnapshot(t *testing.T, e *lvmEnv) {
	file := e.dir + "/vg0.txt"
	e.lvm("vgcfgbackup", "-f", file, "vg0")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, r := range [][2]string{{"pdata", "pool_tdata"}, {"pmeta", "pool_tmeta"}} {
		i := strings.Index(text, "\t\t"+r[0]+" {")
		j := strings.Index(text[i:], `, "VISIBLE"`)
		if i < 0 || j < 0 {
			t.Fatalf("vgcfgbackup text has no %s", r[0])
		}
		text = text[:i] + "\t\t" + r[1] + text[i+2+len(r[0]):i+j] + text[i+j+len(`, "VISIBLE"`):]
	}
	extra := `
		pool {
			id = "Pooool-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 4
				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 1
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1
			}
		}
		thin {
			id = "Thinnn-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 16
				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 1
			}
		}
		snapshot0 {
			id = "Snapsh-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"
			status = ["READ"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 9
				type = "snapshot"
				chunk_size = 8
				origin = "lin"
				cow_store = "snap"
			}
		}
`
	k := strings.LastIndex(text, "\t}\n\n}")
	if k < 0 {
		t.Fatal("vgcfgbackup text: end of logical_volumes not found")
	}
	text = text[:k] + extra + text[k:]
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e.lvm("vgcfgrestore", "--force", "-f", file, "vg0")
}

// fill writes a pattern over the extents lvs says the volumes use: each
// 512-byte sector says which PV and byte it is, so any misplaced read
// shows.
func (s *scenario) fill(t *testing.T) {
	extent := atoi(t, s.vgs["vg_extent_size"])
	files := map[string]*os.File{}
	for i, dev := range s.e.devs {
		f, err := os.OpenFile(s.e.imgs[i], os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[dev] = f
	}
	pvIdx := map[string]int{}
	for i, d := range s.e.devs {
		pvIdx[d] = i
	}
	for _, seg := range s.segs {
		for _, r := range strings.Fields(seg["seg_pe_ranges"]) {
			dev, pes, _ := strings.Cut(r, ":")
			f := files[dev]
			if f == nil {
				continue // a range of another LV, as a thin pool's
			}
			first, last, _ := strings.Cut(pes, "-")
			i := pvIdx[dev]
			off := atoi(t, s.pvs[i]["pe_start"]) + atoi(t, first)*extent
			buf := make([]byte, (atoi(t, last)-atoi(t, first)+1)*extent)
			pattern(buf, i, off)
			if _, err := f.WriteAt(buf, off); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// pattern fills b, which lies at off on PV pv, with the sectors of the
// pattern.
func pattern(b []byte, pv int, off int64) {
	var filler [512]byte
	for j := range filler {
		filler[j] = byte(j) ^ byte(pv)
	}
	for i := 0; i < len(b); i += 512 {
		sec := b[i : i+512]
		h := strconv.AppendInt(append(append(sec[:0], "PV "...), byte('0'+pv), ' '), off+int64(i), 10)
		copy(sec[len(h):], filler[len(h):])
	}
}

// expected builds an LV's bytes from what lvs reports (segment starts,
// sizes, PE ranges, stripes, stripe size) and the pattern, with the
// striped mapping device-mapper uses: chunk c of a segment is chunk c/N
// of stripe c%N.
func (s *scenario) expected(t *testing.T, name string) []byte {
	extent := atoi(t, s.vgs["vg_extent_size"])
	pvIdx := map[string]int{}
	for i, d := range s.e.devs {
		pvIdx[d] = i
	}
	var out []byte
	for _, seg := range s.segs {
		if strings.Trim(seg["lv_name"], "[]") != name {
			continue
		}
		start, count := atoi(t, seg["seg_start_pe"]), atoi(t, seg["seg_size_pe"])
		if int64(len(out)) != start*extent {
			t.Fatalf("%s: lvs segments out of order", name)
		}
		type rng struct {
			pv int
			pe int64
		}
		var ranges []rng
		for _, r := range strings.Fields(seg["seg_pe_ranges"]) {
			dev, pes, _ := strings.Cut(r, ":")
			first, _, _ := strings.Cut(pes, "-")
			ranges = append(ranges, rng{pvIdx[dev], atoi(t, first)})
		}
		n := int64(len(ranges))
		ss := atoi(t, seg["stripe_size"])
		if n == 1 {
			ss = count * extent
		}
		peStart := make([]int64, len(ranges))
		for i, r := range ranges {
			peStart[i] = atoi(t, s.pvs[r.pv]["pe_start"]) + r.pe*extent
		}
		base := len(out)
		out = append(out, make([]byte, count*extent)...)
		for rel := int64(0); rel < count*extent; rel += 512 {
			chunk := rel / ss
			k := chunk % n
			pattern(out[base+int(rel):base+int(rel)+512], ranges[k].pv, peStart[k]+chunk/n*ss+rel%ss)
		}
	}
	return out
}

func (s *scenario) assemble(t *testing.T, idx ...int) *VG {
	vgs, warnings := Assemble(s.e.readPVs(idx...))
	if len(vgs) != 1 || len(warnings) != 0 {
		t.Fatalf("Assemble: %d VGs, warnings %q", len(vgs), warnings)
	}
	return vgs[0]
}

func (vg *VG) lv(name string) *LV {
	for _, lv := range vg.LVs {
		if lv.Name == name {
			return lv
		}
	}
	return nil
}

func TestVolumeGroup(t *testing.T) {
	s := newScenario(t)
	s.fill(t)
	vg := s.assemble(t, 0, 1)

	t.Run("metadata", func(t *testing.T) {
		if vg.Name != s.vgs["vg_name"] || vg.UUID != s.vgs["vg_uuid"] ||
			vg.ExtentSize != atoi(t, s.vgs["vg_extent_size"]) || vg.Seqno != atoi(t, s.vgs["vg_seqno"]) {
			t.Errorf("VG %s %s extent %d seqno %d; vgs: %v", vg.Name, vg.UUID, vg.ExtentSize, vg.Seqno, s.vgs)
		}
		if len(vg.Warnings) != 0 {
			t.Errorf("warnings %q", vg.Warnings)
		}
		for i, p := range s.pvs {
			pv := vg.PVs[i]
			if pv.UUID != p["pv_uuid"] || pv.PEStart != atoi(t, p["pe_start"]) || pv.PV == nil || pv.PV.UUID != p["pv_uuid"] ||
				pv.PV.PEStart != pv.PEStart {
				t.Errorf("PV %d: %+v; pvs: %v", i, pv, p)
			}
		}
	})

	t.Run("volumes", func(t *testing.T) {
		listed := map[string]bool{}
		for _, seg := range s.segs {
			name := strings.Trim(seg["lv_name"], "[]")
			lv := vg.lv(name)
			if lv == nil {
				t.Errorf("LV %s missing", name)
				continue
			}
			first := !listed[name]
			listed[name] = true
			hidden := strings.HasPrefix(seg["lv_name"], "[")
			if lv.UUID != seg["lv_uuid"] || lv.Size != atoi(t, seg["lv_size"]) || lv.Visible == hidden {
				t.Errorf("%s: uuid %s size %d visible %v; lvs: %v", name, lv.UUID, lv.Size, lv.Visible, seg)
			}
			wantType := seg["segtype"]
			if seg["origin"] != "" && lv.Name != "thin" {
				wantType = "snapshot" // lvs lists the COW volume as the snapshot
			}
			if first && lv.Type != wantType && !(wantType == "linear" && lv.Type == "striped") {
				t.Errorf("%s: type %s, lvs says %s", name, lv.Type, wantType)
			}
			wantSupported := (wantType == "linear" || wantType == "striped")
			if lv.Supported != wantSupported || (lv.Reason == "") != wantSupported {
				t.Errorf("%s: supported %v (%s), want %v", name, lv.Supported, lv.Reason, wantSupported)
			}
			// The segment itself.
			start := atoi(t, seg["seg_start_pe"])
			var got *Segment
			for i := range lv.Segments {
				if lv.Segments[i].Start == start {
					got = &lv.Segments[i]
				}
			}
			if got == nil || got.Count != atoi(t, seg["seg_size_pe"]) || got.Type != seg["segtype"] {
				t.Errorf("%s: segment at LE %d: %+v; lvs: %v", name, start, got, seg)
				continue
			}
			if got.Type == "linear" || got.Type == "striped" {
				var ranges []string
				for _, st := range got.Stripes {
					dev := ""
					for i, p := range vg.PVs {
						if p.Name == st.PV {
							dev = s.e.devs[i]
						}
					}
					ranges = append(ranges, fmt.Sprintf("%s:%d-%d", dev, st.PEStart, st.PEStart+got.Count/int64(len(got.Stripes))-1))
				}
				if strings.Join(ranges, " ") != seg["seg_pe_ranges"] || got.StripeSize != atoi(t, seg["stripe_size"]) {
					t.Errorf("%s: ranges %q stripe %d; lvs: %q %s", name, ranges, got.StripeSize, seg["seg_pe_ranges"], seg["stripe_size"])
				}
			}
		}
		for _, lv := range vg.LVs {
			// lvs does not list a snapshot's internal snapshotN volume.
			if !listed[lv.Name] && !(lv.Type == "snapshot" && !lv.Visible) {
				t.Errorf("LV %s is not listed by lvs", lv.Name)
			}
		}
		if pool := vg.lv("pool"); pool == nil || len(pool.Segments) != 1 ||
			strings.Join(pool.Segments[0].LVs, ",") != "pool_tmeta,pool_tdata" {
			t.Errorf("pool: %+v", pool)
		}
	})

	t.Run("contents", func(t *testing.T) {
		checked := 0
		for _, lv := range vg.LVs {
			if !lv.Supported {
				if _, err := lv.Open(); !errors.Is(err, ErrUnsupported) {
					t.Errorf("%s: Open: %v, want ErrUnsupported", lv.Name, err)
				}
				continue
			}
			rd, err := lv.Open()
			if err != nil {
				t.Fatalf("%s: %v", lv.Name, err)
			}
			want := s.expected(t, lv.Name)
			checkReader(t, lv.Name, rd, want)
			checked++
		}
		if checked != 7 {
			t.Errorf("%d volumes read, want 7", checked)
		}
	})

	t.Run("missing PV", func(t *testing.T) {
		// LVM's own view with the second PV gone: lv_attr's ninth
		// character is 'p' (partial) for a volume on the missing PV.
		s.e.filter(s.e.devs[0])
		out, errOut, err := s.e.lvmErr("lvs", "-a", "-o", "lv_name,lv_attr,segtype", "--noheadings", "--separator", ",")
		s.e.filter(s.e.devs...)
		if err != nil && !strings.Contains(errOut, "Couldn't find device") {
			t.Fatalf("lvs with a PV missing: %v\n%s", err, errOut)
		}
		vgs, warnings := Assemble(s.e.readPVs(0))
		if len(vgs) != 1 || len(warnings) != 0 {
			t.Fatalf("%d VGs, %q", len(vgs), warnings)
		}
		vg := vgs[0]
		if len(vg.Warnings) != 1 || !strings.Contains(vg.Warnings[0], "is missing") {
			t.Errorf("warnings %q", vg.Warnings)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(strings.TrimSpace(line), ",")
			if len(f) != 3 || (f[2] != "linear" && f[2] != "striped") {
				continue
			}
			lv := vg.lv(strings.Trim(f[0], "[]"))
			partial := len(f[1]) > 8 && f[1][8] == 'p'
			if lv == nil || lv.Type == "snapshot" {
				continue
			}
			n++
			if lv.Supported == partial || (partial && !strings.Contains(lv.Reason, "missing PV")) {
				t.Errorf("%s: supported %v (%s); lvs attr %s", lv.Name, lv.Supported, lv.Reason, f[1])
			}
		}
		if n < 6 {
			t.Errorf("only %d volumes compared:\n%s", n, out)
		}
	})
}

// checkReader reads a volume whole in odd-sized pieces, and at random
// places across segment and stripe boundaries, and compares with want.
func checkReader(t *testing.T, name string, rd *Reader, want []byte) {
	t.Helper()
	if rd.Size() != int64(len(want)) {
		t.Errorf("%s: size %d, want %d", name, rd.Size(), len(want))
		return
	}
	got := make([]byte, len(want))
	for off := 0; off < len(got); {
		n := min(len(got)-off, 100<<10+37)
		if k, err := rd.ReadAt(got[off:off+n], int64(off)); k != n || (err != nil && err != io.EOF) {
			t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", name, off, n, k, err)
		}
		off += n
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: differs from byte %d: %q, want %q", name, i, got[i:i+32], want[i:i+32])
	}
	rng := rand.New(rand.NewSource(int64(len(want))))
	for i := 0; i < 40; i++ {
		off := rng.Int63n(int64(len(want)))
		n := rng.Intn(300 << 10)
		b := make([]byte, n)
		k, err := rd.ReadAt(b, off)
		end := min(off+int64(n), int64(len(want)))
		if int64(k) != end-off || (k < n && err != io.EOF) || !bytes.Equal(b[:k], want[off:end]) {
			t.Fatalf("%s: ReadAt(%d, %d) = %d, %v, or wrong bytes", name, off, n, k, err)
		}
	}
	if k, err := rd.ReadAt(make([]byte, 10), int64(len(want))); k != 0 || err != io.EOF {
		t.Errorf("%s: read at the end: %d, %v", name, k, err)
	}
}

// Metadata written many times into a small metadata area wraps around
// its end; each version must read as LVM reads it.
func TestMetadataWrap(t *testing.T) {
	e := newLVM(t, 16<<20)
	// The smallest area LVM makes (32 KiB) holds a dozen versions of a
	// 2.5 KiB text: one in a dozen or so wraps, as alignment falls.
	e.lvm("pvcreate", "-y", "--metadatasize", "32k", "--dataalignment", "4k", e.devs[0])
	e.lvm("vgcreate", "-s", "1m", "vgw", e.devs[0])
	for i := 0; i < 6; i++ {
		e.lvm("lvcreate", "-an", "-Zn", "-L", "1M", "-n", fmt.Sprintf("volume_with_a_long_name_%d", i), "vgw")
	}
	wrapped := 0
	for i := 0; i < 40 && wrapped < 1; i++ {
		from, to := "volume_with_a_long_name_0", "renamed"
		if i%2 == 1 {
			from, to = to, from
		}
		e.lvm("lvrename", "vgw", from, to)
		pv := e.readPVs(0)[0]
		if len(pv.Texts) != 1 || pv.MetadataAreas[0].Size != 32<<10 {
			t.Fatalf("areas %+v texts %+v, warnings %q", pv.MetadataAreas, pv.Texts, pv.Warnings)
		}
		if !pv.Texts[0].Wrapped {
			continue
		}
		wrapped++
		vgs, _ := Assemble([]*PV{pv})
		var names []string
		for _, lv := range vgs[0].LVs {
			names = append(names, lv.Name)
		}
		var lvs []string
		for _, r := range e.report("lv", "lvs", "-o", "lv_name") {
			lvs = append(lvs, r["lv_name"])
		}
		sort.Strings(names)
		sort.Strings(lvs)
		seqno := e.report("vg", "vgs", "-o", "vg_seqno")[0]["vg_seqno"]
		if pv.Seqno != atoi(t, seqno) || strings.Join(names, " ") != strings.Join(lvs, " ") {
			t.Errorf("seqno %d, LVs %q; vgs says seqno %s, lvs lists %q", pv.Seqno, names, seqno, lvs)
		}
	}
	if wrapped < 1 {
		t.Fatal("the metadata never wrapped around the area")
	}
}

// A PV with two metadata areas whose first header is destroyed is read
// from its second, as LVM reads it.
func TestSecondMetadataArea(t *testing.T) {
	e := newLVM(t, 16<<20)
	e.lvm("pvcreate", "-y", "--pvmetadatacopies", "2", e.devs[0])
	e.lvm("vgcreate", "-s", "1m", "vg2", e.devs[0])
	e.lvm("lvcreate", "-an", "-Zn", "-L", "3M", "-n", "data", "vg2")
	pv := e.readPVs(0)[0]
	if len(pv.MetadataAreas) != 2 || len(pv.Texts) != 2 {
		t.Fatalf("areas %+v texts %+v", pv.MetadataAreas, pv.Texts)
	}
	f, err := os.OpenFile(e.imgs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 512), pv.MetadataAreas[0].Offset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pv = e.readPVs(0)[0]
	if len(pv.Texts) != 1 || len(pv.Warnings) != 1 || pv.VGName != "vg2" {
		t.Errorf("texts %+v warnings %q", pv.Texts, pv.Warnings)
	}
	// LVM too reads the volume group from the second area.
	vgs := e.report("vg", "vgs", "-o", "vg_name,vg_seqno")
	if len(vgs) != 1 || vgs[0]["vg_name"] != "vg2" || atoi(t, vgs[0]["vg_seqno"]) != pv.Seqno {
		t.Errorf("vgs: %v, seqno %d", vgs, pv.Seqno)
	}
}

// Tags with '#' and '=' and a command line with quotes and backslashes
// (which LVM writes into the text's description, escaped) parse as LVM
// parses them.
func TestTagsAndEscapes(t *testing.T) {
	e := newLVM(t, 16<<20)
	e.lvm("pvcreate", "-y", e.devs[0])
	e.lvm("vgcreate", "-s", "1m", "vg3", e.devs[0])
	e.lvm("lvcreate", "-an", "-Zn", "-L", "3M", "-n", "data", "--addtag", "a=b#c:x/y", "--addtag", "second",
		"--config", `log { prefix = "  q\"uo\\te " }`, "vg3")
	vgs, _ := Assemble(e.readPVs(0))
	if len(vgs) != 1 || vgs[0].lv("data") == nil {
		t.Fatalf("%+v", vgs)
	}
	lvs := e.report("lv", "lvs", "-o", "lv_name,lv_tags")
	if got := strings.Join(vgs[0].lv("data").Tags, ","); len(lvs) != 1 || got != lvs[0]["lv_tags"] {
		t.Errorf("tags %q; lvs: %v", got, lvs)
	}
}
