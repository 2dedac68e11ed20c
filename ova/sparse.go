package ova

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A sparse member stores only its data regions, back to back; the sparse
// map says where each region belongs in the logical file. GNU tar writes
// the map in three places depending on the format: inline in an old GNU
// header (type 'S'), in pax records (formats 0.0 and 0.1), or at the start
// of the member data (format 1.0).

type sparseEntry struct{ off, len int64 }

var errSparse = errors.New("invalid sparse map")

// maxSparseEntries bounds a sparse map. Each entry costs a fragment in
// memory, so a hostile map must not be allowed to grow without limit; a
// genuine disk image with this many data regions would be unusual.
const maxSparseEntries = 1 << 20

// parseGNUSparseEntries reads count 24-byte (offset, numbytes) entries from
// an old GNU header or extension block, stopping at the first empty one.
func parseGNUSparseEntries(b []byte, count int, into []sparseEntry) ([]sparseEntry, error) {
	for i := range count {
		e := b[i*24 : i*24+24]
		if isZeroBlock(e) {
			break
		}
		off, err1 := parseNumber(e[:12])
		n, err2 := parseNumber(e[12:24])
		if err1 != nil || err2 != nil {
			return into, fmt.Errorf("%w: bad entry", errSparse)
		}
		into = append(into, sparseEntry{off, n})
		if len(into) > maxSparseEntries {
			return into, fmt.Errorf("%w: more than %d regions", errSparse, maxSparseEntries)
		}
	}
	return into, nil
}

// paxSparse holds what pax records say about a sparse member.
type paxSparse struct {
	major, minor int // 0.0 and 0.1 carry the map in records; 1.0 in the data
	realSize     int64
	haveSize     bool
	name         string
	entries      []sparseEntry
}

// parsePaxSparse extracts the GNU.sparse.* records. ok is false when the
// member is not sparse.
func parsePaxSparse(recs []paxRecord) (ps paxSparse, ok bool, err error) {
	var pendingOff int64 = -1
	for _, r := range recs {
		if !strings.HasPrefix(r.key, "GNU.sparse.") {
			continue
		}
		ok = true
		switch r.key {
		case "GNU.sparse.major":
			ps.major, err = strconv.Atoi(r.value)
		case "GNU.sparse.minor":
			ps.minor, err = strconv.Atoi(r.value)
		case "GNU.sparse.name":
			ps.name = r.value
		case "GNU.sparse.size", "GNU.sparse.realsize":
			ps.realSize, err = parsePaxInt(r.key, r.value)
			ps.haveSize = true
		case "GNU.sparse.numblocks":
			// Checked implicitly: the entries are what counts.
		case "GNU.sparse.offset": // format 0.0: pairs of repeated records
			pendingOff, err = parsePaxInt(r.key, r.value)
		case "GNU.sparse.numbytes":
			var n int64
			if n, err = parsePaxInt(r.key, r.value); err == nil {
				if pendingOff < 0 {
					err = fmt.Errorf("%w: numbytes without offset", errSparse)
				} else {
					ps.entries = append(ps.entries, sparseEntry{pendingOff, n})
					pendingOff = -1
				}
			}
		case "GNU.sparse.map": // format 0.1: "off,len,off,len"
			ps.minor = 1
			ps.entries, err = parseSparseList(strings.Split(r.value, ","))
		}
		if err != nil {
			return ps, true, err
		}
		if len(ps.entries) > maxSparseEntries {
			return ps, true, fmt.Errorf("%w: more than %d regions", errSparse, maxSparseEntries)
		}
	}
	return ps, ok, nil
}

func parseSparseList(fields []string) ([]sparseEntry, error) {
	if len(fields) == 1 && fields[0] == "" {
		return nil, nil
	}
	if len(fields)%2 != 0 || len(fields)/2 > maxSparseEntries {
		return nil, fmt.Errorf("%w: odd or oversized map", errSparse)
	}
	out := make([]sparseEntry, 0, len(fields)/2)
	for i := 0; i < len(fields); i += 2 {
		off, err1 := parsePaxInt("offset", fields[i])
		n, err2 := parsePaxInt("numbytes", fields[i+1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad number", errSparse)
		}
		out = append(out, sparseEntry{off, n})
	}
	return out, nil
}

// parseSparseMap1 reads the format 1.0 map at the start of the member
// data: decimal numbers, one per line (count, then offset/size pairs),
// padded to a block. It returns the entries and the bytes the map occupies.
func parseSparseMap1(data []byte) ([]sparseEntry, int64, error) {
	s := string(data)
	next := func() (int64, error) {
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			return 0, fmt.Errorf("%w: map runs past its bound", errSparse)
		}
		v, err := parsePaxInt("map", s[:nl])
		s = s[nl+1:]
		return v, err
	}
	count, err := next()
	if err != nil {
		return nil, 0, err
	}
	if count > maxSparseEntries {
		return nil, 0, fmt.Errorf("%w: %d regions", errSparse, count)
	}
	fields := make([]string, 0, 2*count)
	for range 2 * count {
		v, err := next()
		if err != nil {
			return nil, 0, err
		}
		fields = append(fields, strconv.FormatInt(v, 10))
	}
	entries, err := parseSparseList(fields)
	used := int64(len(data) - len(s))
	padded, _ := paddedSize(used)
	return entries, padded, err
}

// sparseFragments places a sparse member's stored regions, which start at
// archive offset dataOff and total stored bytes, into its logical file of
// realSize bytes. Regions must be in order, not overlap, and fit.
func sparseFragments(entries []sparseEntry, realSize, stored, dataOff int64) ([]fragment, error) {
	frags := make([]fragment, 0, len(entries))
	var pos, phys int64
	for _, e := range entries {
		if e.off < pos || e.len < 0 || e.off > realSize || e.len > realSize-e.off {
			return nil, fmt.Errorf("%w: region [%d,+%d) out of order or past the size %d", errSparse, e.off, e.len, realSize)
		}
		if e.len == 0 {
			continue
		}
		frags = append(frags, fragment{off: e.off, len: e.len, phys: dataOff + phys})
		pos = e.off + e.len
		phys += e.len
	}
	if phys != stored {
		return nil, fmt.Errorf("%w: regions hold %d bytes but %d are stored", errSparse, phys, stored)
	}
	return frags, nil
}
