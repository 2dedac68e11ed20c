package ova

import "strings"

// TarHeader records how a tar member's header was written: which format
// its header block has and which extensions (pax records, GNU long names,
// base-256 numbers, sparse maps) were needed to describe it. Importers
// differ in which of these they read (VirtualBox refuses pax headers, for
// one), so a check of an OVA against them needs it; the mount does not.
type TarHeader struct {
	// Format is the member's own header block: "v7", "ustar" or "gnu".
	Format string
	// PaxKeys are the keys of the pax extended header ('x') that came
	// before the member, in order; PaxGlobal is set when a global pax
	// header ('g') came earlier in the archive.
	PaxKeys   []string
	PaxGlobal bool
	// GNULongName and GNULongLink are set when a GNU 'L' or 'K' header
	// carried the member's name or link target.
	GNULongName bool
	GNULongLink bool
	// Base256 is set when a numeric field (the size of a member over
	// 8 GiB, typically) is in GNU/star base-256 rather than octal.
	Base256 bool
	// GNUSparse is set for an old GNU sparse member (type 'S') or a pax
	// one (GNU.sparse.* records).
	GNUSparse bool
	// RawName is the member's name exactly as the archive spells it,
	// before "./" and "/" are removed.
	RawName string
}

// Pax reports whether the member needed a pax header of either kind.
func (h *TarHeader) Pax() bool { return len(h.PaxKeys) > 0 || h.PaxGlobal }

// TarHeader returns how the member's tar header was written; false for a
// member of a zip archive or of an unpacked folder, and for a directory
// that no header names.
func (m *Member) TarHeader() (*TarHeader, bool) { return m.tar, m.tar != nil }

// tarHeaderOf describes the header block h and what the special headers
// before it (p, and the global pax records) said about it.
func tarHeaderOf(h rawHeader, p *pending, globals []paxRecord, rawName string) *TarHeader {
	t := &TarHeader{GNULongName: p.longName != nil, GNULongLink: p.longLink != nil, PaxGlobal: len(globals) > 0, RawName: rawName}
	switch h.format() {
	case formatGNU:
		t.Format = "gnu"
	case formatUSTAR:
		t.Format = "ustar"
	default:
		t.Format = "v7"
	}
	for _, r := range p.pax {
		t.PaxKeys = append(t.PaxKeys, r.key)
		if strings.HasPrefix(r.key, "GNU.sparse.") {
			t.GNUSparse = true
		}
	}
	for _, r := range globals {
		if strings.HasPrefix(r.key, "GNU.sparse.") {
			t.GNUSparse = true
		}
	}
	if h[offType] == typeGNUSparse {
		t.GNUSparse = true
	}
	for _, f := range [...][2]int{{offMode, 8}, {offUID, 8}, {offGID, 8}, {offSize, 12}, {offMtime, 12}} {
		if h[f[0]]&0x80 != 0 {
			t.Base256 = true
		}
	}
	return t
}
