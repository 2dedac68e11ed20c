package regf_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ovfmount/ovfmount/guestfs/inspect/regf"
	"github.com/ovfmount/ovfmount/internal/regftest"
)

// utf16hex is a string's UTF-16LE bytes with the terminating NUL, as
// regedit's hex(N): syntax writes them.
func utf16hex(s string) string {
	var b []byte
	for _, u := range append(utf16.Encode([]rune(s)), 0) {
		b = append(b, byte(u), byte(u>>8))
	}
	return hexBytes(b)
}

// hexBytes writes bytes as regedit does, continued over lines of about
// 80 characters.
func hexBytes(b []byte) string {
	var out strings.Builder
	for i, c := range b {
		if i > 0 {
			out.WriteString(",")
			if i%25 == 0 {
				out.WriteString("\\\n  ")
			}
		}
		fmt.Fprintf(&out, "%02x", c)
	}
	return out.String()
}

// testReg has hivexregedit write keys and values of every kind a reader
// meets: a key with hundreds of subkeys (a long lh list, the hive grown
// over many bins), names in Latin-1 and UTF-16, every value type, data
// held in the record, in a cell, and over 16 KiB.
func testReg(subkeys int) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	big := make([]byte, 40000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	w(`[\Microsoft\Windows NT\CurrentVersion]`)
	w(`"ProductName"="Windows Server 2019 Datacenter"`)
	w(`"CurrentBuild"="17763"`)
	w(`"CurrentMajorVersionNumber"=dword:0000000a`)
	w(`@="the default value"`)
	w(`"Expand"=hex(2):%s`, utf16hex(`%SystemRoot%\system32`))
	w(`"NonASCII"=hex(1):%s`, utf16hex("Größe 日本語 ✓"))
	w(`"Multi"=hex(7):%s`, utf16hex("one\x00two\x00three\x00"))
	w(`"Tiny"=hex:01,02`)
	w(`"Empty"=hex:`)
	w(`"Big"=hex:%s`, hexBytes(big))
	w(`"BE"=hex(5):00,00,01,02`)
	w(`"Q"=hex(b):88,77,66,55,44,33,22,11`)
	w(`"NoType"=hex(0):`)
	w(`"Ünïcode näme"="x"`)
	for i := 0; i < subkeys; i++ {
		w(`[\Many\Key%04d]`, i)
	}
	w(`[\Größe]`)
	w(`[\日本語\nested\deeper]`)
	w(`"v"=dword:00000001`)
	return b.String()
}

func openHive(t testing.TB, p string) *regf.Hive {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := regf.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Warnings) > 0 {
		t.Errorf("warnings of a clean hive: %q", h.Warnings)
	}
	return h
}

// compare checks our key against hivexml's, recursively, and counts the
// keys and values compared.
func compare(t *testing.T, got *regf.Key, want *regftest.Key, path string, keys, values *int) {
	t.Helper()
	*keys++
	if got.Name != want.Name {
		t.Errorf("%s: name %q, hivexml says %q", path, got.Name, want.Name)
	}
	vs, err := got.Values()
	if err != nil {
		t.Fatalf("%s: values: %v", path, err)
	}
	if len(vs) != len(want.Values) {
		t.Errorf("%s: %d values, hivexml says %d", path, len(vs), len(want.Values))
	}
	for i := 0; i < len(vs) && i < len(want.Values); i++ {
		*values++
		v, w := vs[i], want.Values[i]
		typ := v.Type
		if typ == regf.DWordBigEndian {
			typ = regf.DWord // hivexml names both int32
		}
		if v.Name != w.Name || typ != w.Type {
			t.Errorf("%s: value %d is %q of type %d, hivexml says %q of type %d", path, i, v.Name, v.Type, w.Name, w.Type)
			continue
		}
		switch v.Type {
		case regf.String, regf.ExpandString, regf.Link:
			s, err := v.String()
			if err != nil || s != string(w.Data) {
				t.Errorf("%s: value %q = %q, %v; hivexml says %q", path, v.Name, s, err, w.Data)
			}
		case regf.MultiString:
			ss, err := v.Strings()
			var ws []string
			for _, s := range w.Strings {
				if s != "" {
					ws = append(ws, s)
				}
			}
			if err != nil || fmt.Sprint(ss) != fmt.Sprint(ws) {
				t.Errorf("%s: value %q = %q, %v; hivexml says %q", path, v.Name, ss, err, ws)
			}
		case regf.DWord, regf.DWordBigEndian, regf.QWord:
			n, err := v.Uint()
			if err != nil || n != w.Number {
				t.Errorf("%s: value %q = %d, %v; hivexml says %d", path, v.Name, n, err, w.Number)
			}
		default:
			d, err := v.Data(1 << 20)
			if err != nil || !bytes.Equal(d, w.Data) {
				t.Errorf("%s: value %q: %d bytes, %v; hivexml says %d bytes", path, v.Name, len(d), err, len(w.Data))
			}
		}
	}
	var subs []*regf.Key
	if err := got.Subkeys(func(k *regf.Key) error { subs = append(subs, k); return nil }); err != nil {
		t.Fatalf("%s: subkeys: %v", path, err)
	}
	if len(subs) != len(want.Keys) {
		t.Fatalf("%s: %d subkeys, hivexml says %d", path, len(subs), len(want.Keys))
	}
	for i, s := range subs {
		compare(t, s, want.Keys[i], path+`\`+want.Keys[i].Name, keys, values)
	}
}

func TestMatchesHivex(t *testing.T) {
	p := regftest.Build(t, t.TempDir(), "SOFTWARE", testReg(700))
	want := regftest.Dump(t, p)
	h := openHive(t, p)
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var keys, values int
	compare(t, root, want, "", &keys, &values)
	if keys < 700 || values < 15 {
		t.Fatalf("compared %d keys and %d values, fewer than the script wrote", keys, values)
	}

	// Every key is found by its path, in upper and in lower case, through
	// the lists' hashes, and a name that is not there is not found.
	lookups := 0
	var walk func(k *regftest.Key, path string)
	walk = func(k *regftest.Key, path string) {
		for _, c := range k.Keys {
			p := path + `\` + c.Name
			for _, q := range []string{p, strings.ToUpper(p), strings.ToLower(p)} {
				got, err := h.Open(q)
				if err != nil || got.Name != c.Name {
					t.Errorf("open %q: %v", q, err)
					continue
				}
				lookups++
			}
			if _, err := h.Open(p + `\no such key`); !errors.Is(err, regf.ErrNotFound) {
				t.Errorf("open of a missing key under %q: %v", p, err)
			}
			walk(c, p)
		}
	}
	walk(want, "")
	k, err := h.Open(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Value("nosuchvalue"); !errors.Is(err, regf.ErrNotFound) {
		t.Errorf("missing value: %v", err)
	}
	if v, err := k.Value("productname"); err != nil || v.Name != "ProductName" {
		t.Errorf("value lookup ignoring case: %v", err)
	}
	t.Logf("%d keys and %d values compared with hivexml, %d lookups", keys, values, lookups)
}

// TestDamage checks what a reader sees of a hive damaged on purpose: a
// bad checksum and a dirty hive are warnings; a cut-off file, a subkey
// list pointing outside, and data sizes larger than the file are errors.
func TestDamage(t *testing.T) {
	p := regftest.Build(t, t.TempDir(), "SYSTEM", testReg(50))
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(orig)
	b[4]++ // sequence numbers differ, and the checksum no longer matches
	h, err := regf.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(h.Warnings) != 2 {
		t.Fatalf("dirty hive: %v, warnings %q", err, h.Warnings)
	}
	if _, err := h.Open(`Microsoft\Windows NT\CurrentVersion`); err != nil {
		t.Errorf("a dirty hive is still read: %v", err)
	}
	if _, err := regf.Open(bytes.NewReader(orig[:4096]), 4096); err == nil {
		t.Error("a header alone opened")
	}
	// Cut the file in half: what lies beyond is an error, never a panic.
	half := orig[:len(orig)/2]
	h, err = regf.Open(bytes.NewReader(half), int64(len(half)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	errs := 0
	var walk func(k *regf.Key, depth int)
	walk = func(k *regf.Key, depth int) {
		if depth > 10 {
			t.Fatal("too deep")
		}
		if vs, err := k.Values(); err != nil {
			errs++
		} else {
			for _, v := range vs {
				if _, err := v.Data(1 << 20); err != nil {
					errs++
				}
			}
		}
		if err := k.Subkeys(func(s *regf.Key) error { walk(s, depth+1); return nil }); err != nil {
			errs++
		}
	}
	walk(root, 0)
	if errs == 0 {
		t.Error("a hive cut in half read without an error")
	}
}
