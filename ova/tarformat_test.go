package ova

import (
	"archive/tar"
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTarHeaderFormats: each member records the header format and the
// extensions its writer needed, as archive/tar wrote them.
func TestTarHeaderFormats(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	long := strings.Repeat("l", 120)
	for _, h := range []*tar.Header{
		{Name: "plain.ovf", Size: 1, Format: tar.FormatUSTAR},
		{Name: long, Size: 1, Format: tar.FormatGNU},
		{Name: "pax.vmdk", Size: 1, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "x"}},
		{Name: "ustar-split/" + strings.Repeat("s", 90), Size: 1, Format: tar.FormatUSTAR},
	} {
		h.Mode, h.Typeflag, h.ModTime = 0o644, tar.TypeReg, time.Unix(1700000000, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	tw.Close()
	a, err := Open(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) *TarHeader {
		m, ok := a.Lookup(name)
		if !ok {
			t.Fatalf("no member %s", name)
		}
		h, ok := m.TarHeader()
		if !ok {
			t.Fatalf("%s: no tar header recorded", name)
		}
		return h
	}
	if h := get("plain.ovf"); h.Format != "ustar" || h.Pax() || h.GNULongName || h.RawName != "plain.ovf" {
		t.Errorf("plain.ovf: %+v", h)
	}
	if h := get(long); h.Format != "gnu" || !h.GNULongName || h.Pax() {
		t.Errorf("long name: %+v", h)
	}
	if h := get("pax.vmdk"); !h.Pax() || len(h.PaxKeys) != 1 || h.PaxKeys[0] != "comment" {
		t.Errorf("pax.vmdk: %+v", h)
	}
	if h := get("ustar-split/" + strings.Repeat("s", 90)); h.Format != "ustar" || h.GNULongName || h.Pax() {
		t.Errorf("a name split into prefix and name: %+v", h)
	}
}

// TestTarHeaderSparse: GNU tar's old sparse members are marked.
func TestTarHeaderSparse(t *testing.T) {
	data, err := os.ReadFile("testdata/gnu-sparse.tar")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.Lookup("sparse")
	if h, ok := m.TarHeader(); !ok || !h.GNUSparse || h.Format != "gnu" {
		t.Errorf("sparse: %+v", h)
	}
	m, _ = a.Lookup("after")
	if h, ok := m.TarHeader(); !ok || h.GNUSparse {
		t.Errorf("after: %+v", h)
	}
}
