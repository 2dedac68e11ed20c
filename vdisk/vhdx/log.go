package vhdx

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	logSector = 4 * kib

	// maxReplayLog bounds the log this package replays: the log is read
	// into memory whole (twice over, to read wrapped entries without
	// copying). Hyper-V and qemu write 1 MiB logs.
	maxReplayLog = 32 * mib

	// The header section, with the file identifier, both headers and both
	// region tables, ends where a log may first write: the headers are
	// updated by their own two-copy scheme, never through the log.
	logWriteMin = regionTable1
)

var (
	logeSig = sig("loge")
	descSig = sig("desc")
	zeroSig = sig("zero")
	dataSig = sig("data")
)

// logEntry is a log entry that passed its header checks and its CRC.
type logEntry struct {
	pos     int64 // byte offset in the log
	length  int64
	seq     uint64
	tail    int64
	descs   int64
	flushed uint64
	last    uint64
}

// logBuf is the log region read into memory, doubled so that an entry
// wrapping past the end of the circular log is one contiguous slice.
type logBuf struct {
	b      []byte
	length int64
	guid   guid
	name   string
}

type entryStatus int

const (
	notEntry entryStatus = iota // no plausible entry header here
	badCRC                      // a plausible header, but the entry is torn or stale
	goodEntry
)

// replayed is the outcome of a log replay.
type replayed struct {
	ov *overlay
	// grow is the file length the replay extends the file to, from the
	// entries' LastFileOffset rounded up to 1 MiB as qemu rounds it: the
	// log may allocate a block whose data the crash never wrote, and
	// that block reads as zeros.
	grow int64
	note string
}

// replayLog finds the active sequence of the log and returns the overlay
// its replay produces, as [MS-VHDX] 2.3.3 describes. It returns no overlay
// when the log holds no active sequence (the writer finished its flush but
// had not yet cleared the log GUID).
func replayLog(r io.ReaderAt, size int64, h *header, name string) (replayed, error) {
	length := int64(h.logLength)
	off := int64(h.logOffset)
	if length%mib != 0 {
		return replayed{}, corrupt(name, "log length %d is not a multiple of 1 MiB", length)
	}
	if length > maxReplayLog {
		return replayed{}, unsupported(name, "the log (%d bytes) needs replaying and is larger than the %d bytes replayed in memory", length, maxReplayLog)
	}
	if off+length > size {
		return replayed{}, corrupt(name, "log (%d bytes at %d) lies past the end of the file (%d bytes)", length, off, size)
	}
	lb := &logBuf{b: make([]byte, 2*length), length: length, guid: h.logGUID, name: name}
	if err := readAt(r, size, lb.b[:length], off); err != nil {
		return replayed{}, readFail(name, "the log", off, err)
	}
	copy(lb.b[length:], lb.b[:length])

	seq, err := lb.activeSequence()
	if err != nil {
		return replayed{}, err
	}
	if seq == nil {
		return replayed{note: "the log GUID is set but the log holds no active sequence; nothing to replay"}, nil
	}
	var ws []write
	var grow uint64
	for _, e := range seq {
		if e.last > 1<<62 {
			return replayed{}, corrupt(name, "log entry %d has an absurd last file offset %d", e.seq, e.last)
		}
		grow = max(grow, (e.last+mib-1)&^(mib-1))
		if e.flushed > uint64(size) {
			return replayed{}, corrupt(name, "log entry %d expects a file of at least %d bytes, the member has %d (truncated?)",
				e.seq, e.flushed, size)
		}
		if ws, err = lb.writes(e, ws, off); err != nil {
			return replayed{}, err
		}
	}
	note := fmt.Sprintf("replayed %d log entries (sequence %d to %d, %d writes) in memory; the file itself is unchanged",
		len(seq), seq[0].seq, seq[len(seq)-1].seq, len(ws))
	return replayed{ov: paint(ws), grow: int64(grow), note: note}, nil
}

// descSectors is how many sectors hold an entry's header and n
// descriptors: the 64-byte header takes the room of two descriptors.
func descSectors(n int64) int64 { return (n + 2 + 127) / 128 }

// entry checks the entry starting at byte pos of the log. A plausible
// header whose CRC fails is reported with its length, so the scan can step
// over it; an entry whose CRC holds but whose content is malformed is an
// error, because it was written as it is and cannot be replayed.
func (l *logBuf) entry(pos int64) (logEntry, entryStatus, error) {
	b := l.b[pos:]
	e := logEntry{
		pos:     pos,
		length:  int64(binary.LittleEndian.Uint32(b[8:])),
		tail:    int64(binary.LittleEndian.Uint32(b[12:])),
		seq:     binary.LittleEndian.Uint64(b[16:]),
		descs:   int64(binary.LittleEndian.Uint32(b[24:])),
		flushed: binary.LittleEndian.Uint64(b[48:]),
		last:    binary.LittleEndian.Uint64(b[56:]),
	}
	var g guid
	copy(g[:], b[32:48])
	if binary.LittleEndian.Uint32(b) != logeSig || e.length == 0 || e.length%logSector != 0 ||
		e.length > l.length || e.seq == 0 || g != l.guid || descSectors(e.descs)*logSector > e.length {
		return e, notEntry, nil
	}
	ent := b[:e.length]
	c := crc32.Update(0, castagnoli, ent[:4])
	c = crc32.Update(c, castagnoli, zeroChecksum[:])
	c = crc32.Update(c, castagnoli, ent[8:])
	if c != binary.LittleEndian.Uint32(ent[4:]) {
		return e, badCRC, nil
	}

	bad := func(format string, args ...any) error {
		return corrupt(l.name, "log entry %d at log offset %d: %s", e.seq, pos, fmt.Sprintf(format, args...))
	}
	if e.tail%logSector != 0 || e.tail >= l.length {
		return e, goodEntry, bad("tail %d is not a sector of the log", e.tail)
	}
	ds := descSectors(e.descs)
	data := int64(0)
	for i := range e.descs {
		d := ent[64+32*i : 96+32*i]
		s := binary.LittleEndian.Uint32(d)
		if s != descSig && s != zeroSig {
			return e, goodEntry, bad("descriptor %d has signature %#x", i, s)
		}
		if binary.LittleEndian.Uint64(d[24:]) != e.seq {
			return e, goodEntry, bad("descriptor %d has another sequence number", i)
		}
		if binary.LittleEndian.Uint64(d[16:])%logSector != 0 {
			return e, goodEntry, bad("descriptor %d targets unaligned file offset %d", i, binary.LittleEndian.Uint64(d[16:]))
		}
		if s == zeroSig {
			if binary.LittleEndian.Uint64(d[8:])%logSector != 0 {
				return e, goodEntry, bad("zero descriptor %d has unaligned length %d", i, binary.LittleEndian.Uint64(d[8:]))
			}
			continue
		}
		data++
	}
	if ds+data != e.length/logSector {
		return e, goodEntry, bad("%d descriptor sectors and %d data descriptors do not fill its %d sectors",
			ds, data, e.length/logSector)
	}
	for i := range data {
		s := ent[(ds+i)*logSector : (ds+i+1)*logSector]
		if binary.LittleEndian.Uint32(s) != dataSig {
			return e, goodEntry, bad("data sector %d has no \"data\" signature", i)
		}
		if uint64(binary.LittleEndian.Uint32(s[4:]))<<32|uint64(binary.LittleEndian.Uint32(s[logSector-4:])) != e.seq {
			return e, goodEntry, bad("data sector %d has another sequence number", i)
		}
	}
	return e, goodEntry, nil
}

// activeSequence scans the circular log once for chains of valid entries
// with consecutive sequence numbers. A chain is complete when its last
// entry (the head) names as its tail an entry of the chain; the entries
// from that tail to the head are what must be replayed. The chain with the
// highest head sequence number is the active one, and it must be complete:
// a newest chain whose tail was overwritten cannot be replayed correctly,
// and reading the file without it would return stale data, so that is an
// error. (A scan that starts inside the active sequence also sees its
// wrapped end as a short, incomplete chain with the same head; the
// complete one wins.)
//
// Every sector is examined at most twice and every CRC covers distinct
// sectors, so a hostile log costs time linear in its length.
func (l *logBuf) activeSequence() ([]logEntry, error) {
	var (
		best     []logEntry
		bestHead logEntry
	)
	pos := int64(0)
	for pos < l.length {
		e, st, err := l.entry(pos)
		if err != nil {
			return nil, err
		}
		switch st {
		case notEntry:
			pos += logSector
			continue
		case badCRC:
			pos += e.length
			continue
		}
		chain := []logEntry{e}
		total := e.length
		next := pos + e.length
		for total < l.length {
			n, st, err := l.entry(next % l.length)
			if err != nil {
				return nil, err
			}
			if st != goodEntry || n.seq != chain[len(chain)-1].seq+1 || total+n.length > l.length {
				break
			}
			chain = append(chain, n)
			total += n.length
			next += n.length
		}
		head := chain[len(chain)-1]
		var complete []logEntry
		for i, c := range chain {
			if c.pos == head.tail {
				complete = chain[i:]
				break
			}
		}
		if head.seq > bestHead.seq {
			bestHead, best = head, complete
		} else if head.seq == bestHead.seq && best == nil {
			best = complete
		}
		pos = next
	}
	if bestHead.seq != 0 && best == nil {
		return nil, corrupt(l.name, "the newest log entry (sequence %d at log offset %d) names tail %d, which is not an entry of its sequence",
			bestHead.seq, bestHead.pos, bestHead.tail)
	}
	return best, nil
}

// writes appends the file writes of entry e, in descriptor order.
func (l *logBuf) writes(e logEntry, ws []write, logOff int64) ([]write, error) {
	ent := l.b[e.pos : e.pos+e.length]
	ds := descSectors(e.descs)
	data := int64(0)
	for i := range e.descs {
		d := ent[64+32*i : 96+32*i]
		fo := binary.LittleEndian.Uint64(d[16:])
		w := write{}
		var n uint64 = logSector
		if binary.LittleEndian.Uint32(d) == zeroSig {
			n = binary.LittleEndian.Uint64(d[8:])
		} else {
			s := ent[(ds+data)*logSector : (ds+data+1)*logSector]
			data++
			w.data = make([]byte, logSector)
			copy(w.data[0:8], d[8:16])
			copy(w.data[8:logSector-4], s[8:logSector-4])
			copy(w.data[logSector-4:], d[4:8])
		}
		if n == 0 {
			continue
		}
		if fo < logWriteMin || fo > uint64(1)<<62 || n > uint64(1)<<62 {
			return nil, corrupt(l.name, "log entry %d descriptor %d writes %d bytes at file offset %d, outside the writable file",
				e.seq, i, n, fo)
		}
		w.off, w.end = int64(fo), int64(fo+n)
		if w.off < logOff+l.length && logOff < w.end {
			return nil, corrupt(l.name, "log entry %d descriptor %d writes into the log itself (file offset %d)", e.seq, i, fo)
		}
		ws = append(ws, w)
	}
	return ws, nil
}
