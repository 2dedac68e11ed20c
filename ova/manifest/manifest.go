package manifest

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
)

// Entry is one usable digest line of a manifest.
type Entry struct {
	Algorithm Algorithm
	// Name is the file name exactly as the manifest writes it; Lookup and
	// Coverage compare it in canonical form ("./a" is "a").
	Name string
	// Digest is the decoded digest, Algorithm.Size() bytes long, so that
	// upper- and lower-case hex compare equal.
	Digest []byte
	// Line is the line number in the manifest, counting from 1.
	Line int
}

// Manifest is a parsed .mf file.
type Manifest struct {
	// Entries are the usable digest lines in file order. A name appears
	// once per algorithm: a repeated (name, algorithm) pair keeps its
	// first digest and warns.
	Entries []Entry
	// Warnings are the lines Parse could not use and why.
	Warnings []string
	// Raw is the exact bytes read, which a .cert signature covers.
	Raw []byte

	// index maps a canonical name to its positions in Entries; it is
	// built by Parse for len(Entries) == indexed, and ignored
	// (the entries are scanned) once a caller changes the slice's length.
	index   map[string][]int
	indexed int
}

// Parse reads a .mf leniently, as VirtualBox and govmomi do: lines that
// cannot be used become Warnings, never failures, so one damaged line does
// not hide the other digests. It fails only when reading r fails or the
// manifest exceeds MaxManifestSize (ErrTooLarge).
func Parse(r io.Reader) (*Manifest, error) {
	data, err := readBounded(r, MaxManifestSize, "manifest")
	if err != nil {
		return nil, err
	}
	m := &Manifest{Raw: data, index: make(map[string][]int)}
	var w warnings
	eachLine(data, func(n int, s string) bool {
		if len(m.Entries) >= MaxEntries {
			w.line(n, "this and later lines ignored: the manifest lists more than %d digests", MaxEntries)
			return false
		}
		e, ok := parseEntry(n, s, &w)
		if !ok {
			return true
		}
		first, dup := m.find(e)
		switch {
		case !dup:
			m.add(e)
		case bytes.Equal(first.Digest, e.Digest):
			w.line(n, "%s(%s) repeats line %d", e.Algorithm, snippet(e.Name), first.Line)
		default:
			w.line(n, "%s(%s) contradicts line %d; the digest on line %d is kept", e.Algorithm, snippet(e.Name), first.Line, first.Line)
		}
		return true
	})
	m.Warnings = w.result()
	return m, nil
}

// parseEntry interprets one non-blank line, or warns about it.
func parseEntry(n int, s string, w *warnings) (Entry, bool) {
	f, problem := splitLine(s)
	if problem != "" {
		w.line(n, "not a digest line (%s): %s", problem, snippet(s))
		return Entry{}, false
	}
	alg, ok := ParseAlgorithm(f.alg)
	switch {
	case !ok && f.alg == "SIZE":
		w.line(n, "SIZE entry for %s skipped: sizes come from the archive, not the manifest", snippet(f.name))
		return Entry{}, false
	case !ok:
		w.line(n, "unknown digest algorithm %s for %s", snippet(f.alg), snippet(f.name))
		return Entry{}, false
	case f.name == "":
		w.line(n, "empty file name")
		return Entry{}, false
	case strings.IndexByte(f.name, 0) >= 0:
		w.line(n, "file name %s holds a NUL byte, which no archive member can", snippet(f.name))
		return Entry{}, false
	case len(f.value) != 2*alg.Size():
		w.line(n, "%s digest for %s has %d characters, want %d hex digits", alg, snippet(f.name), len(f.value), 2*alg.Size())
		return Entry{}, false
	}
	d, err := hex.DecodeString(f.value)
	if err != nil {
		w.line(n, "%s digest for %s is not hexadecimal: %s", alg, snippet(f.name), snippet(f.value))
		return Entry{}, false
	}
	return Entry{Algorithm: alg, Name: f.name, Digest: d, Line: n}, true
}

// find returns the entry already listing e's file under e's algorithm.
// The same file may legitimately be listed under two algorithms, but not
// twice under one.
func (m *Manifest) find(e Entry) (Entry, bool) {
	for _, i := range m.index[canonName(e.Name)] {
		if m.Entries[i].Algorithm == e.Algorithm {
			return m.Entries[i], true
		}
	}
	return Entry{}, false
}

// add appends e and keeps the index in step, as Parse builds it.
func (m *Manifest) add(e Entry) {
	k := canonName(e.Name)
	m.index[k] = append(m.index[k], len(m.Entries))
	m.Entries = append(m.Entries, e)
	m.indexed = len(m.Entries)
}

// LookupAll returns every entry for name (one per algorithm), in manifest
// order. A verifier that wants every listed digest checked uses this.
func (m *Manifest) LookupAll(name string) []Entry {
	if m == nil {
		return nil
	}
	k := canonName(name)
	var out []Entry
	if m.index != nil && m.indexed == len(m.Entries) {
		for _, i := range m.index[k] {
			out = append(out, m.Entries[i])
		}
		return out
	}
	for _, e := range m.Entries {
		if canonName(e.Name) == k {
			out = append(out, e)
		}
	}
	return out
}

// Lookup returns the entry for name with the strongest algorithm (SHA512,
// then SHA256, SHA1, MD5), as VirtualBox prefers SHA-2 when a file is
// listed twice.
func (m *Manifest) Lookup(name string) (Entry, bool) {
	var best Entry
	found := false
	for _, e := range m.LookupAll(name) {
		if !found || e.Algorithm.strength() > best.Algorithm.strength() {
			best, found = e, true
		}
	}
	return best, found
}
