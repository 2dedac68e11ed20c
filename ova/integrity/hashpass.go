package integrity

import (
	"context"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// hashPass reads a file once, in ChunkSize reads, and feeds every chunk
// to the manifest's hash and to the table, which records a digest of each
// of its PieceSize pieces. The three stages run on their own goroutines,
// joined by a small ring of buffers:
//
//	reader --> manifest hash (SHA-256 etc.: one stream, the slowest stage)
//	       \-> piece digests (BLAKE3, independent per piece)
//
// The manifest digest is one sequential stream that no core can share, so
// the pass is as fast as that stage alone only if it never waits: the
// reads and the piece digests happen meanwhile on the other cores. With
// the read on the hashing goroutine instead, every chunk's copy out of the
// page cache added to the critical path (a fifth of the time on 2 cores).
//
// Both hashers see the same buffer, so the table records digests of
// exactly the bytes the manifest digest covered.
type hashPass struct {
	ctx      context.Context // stops the pass between chunks
	r        io.ReaderAt
	size     int64
	h        hash.Hash
	pieces   []pieceDigest // pieceCount(size) of them
	progress func(int64)
}

// passBuffers is how many chunks may be in flight between the stages:
// enough that a hasher that stalls briefly does not stop the reader.
const passBuffers = 8

// passBuf is a chunk on its way through both hashers; the last one to
// finish with it returns it to the ring.
type passBuf struct {
	c    int
	data []byte
	refs atomic.Int32
}

// run hashes the file and returns the first read error, if any; on an
// error the hash and table are incomplete.
func (p *hashPass) run() error {
	n := int((p.size + ChunkSize - 1) / ChunkSize)
	free := make(chan *passBuf, passBuffers)
	for range passBuffers {
		free <- &passBuf{data: getChunkBuf(ChunkSize)}
	}
	defer func() {
		for range passBuffers {
			putChunkBuf((<-free).data)
		}
	}()
	release := func(b *passBuf) {
		if b.refs.Add(-1) == 0 {
			free <- b
		}
	}
	toHash := make(chan *passBuf, passBuffers)
	toTable := make(chan *passBuf, passBuffers)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for b := range toHash {
			p.h.Write(b.data)
			if p.progress != nil {
				p.progress(int64(len(b.data)))
			}
			release(b)
		}
	}()
	go func() {
		defer wg.Done()
		for b := range toTable {
			first := b.c * piecesPerChunk
			sumPieces(p.pieces[first:min(first+piecesPerChunk, len(p.pieces))], b.data)
			release(b)
		}
	}()
	var readErr error
	for c := 0; c < n; c++ {
		if readErr = p.ctx.Err(); readErr != nil {
			break
		}
		b := <-free
		start := int64(c) * ChunkSize
		b.c, b.data = c, b.data[:min(ChunkSize, p.size-start)]
		if _, err := p.r.ReadAt(b.data, start); err != nil && err != io.EOF {
			readErr = err
			free <- b
			break
		}
		b.refs.Store(2)
		toHash <- b
		toTable <- b
	}
	close(toHash)
	close(toTable)
	wg.Wait()
	return readErr
}
