package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/ovfmount/ovfmount/internal/cachefile"
)

// ChunkSize is the unit a sequential reader of a verified file is served
// in: whole chunks are read, checked (piece by piece, see PieceSize), kept
// a second in the recent-chunk cache and checked ahead. Random reads do
// not pay for it: they are checked at PieceSize.
const ChunkSize = 1 << 20

// PieceSize is the granularity of the digests that reads of a verified
// file are checked against. A random read (a disk decoder reading one
// grain of ~30 KiB) reads and hashes only the pieces it touches, 32-64 KiB
// for a 4 KiB read: about 30 us, where checking the whole 1 MiB chunk cost
// 450-550 us (BenchmarkRandomRead4K). Smaller pieces would hash slower:
// github.com/zeebo/blake3 runs 2.9 GB/s over 1 MiB inputs, 2.7 over 32 KiB
// (with a reused hasher, see pieceHasher), 2.4 over 16 KiB and 1.2 over 4
// KiB, in CPU time on the bench VM. So the verification pass and
// sequential readers, which still read whole chunks, pay 5-10% more CPU
// for their BLAKE3 than with one digest per chunk. The table costs 16
// bytes per 32 KiB piece: 512 KiB per GiB of archive, in memory and in
// the table cache on disk (47 MiB for a 100 GB disk).
const PieceSize = 32 << 10

// piecesPerChunk is how many pieces a whole chunk holds.
const piecesPerChunk = ChunkSize / PieceSize

// chunkTable holds a digest of every PieceSize piece of a file (the last
// one may be short), recorded while the whole file was hashed against its
// manifest digest: 16 bytes per 32 KiB, 512 KiB per GiB of file. It is
// trusted only once that digest matched.
//
// BLAKE3 rather than SHA-256 because every read of a verified file hashes
// the pieces it touches before it returns a byte, so the piece digest
// bounds read speed: github.com/zeebo/blake3 hashes 2.7-3.4 GB/s on one
// core of the 2-core bench VM, against SHA-256's 1.6-1.7 GB/s with SHA-NI
// (and far less without it). The manifest's own algorithm is still what
// the file is verified against.
type chunkTable struct {
	Name      string
	Size      int64
	Algorithm string // the manifest entry it was checked against
	Digest    []byte
	Pieces    []pieceDigest
}

// pieceDigest is a BLAKE3 of one piece, truncated to 128 bits. The table
// guards against one thing: the archive's bytes changing after the file
// was verified (a disk going bad, or someone rewriting the archive under
// the mount). The table was computed from bytes that matched the signed
// manifest, so a changed piece passes only if its new bytes have the same
// 128-bit digest as the old ones: a second preimage, which costs 2^128
// BLAKE3 evaluations even for an attacker who chooses the new bytes
// (collisions, at 2^64, do not help: the old bytes are fixed and were
// vouched for before the attacker's bytes existed). Truncating BLAKE3 is
// as sound as its full output, halving the table.
type pieceDigest = [16]byte

// chunkAlgorithm names pieceDigest in log lines.
const chunkAlgorithm = "BLAKE3"

// sumPiece is the piece digest of b.
func sumPiece(b []byte) pieceDigest {
	s := blake3.Sum256(b)
	return pieceDigest(s[:16])
}

// pieceCount is how many pieces a file of size bytes has.
func pieceCount(size int64) int64 { return (size + PieceSize - 1) / PieceSize }

// pieceHasher hashes pieces one after another. Reusing a hasher, rather
// than blake3.Sum256 on each piece (which clears its 10 KiB of state
// first), halves what 32 KiB pieces cost over whole 1 MiB chunks: on the
// bench VM, in CPU time, 2.88 GB/s over 1 MiB inputs, 2.56 GB/s with
// Sum256 over 32 KiB ones, 2.71 GB/s with a reused hasher.
type pieceHasher struct {
	h   *blake3.Hasher
	out [32]byte
}

var pieceHashers = sync.Pool{New: func() any { return &pieceHasher{h: blake3.New()} }}

// sum is the piece digest of b, as sumPiece.
func (p *pieceHasher) sum(b []byte) pieceDigest {
	p.h.Reset()
	p.h.Write(b)
	p.h.Sum(p.out[:0])
	return pieceDigest(p.out[:16])
}

// sumPieces records in into the digest of each piece of b, whose length
// is a multiple of PieceSize but for the file's last piece.
func sumPieces(into []pieceDigest, b []byte) {
	h := pieceHashers.Get().(*pieceHasher)
	defer pieceHashers.Put(h)
	for i := range into {
		into[i] = h.sum(b[i*PieceSize : min((i+1)*PieceSize, len(b))])
	}
}

// tableCache persists trusted chunk tables, so that a later mount of the
// same archive, or a strict one after `ovfmount verify`, starts trusted at
// once. One file per archive, named after the archive's identity; written
// whole, atomically, and discarded when damaged or stale.
type tableCache struct {
	path string // "" when persistence is off
	id   []byte
}

// tableMagic changes with the format, including the digest and its
// granularity: files from an older version (OVFMCT02 held a BLAKE3-256 per
// 1 MiB chunk) fail to decode, are discarded, and the next verification
// writes them anew; they are never trusted as they are.
const tableMagic = "OVFMCT03"

func newTableCache(dir string, id []byte) *tableCache {
	return &tableCache{path: cachefile.Path(dir, "chunks", id, ""), id: id}
}

var errTableFile = errors.New("chunk table file is damaged or belongs to another archive")

// load returns the persisted tables, or none when the file is absent,
// damaged or stale.
func (c *tableCache) load() (map[string]*chunkTable, error) {
	if c.path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tables, err := decodeTables(b, c.id)
	if err != nil {
		os.Remove(c.path) // a damaged or stale file is worthless
		return nil, err
	}
	return tables, nil
}

// store writes all trusted tables, atomically: a crash leaves either the
// old file or the new one, never half of one.
func (c *tableCache) store(tables map[string]*chunkTable) error {
	if c.path == "" {
		return nil
	}
	return cachefile.Write(c.path, encodeTables(tables, c.id))
}

// The encoding: magic, identity, count, then per table its name, size,
// algorithm, digest and piece digests (lengths as uvarints), and last a
// SHA-256 of everything before it.
func encodeTables(tables map[string]*chunkTable, id []byte) []byte {
	var b bytes.Buffer
	b.WriteString(tableMagic)
	putBytes(&b, id)
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	putUvarint(&b, uint64(len(names)))
	for _, n := range names {
		t := tables[n]
		putBytes(&b, []byte(t.Name))
		putUvarint(&b, uint64(t.Size))
		putBytes(&b, []byte(t.Algorithm))
		putBytes(&b, t.Digest)
		putUvarint(&b, uint64(len(t.Pieces)))
		for _, c := range t.Pieces {
			b.Write(c[:])
		}
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// decodeTables takes hostile input (a file anyone with access to the cache
// dir may have written): every count is checked against the bytes left
// before anything is allocated for it.
func decodeTables(b []byte, id []byte) (map[string]*chunkTable, error) {
	if len(b) < len(tableMagic)+sha256.Size || string(b[:len(tableMagic)]) != tableMagic {
		return nil, errTableFile
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, errTableFile
	}
	r := bytes.NewReader(body[len(tableMagic):])
	gotID, err := getBytes(r, 64)
	if err != nil || !bytes.Equal(gotID, id) {
		return nil, errTableFile
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return nil, errTableFile
	}
	tables := make(map[string]*chunkTable, n)
	for range n {
		t := &chunkTable{}
		name, err1 := getBytes(r, 1<<16)
		size, err2 := binary.ReadUvarint(r)
		alg, err3 := getBytes(r, 16)
		dig, err4 := getBytes(r, 64)
		count, err5 := binary.ReadUvarint(r)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || count > uint64(r.Len())/uint64(len(pieceDigest{})) ||
			size > 1<<62 || count != uint64(pieceCount(int64(size))) {
			return nil, errTableFile
		}
		t.Name, t.Size, t.Algorithm, t.Digest = string(name), int64(size), string(alg), dig
		t.Pieces = make([]pieceDigest, count)
		for i := range t.Pieces {
			io.ReadFull(r, t.Pieces[i][:])
		}
		tables[t.Name] = t
	}
	if r.Len() != 0 {
		return nil, errTableFile
	}
	return tables, nil
}

func putUvarint(b *bytes.Buffer, v uint64) { b.Write(binary.AppendUvarint(nil, v)) }

func putBytes(b *bytes.Buffer, p []byte) {
	putUvarint(b, uint64(len(p)))
	b.Write(p)
}

func getBytes(r *bytes.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > max || n > uint64(r.Len()) {
		return nil, errTableFile
	}
	p := make([]byte, n)
	_, err = io.ReadFull(r, p)
	return p, err
}
