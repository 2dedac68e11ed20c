package gzindex

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is the CRC-32C table for the windows of a split index: the
// CPU computes it (SSE4.2), so checking a window as a read restarts from
// it costs about 1.5 µs (32 KiB at 21 GB/s here).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// splitHeadAt is where a split encoding's head starts: after the magic,
// the version byte and the head's length.
const splitHeadAt = len(encMagic) + 1 + 8

// maxHead bounds a split encoding's head, whatever the file's size: the
// kind, five sizes, the identity, the most warnings and checkpoints an
// index may hold, each at its longest encoding.
const maxHead = 1 + 5*binary.MaxVarintLen64 + sha256.Size +
	binary.MaxVarintLen64 + maxWarnings*(binary.MaxVarintLen64+maxWarningLen) +
	binary.MaxVarintLen64 + MaxMaxCheckpoints*(1+5*binary.MaxVarintLen64+4)

// Load reads an index from the size bytes of r: a split one (from
// MarshalSplit) by its head alone, keeping r, from which Readers read
// each window the first time they restart from its checkpoint and check
// it against its CRC-32C (a mismatch fails that read with ErrIndex); any
// other by reading it whole, as Unmarshal. r must stay readable and
// unchanged while the Index is used. Errors wrap ErrIndex, or are r's.
//
// Loading a split index does not touch its windows, whose pages a first
// read would have to fault in: for a 1.2 GB archive's index, 11 KB are
// read instead of 19 MB, which took about 150 ms
// (reading into fresh memory, then hashing it).
func Load(r io.ReaderAt, size int64) (*Index, error) {
	var pre [splitHeadAt]byte
	want := min(size, int64(len(pre)))
	n, err := r.ReadAt(pre[:want], 0)
	if int64(n) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("gzindex: reading the index: %w", err)
	}
	if n <= len(encMagic) || string(pre[:len(encMagic)]) != encMagic || pre[len(encMagic)] != encVersionSplit {
		return loadWhole(r, size)
	}
	if size < int64(splitHeadAt+sha256.Size) {
		return nil, fmt.Errorf("%w: a split encoding of %d bytes", ErrIndex, size)
	}
	hl := binary.LittleEndian.Uint64(pre[len(encMagic)+1:])
	if hl < 1 || hl > maxHead || hl > uint64(size)-uint64(splitHeadAt+sha256.Size) {
		return nil, fmt.Errorf("%w: a head of %d bytes in a %d-byte encoding", ErrIndex, hl, size)
	}
	head := make([]byte, splitHeadAt+int(hl)+sha256.Size)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("gzindex: reading the index: %w", err)
	}
	body := head[:len(head)-sha256.Size]
	if sum := sha256.Sum256(body); string(sum[:]) != string(head[len(body):]) {
		return nil, fmt.Errorf("%w: digest mismatch: the encoding is damaged", ErrIndex)
	}
	d := &decoder{b: body[splitHeadAt:]}
	ix := &Index{}
	ix.raw = d.kind()
	if err := ix.decodeHead(d, true); err != nil {
		return nil, err
	}
	at := int64(len(head))
	if ix.windows != size-at {
		return nil, fmt.Errorf("%w: %d bytes of windows, the head says %d", ErrIndex, size-at, ix.windows)
	}
	ix.src = io.NewSectionReader(r, at, ix.windows)
	return ix, nil
}

// loadWhole reads an encoding of another version whole, bounded by size.
func loadWhole(r io.ReaderAt, size int64) (*Index, error) {
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the encoding is shorter than its %d bytes", ErrIndex, size)
		}
		return nil, fmt.Errorf("gzindex: reading the index: %w", err)
	}
	return Unmarshal(b)
}

// inSource reports whether cp's window is not in memory but in its split
// index's source, to be read and checked when used.
func (cp *checkpoint) inSource() bool { return cp.window == nil && cp.wn > 0 }

// stored is the length of cp's window as stored: packed or not.
func (cp *checkpoint) stored() int {
	if cp.inSource() {
		return cp.wn
	}
	return len(cp.window)
}

// window returns cp's window as stored: in memory, or read into buf
// (at least windowSize bytes) from a split index's source and checked.
func (ix *Index) window(cp *checkpoint, buf []byte) ([]byte, error) {
	if !cp.inSource() {
		return cp.window, nil
	}
	w := buf[:cp.wn]
	if n, err := ix.src.ReadAt(w, cp.woff); n < len(w) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: reading the window of the checkpoint at decompressed byte %d: %v", ErrIndex, cp.out, err)
	}
	if crc32.Checksum(w, castagnoli) != cp.wsum {
		return nil, fmt.Errorf("%w: the window of the checkpoint at decompressed byte %d is damaged (CRC-32C mismatch)", ErrIndex, cp.out)
	}
	return w, nil
}
