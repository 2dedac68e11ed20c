// Package regftest makes Windows registry hives for tests with the real
// tools: hivex's hivexregedit writes the keys and values into a blank hive,
// and hivexml reads a hive back as the oracle a parser is compared with.
//
// The blank hive (a header, one bin, an empty root key and its security
// record) is the only part written here: no Debian package ships an empty
// hive and neither hivex nor Samba's tools create one from nothing. Every
// structure a reader looks keys and values up through (subkey lists,
// value lists, value records, data cells, further bins) is hivex's.
package regftest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// Blank returns an empty hive whose root key is named root: what
// `hivexsh -w` needs to start from.
func Blank(root string) []byte {
	const bin = 4096
	b := make([]byte, 0x1000+bin)
	le := binary.LittleEndian
	copy(b, "regf")
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], 1)
	le.PutUint32(b[0x14:], 1) // major version
	le.PutUint32(b[0x18:], 5) // minor version (XP and later)
	le.PutUint32(b[0x1c:], 0) // primary file
	le.PutUint32(b[0x20:], 1) // direct memory load format
	le.PutUint32(b[0x24:], 0x20)
	le.PutUint32(b[0x28:], bin)
	le.PutUint32(b[0x2c:], 1)

	h := b[0x1000:]
	copy(h, "hbin")
	le.PutUint32(h[4:], 0)
	le.PutUint32(h[8:], bin)

	// The root key at cell offset 0x20.
	nk := 0x20
	nkLen := align8(4 + 0x4c + len(root))
	le.PutUint32(h[nk:], uint32(-int32(nkLen)))
	p := h[nk+4:]
	copy(p, "nk")
	le.PutUint16(p[2:], 0x2c) // hive entry, no delete, ASCII name
	skOff := nk + nkLen
	for _, o := range []int{0x1c, 0x20, 0x28, 0x30} {
		le.PutUint32(p[o:], 0xffffffff) // no subkeys, volatile subkeys, values, class
	}
	le.PutUint32(p[0x2c:], uint32(skOff))
	le.PutUint16(p[0x48:], uint16(len(root)))
	copy(p[0x4c:], root)

	// Its security record: a self-relative descriptor, owner
	// Administrators, group SYSTEM, a DACL granting Everyone full access.
	sd := securityDescriptor()
	skLen := align8(4 + 0x14 + len(sd))
	le.PutUint32(h[skOff:], uint32(-int32(skLen)))
	s := h[skOff+4:]
	copy(s, "sk")
	le.PutUint32(s[4:], uint32(skOff))
	le.PutUint32(s[8:], uint32(skOff))
	le.PutUint32(s[0xc:], 1)
	le.PutUint32(s[0x10:], uint32(len(sd)))
	copy(s[0x14:], sd)

	// The rest of the bin is one free cell.
	free := skOff + skLen
	le.PutUint32(h[free:], uint32(bin-free))

	var sum uint32
	for i := 0; i < 0x1fc; i += 4 {
		sum ^= le.Uint32(b[i:])
	}
	switch sum {
	case 0:
		sum = 1
	case 0xffffffff:
		sum = 0xfffffffe
	}
	le.PutUint32(b[0x1fc:], sum)
	return b
}

func align8(n int) int { return (n + 7) &^ 7 }

func sid(auth byte, sub ...uint32) []byte {
	b := []byte{1, byte(len(sub)), 0, 0, 0, 0, 0, auth}
	for _, s := range sub {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return b
}

func securityDescriptor() []byte {
	owner, group, everyone := sid(5, 32, 544), sid(5, 18), sid(1, 0)
	ace := []byte{0, 0, 0, 0} // ACCESS_ALLOWED, no flags, size below
	ace = binary.LittleEndian.AppendUint32(ace, 0xf003f)
	ace = append(ace, everyone...)
	binary.LittleEndian.PutUint16(ace[2:], uint16(len(ace)))
	acl := []byte{2, 0, 0, 0, 1, 0, 0, 0}
	acl = append(acl, ace...)
	binary.LittleEndian.PutUint16(acl[2:], uint16(len(acl)))
	sd := make([]byte, 20)
	sd[0] = 1
	binary.LittleEndian.PutUint16(sd[2:], 0x8004) // self-relative, DACL present
	binary.LittleEndian.PutUint32(sd[4:], 20)
	binary.LittleEndian.PutUint32(sd[8:], uint32(20+len(owner)))
	binary.LittleEndian.PutUint32(sd[16:], uint32(20+len(owner)+len(group)))
	sd = append(sd, owner...)
	sd = append(sd, group...)
	return append(sd, acl...)
}

// Build writes a blank hive to dir/name, merges reg into it with
// hivexregedit and returns the hive's path. reg is in the format regedit
// exports (without its first line): sections "[\Path\Of\Key]" relative to
// the hive's root, each followed by its values ("Name"="text",
// "Name"=dword:0000000a, "Name"=hex(7):61,00,..., @="default"); values of
// any length may be continued over lines ending in a backslash. Text
// values must be ASCII (hivexregedit reads the file as Latin-1): others
// go in as hex(1):... with their UTF-16LE bytes. The ancestors of each
// section are added before it, as hivexregedit wants them.
func Build(t testing.TB, dir, name, reg string) string {
	t.Helper()
	tool := testutil.RequireTool(t, "hivexregedit")
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, Blank("ROOT"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("Windows Registry Editor Version 5.00\n\n")
	seen := map[string]bool{}
	for _, line := range strings.Split(reg, "\n") {
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			path := strings.Trim(line[1:len(line)-1], `\`)
			parts := strings.Split(path, `\`)
			for i := 1; i <= len(parts); i++ {
				anc := strings.Join(parts[:i], `\`)
				if !seen[anc] {
					seen[anc] = true
					fmt.Fprintf(&b, "\n[HIVE\\%s]\n", anc)
				}
			}
			continue
		}
		b.WriteString(line + "\n")
	}
	regFile := p + ".reg"
	if err := os.WriteFile(regFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "--merge", "--prefix", "HIVE", p, regFile).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("hivexregedit: %v: %s", err, out)
	}
	return p
}

// Key is a key as hivexml shows it.
type Key struct {
	Name   string
	Keys   []*Key
	Values []Value
}

// Value is a value as hivexml shows it: Data is its bytes as stored
// (binary types) or its text (string types), Number a number's value,
// Strings a string list's strings. hivexml names REG_DWORD and
// REG_DWORD_BIG_ENDIAN alike: both have Type 4.
type Value struct {
	Name    string
	Type    uint32
	Data    []byte
	Number  uint64
	Strings []string
}

type xmlNode struct {
	Name   string     `xml:"name,attr"`
	Nodes  []xmlNode  `xml:"node"`
	Values []xmlValue `xml:"value"`
}

type xmlValue struct {
	Type     string   `xml:"type,attr"`
	Key      string   `xml:"key,attr"`
	Value    string   `xml:"value,attr"`
	Encoding string   `xml:"encoding,attr"`
	Default  string   `xml:"default,attr"`
	Strings  []string `xml:"string"`
}

// Dump reads a hive with hivexml: the oracle's view of every key and
// value, with each value's bytes as stored.
func Dump(t testing.TB, hive string) *Key {
	t.Helper()
	tool := testutil.RequireTool(t, "hivexml")
	out, err := exec.Command(tool, "-k", hive).Output()
	if err != nil {
		t.Fatalf("hivexml %s: %v", hive, err)
	}
	var doc struct {
		Node xmlNode `xml:"node"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("hivexml output: %v", err)
	}
	var conv func(n xmlNode) *Key
	conv = func(n xmlNode) *Key {
		k := &Key{Name: n.Name}
		for _, c := range n.Nodes {
			k.Keys = append(k.Keys, conv(c))
		}
		for _, v := range n.Values {
			k.Values = append(k.Values, convValue(t, v))
		}
		return k
	}
	return conv(doc.Node)
}

// hivexml's type names; the data is in "value" as base64 when encoding
// says so, else as text (strings) or a number (dwords, qwords).
var xmlTypes = map[string]uint32{
	"none": 0, "string": 1, "expand": 2, "binary": 3, "int32": 4, "link": 6,
	"string-list": 7, "resource-list": 8, "full-resource-description": 9, "resource-requirements-list": 10, "int64": 11,
}

func convValue(t testing.TB, v xmlValue) Value {
	out := Value{Name: v.Key}
	typ, ok := xmlTypes[v.Type]
	if !ok {
		if _, err := fmt.Sscanf(v.Type, "unknown(%d)", &typ); err != nil {
			t.Fatalf("hivexml: value %q of type %q", v.Key, v.Type)
		}
	}
	out.Type = typ
	if typ == 7 {
		out.Strings = v.Strings
		return out
	}
	if v.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(v.Value)
		if err != nil {
			t.Fatalf("hivexml: value %q: %v", v.Key, err)
		}
		out.Data = b
		return out
	}
	switch typ {
	case 4, 11:
		// hivexml prints numbers signed.
		var n int64
		if _, err := fmt.Sscanf(v.Value, "%d", &n); err != nil {
			t.Fatalf("hivexml: value %q: number %q", v.Key, v.Value)
		}
		out.Number = uint64(n)
		if typ == 4 {
			out.Number = uint64(uint32(n))
		}
	default:
		out.Data = []byte(v.Value) // text; the caller compares decoded strings
	}
	return out
}

// Find returns the value named value of the key at path (backslash-
// separated, below k), matching names as Windows does, ignoring case.
func (k *Key) Find(path, value string) (Value, bool) {
	cur := k
	for _, name := range strings.Split(path, `\`) {
		if name == "" {
			continue
		}
		var next *Key
		for _, c := range cur.Keys {
			if strings.EqualFold(c.Name, name) {
				next = c
				break
			}
		}
		if next == nil {
			return Value{}, false
		}
		cur = next
	}
	for _, v := range cur.Values {
		if strings.EqualFold(v.Name, value) {
			return v, true
		}
	}
	return Value{}, false
}
