package integrity

import (
	"context"
	"hash"
	"io"
)

func newBenchPass(r io.ReaderAt, size int64, h hash.Hash) *hashPass {
	return &hashPass{ctx: context.Background(), r: r, size: size, h: h, pieces: make([]pieceDigest, pieceCount(size))}
}
