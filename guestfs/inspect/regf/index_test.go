package regf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/guestfs/inspect/regf"
	"github.com/ovfmount/ovfmount/internal/regftest"
)

// withIndex rewrites the subkey list of the key at path into an index
// (ri) of two lists, an li and an lh holding half the entries each, as
// Windows writes keys with many subkeys: a new bin is appended for them,
// and the header's size and checksum are updated. hivex never writes
// indexes, so this is how one is made; hivexml reading the result is the
// oracle that it is right.
func withIndex(t *testing.T, hive []byte, h *regf.Hive, path string) []byte {
	t.Helper()
	le := binary.LittleEndian
	k, err := h.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	nk := 0x1000 + int(k.Offset()) + 4
	list := 0x1000 + int(le.Uint32(hive[nk+0x1c:])) + 4
	if sig := string(hive[list : list+2]); sig != "lh" {
		t.Fatalf("hivex wrote a %q list", sig)
	}
	n := int(le.Uint16(hive[list+2:]))
	type ent struct{ off, hash uint32 }
	var ents []ent
	for i := 0; i < n; i++ {
		ents = append(ents, ent{le.Uint32(hive[list+4+8*i:]), le.Uint32(hive[list+8+8*i:])})
	}
	half := n / 2
	binsSize := int(le.Uint32(hive[0x28:]))
	binOff := binsSize // relative to 0x1000
	bin := make([]byte, 4096+((n*8+64)/4096)*4096)
	copy(bin, "hbin")
	le.PutUint32(bin[4:], uint32(binOff))
	le.PutUint32(bin[8:], uint32(len(bin)))
	pos := 0x20
	cell := func(payload []byte) uint32 {
		size := (4 + len(payload) + 7) &^ 7
		le.PutUint32(bin[pos:], uint32(-int32(size)))
		copy(bin[pos+4:], payload)
		off := uint32(binOff + pos)
		pos += size
		return off
	}
	li := []byte{'l', 'i', 0, 0}
	le.PutUint16(li[2:], uint16(half))
	for _, e := range ents[:half] {
		li = le.AppendUint32(li, e.off)
	}
	lh := []byte{'l', 'h', 0, 0}
	le.PutUint16(lh[2:], uint16(n-half))
	for _, e := range ents[half:] {
		lh = le.AppendUint32(lh, e.off)
		lh = le.AppendUint32(lh, e.hash)
	}
	ri := []byte{'r', 'i', 2, 0}
	ri = le.AppendUint32(ri, cell(li))
	ri = le.AppendUint32(ri, cell(lh))
	riOff := cell(ri)
	le.PutUint32(bin[pos:], uint32(len(bin)-pos)) // the rest is free
	out := append(bytes.Clone(hive[:0x1000+binsSize]), bin...)
	le.PutUint32(out[nk+0x1c:], riOff)
	le.PutUint32(out[0x28:], uint32(binsSize+len(bin)))
	var sum uint32
	for i := 0; i < 0x1fc; i += 4 {
		sum ^= le.Uint32(out[i:])
	}
	le.PutUint32(out[0x1fc:], sum)
	return out
}

func TestIndexMatchesHivex(t *testing.T) {
	var reg strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&reg, "[\\Big\\Sub%03d]\n\"v\"=dword:%08x\n", i, i)
	}
	dir := t.TempDir()
	p := regftest.Build(t, dir, "HIVE", reg.String())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := regf.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	idx := withIndex(t, b, h, "Big")
	q := p + ".ri"
	if err := os.WriteFile(q, idx, 0o644); err != nil {
		t.Fatal(err)
	}
	want := regftest.Dump(t, q)
	if len(want.Keys) != 1 || len(want.Keys[0].Keys) != 300 {
		t.Fatalf("hivexml reads the indexed hive as %d keys", len(want.Keys))
	}
	h = openHive(t, q)
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var keys, values int
	compare(t, root, want, "", &keys, &values)
	for _, name := range []string{"Sub000", "sub149", "SUB150", "Sub299"} {
		if k, err := h.Open(`Big\` + name); err != nil || !strings.EqualFold(k.Name, name) {
			t.Errorf("open through the index %q: %v", name, err)
		}
	}
	if _, err := h.Open(`Big\Sub300`); err == nil {
		t.Error("a key that is not there was found")
	}
	t.Logf("%d keys and %d values compared with hivexml through an ri of an li and an lh", keys, values)

	// An index that lists itself (what overflows velocidex regparser's
	// stack) is an error, found at once.
	le := binary.LittleEndian
	big, err := h.Open("Big")
	if err != nil {
		t.Fatal(err)
	}
	nk := 0x1000 + int(big.Offset()) + 4
	riOff := le.Uint32(idx[nk+0x1c:])
	loop := bytes.Clone(idx)
	le.PutUint32(loop[0x1000+int(riOff)+4+4:], riOff)
	h, err = regf.Open(bytes.NewReader(loop), int64(len(loop)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Open(`Big\Sub299`); !errors.Is(err, regf.ErrCorrupt) {
		t.Errorf("lookup through a self-listing index: %v, want ErrCorrupt", err)
	}
}
