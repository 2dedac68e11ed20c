package overlay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// The journal's layout; doc.go describes it for readers of the files.
const (
	// BlockSize is the unit the overlay maps: a write covering whole 4 KiB
	// blocks never reads the base, and that is what guests and the kernel
	// write.
	BlockSize = 4096

	journalMagic   = "OVFMJRNL"
	journalVersion = 1
	headerSize     = 64

	recMap    = 1
	recCommit = 2
	recZero   = 3

	recHead       = 8 // kind u8, 3 reserved bytes, payload length u32
	recTail       = 4 // crc32c
	entrySize     = 16
	commitPayload = 16
	// maxEntries bounds one map record (16 MiB of payload), so a hostile
	// length can never ask for more than that before the file's size is
	// checked too.
	maxEntries = 1 << 20

	// zeroSlot is the on-disk value of a block that reads as zeros
	// (discarded, or written with zeros): it owns no data-file space.
	zeroSlot = ^uint64(0)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by errors about overlay files that cannot be used:
// a damaged header, a map naming blocks past the disk or space past the
// data file, two blocks sharing one data block.
var ErrCorrupt = errors.New("overlay: corrupt overlay file")

// header is the journal's first 64 bytes.
type header struct {
	blockSize uint32
	diskSize  int64
	created   time.Time
}

func (h header) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, journalMagic)
	binary.LittleEndian.PutUint32(b[8:], journalVersion)
	binary.LittleEndian.PutUint32(b[12:], h.blockSize)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.diskSize))
	binary.LittleEndian.PutUint64(b[24:], uint64(h.created.UnixNano()))
	binary.LittleEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return b
}

func decodeHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: journal is %d bytes, shorter than its %d-byte header", ErrCorrupt, len(b), headerSize)
	}
	if string(b[:8]) != journalMagic {
		return header{}, fmt.Errorf("%w: journal does not start with %q", ErrCorrupt, journalMagic)
	}
	if got, want := binary.LittleEndian.Uint32(b[60:]), crc32.Checksum(b[:60], castagnoli); got != want {
		return header{}, fmt.Errorf("%w: journal header checksum is %08x, not %08x", ErrCorrupt, got, want)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != journalVersion {
		return header{}, fmt.Errorf("%w: journal version %d (this build reads %d)", ErrCorrupt, v, journalVersion)
	}
	h := header{
		blockSize: binary.LittleEndian.Uint32(b[12:]),
		diskSize:  int64(binary.LittleEndian.Uint64(b[16:])),
		created:   time.Unix(0, int64(binary.LittleEndian.Uint64(b[24:]))),
	}
	if h.blockSize != BlockSize {
		return header{}, fmt.Errorf("%w: journal block size %d (this build uses %d)", ErrCorrupt, h.blockSize, BlockSize)
	}
	if h.diskSize < 0 || h.diskSize > maxDiskSize {
		return header{}, fmt.Errorf("%w: journal disk size %d", ErrCorrupt, h.diskSize)
	}
	return h, nil
}

// maxDiskSize is the largest disk an overlay takes, 64 TiB (VMDK's and
// VHDX's own limits are about that): the map's top level costs 8 bytes
// per 16 MiB of disk, 32 MiB at most, which is what a hostile journal
// header can make ReadStatus allocate.
const maxDiskSize = 64 << 40

// entry is one map update: block to a data-file slot or to zeroSlot, or,
// when n > 0, blocks [block, block+n) to zeros (a discard of a whole
// disk is one entry, not one per block).
type entry struct {
	block, slot, n uint64
}

// appendRecord appends one map record (n == 0) or zero-range record
// holding es, all of that kind and at most maxEntries of them.
func appendRecord(b []byte, es []entry) []byte {
	start := len(b)
	kind := byte(recMap)
	if es[0].n > 0 {
		kind = recZero
	}
	b = appendRecHead(b, kind, len(es)*entrySize)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint64(b, e.block)
		if kind == recZero {
			b = binary.LittleEndian.AppendUint64(b, e.n)
		} else {
			b = binary.LittleEndian.AppendUint64(b, e.slot)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func appendCommitRecord(b []byte, seq uint64, at time.Time) []byte {
	start := len(b)
	b = appendRecHead(b, recCommit, commitPayload)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(at.UnixNano()))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func appendRecHead(b []byte, kind byte, n int) []byte {
	b = append(b, kind, 0, 0, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// appendEntries appends es, in order, as map and zero-range records of
// at most maxEntries each, and then one commit record.
func appendEntries(b []byte, es []entry, seq uint64, at time.Time) []byte {
	for len(es) > 0 {
		n := 1
		for n < len(es) && n < maxEntries && (es[n].n > 0) == (es[0].n > 0) {
			n++
		}
		b = appendRecord(b, es[:n])
		es = es[n:]
	}
	return appendCommitRecord(b, seq, at)
}

// replayed is what a journal's valid prefix says.
type replayed struct {
	header
	// end is the offset just past the last valid commit record: the
	// journal's length once a torn or damaged tail is cut.
	end int64
	// commits counts commit records; seq and lastSync are the last one's.
	commits  int
	seq      uint64
	lastSync time.Time
	// tail says why replay stopped before the file's end ("" if it did not).
	tail string
}

// limits bound what a journal may name: blocks of the disk, slots of the
// data file as it is on disk.
type limits struct {
	blocks uint64 // the disk's block count
	slots  uint64 // the data file's size in blocks
}

// replay reads a journal of size bytes from r, calling apply with each
// committed map update in order (later ones win) as it reaches the commit
// record that makes them count. It returns an error only
// for a damaged header or a record that is whole and checksummed but
// impossible (a block past the disk, a slot past the data file, an unknown
// kind): that is a crafted or foreign file, not a crash. A record cut
// short or failing its checksum ends the journal there (a crash tore the
// last append); updates after the last commit record are dropped.
// Memory is bounded by size: nothing is allocated that the file does not
// hold, and updates are kept only until their commit.
func replay(r io.Reader, size int64, lim limits, apply func(entry)) (replayed, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	hb := make([]byte, headerSize)
	if _, err := io.ReadFull(br, hb); err != nil {
		return replayed{}, fmt.Errorf("%w: journal header: %v", ErrCorrupt, err)
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return replayed{}, err
	}
	if lim.blocks == 0 {
		lim.blocks = uint64((h.diskSize + BlockSize - 1) / BlockSize)
	}
	if uint64((h.diskSize+BlockSize-1)/BlockSize) != lim.blocks {
		return replayed{}, fmt.Errorf("%w: journal is for a disk of %d bytes, not %d blocks", ErrCorrupt, h.diskSize, lim.blocks)
	}
	rp := replayed{header: h, end: headerSize}
	var pending []entry
	at := int64(headerSize)
	head := make([]byte, recHead)
	for n := 0; ; n++ {
		if at == size {
			break
		}
		if size-at < recHead+recTail {
			rp.tail = fmt.Sprintf("record %d at %d: cut short", n, at)
			break
		}
		if _, err := io.ReadFull(br, head); err != nil {
			rp.tail = fmt.Sprintf("record %d at %d: %v", n, at, err)
			break
		}
		kind, plen := head[0], int64(binary.LittleEndian.Uint32(head[4:]))
		if plen > size-at-recHead-recTail || plen > maxEntries*entrySize {
			rp.tail = fmt.Sprintf("record %d at %d: length %d runs past the journal", n, at, plen)
			break
		}
		body := make([]byte, plen+recTail)
		if _, err := io.ReadFull(br, body); err != nil {
			rp.tail = fmt.Sprintf("record %d at %d: %v", n, at, err)
			break
		}
		crc := crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, body[:plen])
		if got := binary.LittleEndian.Uint32(body[plen:]); got != crc {
			rp.tail = fmt.Sprintf("record %d at %d: checksum %08x, not %08x", n, at, got, crc)
			break
		}
		if head[1]|head[2]|head[3] != 0 {
			return rp, fmt.Errorf("%w: journal record %d at %d: reserved bytes are set", ErrCorrupt, n, at)
		}
		payload := body[:plen]
		switch kind {
		case recMap:
			if plen%entrySize != 0 {
				return rp, fmt.Errorf("%w: journal record %d at %d: map payload of %d bytes is not whole entries", ErrCorrupt, n, at, plen)
			}
			for i := int64(0); i < plen; i += entrySize {
				e := entry{block: binary.LittleEndian.Uint64(payload[i:]), slot: binary.LittleEndian.Uint64(payload[i+8:])}
				if e.block >= lim.blocks {
					return rp, fmt.Errorf("%w: journal record %d at %d: block %d is past the disk's %d", ErrCorrupt, n, at, e.block, lim.blocks)
				}
				if e.slot != zeroSlot && e.slot >= lim.slots {
					return rp, fmt.Errorf("%w: journal record %d at %d: data block %d is past the data file's %d", ErrCorrupt, n, at, e.slot, lim.slots)
				}
				pending = append(pending, e)
			}
		case recZero:
			if plen%entrySize != 0 {
				return rp, fmt.Errorf("%w: journal record %d at %d: zero-range payload of %d bytes is not whole entries", ErrCorrupt, n, at, plen)
			}
			for i := int64(0); i < plen; i += entrySize {
				e := entry{block: binary.LittleEndian.Uint64(payload[i:]), slot: zeroSlot, n: binary.LittleEndian.Uint64(payload[i+8:])}
				if e.block >= lim.blocks || e.n == 0 || e.n > lim.blocks-e.block {
					return rp, fmt.Errorf("%w: journal record %d at %d: zero range of %d blocks at %d does not fit the disk's %d", ErrCorrupt, n, at, e.n, e.block, lim.blocks)
				}
				pending = append(pending, e)
			}
		case recCommit:
			if plen != commitPayload {
				return rp, fmt.Errorf("%w: journal record %d at %d: commit payload of %d bytes", ErrCorrupt, n, at, plen)
			}
			for _, e := range pending {
				apply(e)
			}
			pending = pending[:0]
			rp.commits++
			rp.seq = binary.LittleEndian.Uint64(payload)
			rp.lastSync = time.Unix(0, int64(binary.LittleEndian.Uint64(payload[8:])))
			rp.end = at + recHead + plen + recTail
		default:
			return rp, fmt.Errorf("%w: journal record %d at %d: unknown kind %d", ErrCorrupt, n, at, kind)
		}
		at += recHead + plen + recTail
	}
	if rp.tail == "" && len(pending) > 0 {
		rp.tail = fmt.Sprintf("%d map entries after the last commit", len(pending))
	}
	return rp, nil
}
