package ova

// gnuSparse handles an old GNU sparse header (type 'S'): up to four map
// entries inline, more in extension blocks that follow the header, then the
// stored regions back to back.
func (s *scanner) gnuSparse(off int64, h rawHeader, e entry, stored int64) (int64, bool) {
	entries, err := parseGNUSparseEntries(h[offGNUSparse:offGNUIsExtended], 4, nil)
	dataOff := off + blockSize
	for more := h[offGNUIsExtended] != 0; more && err == nil; {
		if s.size-dataOff < blockSize {
			s.warnf(off, e.rawName, "the archive ends inside the sparse map")
			return 0, true
		}
		var b []byte
		if b, err = s.block(dataOff); err != nil {
			s.warnf(off, e.rawName, "%v", err)
			return 0, true
		}
		entries, err = parseGNUSparseEntries(b[:504], 21, entries)
		more = b[504] != 0
		dataOff += blockSize
	}
	realSize, err2 := parseNumber(h[offGNURealSize : offGNURealSize+12])
	padded, _ := paddedSize(stored)
	if err == nil && (err2 != nil || realSize < 0) {
		err = errSparse
	}
	if err == nil {
		e.frags, err = sparseFragments(entries, realSize, stored, dataOff)
	}
	if err != nil {
		s.warnf(off, e.rawName, "sparse member skipped: %v", err)
		return s.skip(dataOff, padded, e)
	}
	e.size = realSize
	return s.addSparse(e, dataOff, stored, padded)
}

// paxSparseEntry handles a pax sparse member. Formats 0.0 and 0.1 carry the
// map in the pax records; 1.0 stores it at the start of the member's data,
// and the header size then counts the map too.
func (s *scanner) paxSparseEntry(off, dataOff, padded int64, e entry, ps paxSparse) (int64, bool) {
	stored := e.size
	if ps.name != "" {
		e.rawName = ps.name
	}
	if !ps.haveSize {
		s.warnf(off, e.rawName, "sparse member skipped: no GNU.sparse.realsize")
		return s.skip(dataOff, padded, e)
	}
	entries := ps.entries
	dataStart := dataOff
	if ps.major == 1 {
		data, err := s.readSpecial(dataOff, min(stored, maxSpecialSize))
		if err != nil {
			s.warnf(off, e.rawName, "sparse member skipped: its map cannot be read: %v", err)
			return s.skip(dataOff, padded, e)
		}
		var mapBytes int64
		entries, mapBytes, err = parseSparseMap1(data)
		if err == nil && mapBytes > stored {
			err = errSparse
		}
		if err != nil {
			s.warnf(off, e.rawName, "sparse member skipped: %v", err)
			return s.skip(dataOff, padded, e)
		}
		dataStart += mapBytes
		stored -= mapBytes
	} else if ps.major != 0 || ps.minor > 1 {
		s.warnf(off, e.rawName, "sparse member skipped: GNU sparse format %d.%d is unknown", ps.major, ps.minor)
		return s.skip(dataOff, padded, e)
	}
	frags, err := sparseFragments(entries, ps.realSize, stored, dataStart)
	if err != nil {
		s.warnf(off, e.rawName, "sparse member skipped: %v", err)
		return s.skip(dataOff, padded, e)
	}
	e.frags, e.size = frags, ps.realSize
	return s.addSparse(e, dataStart, stored, padded-(dataStart-dataOff))
}

// addSparse records a sparse entry whose regions start at dataStart, and
// handles an archive that ends inside them.
func (s *scanner) addSparse(e entry, dataStart, stored, padded int64) (int64, bool) {
	e.avail = e.size
	if dataStart+stored > s.size {
		for _, f := range e.frags {
			if f.phys+f.len > s.size {
				e.avail = f.off + max(0, s.size-f.phys)
				break
			}
		}
		s.emit(&e)
		s.warnf(e.hdrOff, e.rawName, "truncated: the archive holds the first %d of its %d bytes; reads past byte %d fail", e.avail, e.size, e.avail)
		return 0, true
	}
	s.emit(&e)
	return s.skip(dataStart, padded, entry{})
}
