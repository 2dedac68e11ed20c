package overlay

// table maps disk blocks to what the overlay holds for them. It is two
// levels, one pointer per 16 MiB of disk and a chunk of 4,096 values only
// where something was written, so memory follows what was written, in
// order (extents walk it), with O(1) lookups. Callers lock.
//
// A value is unmapped (0: the base's bytes), zeros (1), or 2+slot: the
// block's bytes are in data-file slot `slot`.
type table struct {
	chunks     []*chunk
	blocks     uint64
	data, zero int64 // counts of data and zero values
	zchunks    int64 // chunks that are zeroChunk
}

const (
	chunkShift = 12
	chunkLen   = 1 << chunkShift

	valUnmapped = 0
	valZero     = 1
	valSlot0    = 2
)

type chunk struct {
	v [chunkLen]uint64
	n int // values that are not unmapped
}

// zeroChunk stands for every chunk that is all zeros (discarded whole):
// it is shared and never changed (set copies it first), so discarding a
// large disk costs a pointer per 16 MiB.
var zeroChunk = func() *chunk {
	c := &chunk{n: chunkLen}
	for i := range c.v {
		c.v[i] = valZero
	}
	return c
}()

func newTable(blocks uint64) *table {
	return &table{chunks: make([]*chunk, (blocks+chunkLen-1)/chunkLen), blocks: blocks}
}

func (t *table) get(b uint64) uint64 {
	c := t.chunks[b>>chunkShift]
	if c == nil {
		return valUnmapped
	}
	return c.v[b&(chunkLen-1)]
}

// set stores v for block b and returns the old value.
func (t *table) set(b, v uint64) uint64 {
	c := t.chunks[b>>chunkShift]
	switch {
	case c == nil && v == valUnmapped, c == zeroChunk && v == valZero:
		return v
	case c == nil:
		c = new(chunk)
		t.chunks[b>>chunkShift] = c
	case c == zeroChunk:
		c = new(chunk)
		*c = *zeroChunk
		t.chunks[b>>chunkShift] = c
		t.zchunks--
	}
	i := b & (chunkLen - 1)
	old := c.v[i]
	c.v[i] = v
	t.count(old, -1)
	t.count(v, 1)
	switch {
	case old == valUnmapped && v != valUnmapped:
		c.n++
	case old != valUnmapped && v == valUnmapped:
		c.n--
		if c.n == 0 {
			t.chunks[b>>chunkShift] = nil
		}
	}
	return old
}

func (t *table) count(v uint64, d int64) {
	switch {
	case v == valZero:
		t.zero += d
	case v >= valSlot0:
		t.data += d
	}
}

// zeroRange makes blocks [b0, b1) read as zeros, calling freed with each
// data slot they held. Whole chunks become zeroChunk.
func (t *table) zeroRange(b0, b1 uint64, freed func(slot uint64)) {
	for b := b0; b < b1; {
		ci := b >> chunkShift
		cs := ci << chunkShift
		if b == cs && cs+chunkLen <= b1 {
			if c := t.chunks[ci]; c != zeroChunk {
				if c != nil {
					for _, v := range c.v {
						t.count(v, -1)
						if v >= valSlot0 {
							freed(v - valSlot0)
						}
					}
				}
				t.chunks[ci] = zeroChunk
				t.zero += chunkLen
				t.zchunks++
			}
			b += chunkLen
			continue
		}
		if old := t.set(b, valZero); old >= valSlot0 {
			freed(old - valSlot0)
		}
		b++
	}
}

// apply applies a journal entry, calling freed with each slot it releases.
func (t *table) apply(e entry, freed func(slot uint64)) {
	if e.n > 0 {
		t.zeroRange(e.block, e.block+e.n, freed)
		return
	}
	if old := t.set(e.block, fromSlot(e.slot)); old >= valSlot0 {
		freed(old - valSlot0)
	}
}

// dataSlots lists the slots the table names, in block order.
func (t *table) dataSlots() []uint64 {
	s := make([]uint64, 0, t.data)
	for _, c := range t.chunks {
		if c == nil || c == zeroChunk {
			continue
		}
		for _, v := range c.v {
			if v >= valSlot0 {
				s = append(s, v-valSlot0)
			}
		}
	}
	return s
}

// nextMapped returns the first block at or after b that is not unmapped,
// or t.blocks.
func (t *table) nextMapped(b uint64) uint64 {
	for b < t.blocks {
		c := t.chunks[b>>chunkShift]
		if c == nil {
			b = (b>>chunkShift + 1) << chunkShift
			continue
		}
		for i := b & (chunkLen - 1); i < chunkLen && b < t.blocks; i, b = i+1, b+1 {
			if c.v[i] != valUnmapped {
				return b
			}
		}
	}
	return t.blocks
}

// entryCount is how many entries entries returns.
func (t *table) entryCount() int64 {
	return t.data + t.zero - t.zchunks*(chunkLen-1)
}

// entries lists every mapped block in order, as a checkpoint writes them:
// a chunk discarded whole is one zero range.
func (t *table) entries() []entry {
	es := make([]entry, 0, t.entryCount())
	for ci, c := range t.chunks {
		switch c {
		case nil:
			continue
		case zeroChunk:
			es = append(es, entry{block: uint64(ci) << chunkShift, slot: zeroSlot, n: chunkLen})
			continue
		}
		for i, v := range c.v {
			if v != valUnmapped {
				es = append(es, entry{block: uint64(ci)<<chunkShift + uint64(i), slot: toSlot(v)})
			}
		}
	}
	return es
}

// toSlot and fromSlot convert between table values and the journal's.
func toSlot(v uint64) uint64 {
	if v == valZero {
		return zeroSlot
	}
	return v - valSlot0
}

func fromSlot(s uint64) uint64 {
	if s == zeroSlot {
		return valZero
	}
	return s + valSlot0
}
