package gzindex

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// identityBytes is how much of each end of the stream the identity covers.
// The last KiB holds the last member's CRC-32 and size, so a stream that
// was rewritten, appended to or truncated almost always changes it.
const identityBytes = 1024

// identity names the stream an index was built from: a SHA-256 over its
// size, its first KiB and its last KiB. Checking it costs two small reads,
// so a persisted index can be checked against a file at every mount.
type identity [sha256.Size]byte

func streamIdentity(r io.ReaderAt, size int64) (identity, error) {
	h := sha256.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(size))
	h.Write(n[:])
	buf := make([]byte, min(size, identityBytes))
	for _, at := range []int64{0, size - int64(len(buf))} {
		k, err := r.ReadAt(buf, at)
		if k < len(buf) {
			if err == nil || errors.Is(err, io.EOF) {
				return identity{}, fmt.Errorf("%w: the reader holds fewer than the %d bytes declared", ErrTruncated, size)
			}
			return identity{}, fmt.Errorf("gzindex: reading %d bytes at compressed byte %d: %w", len(buf), at, err)
		}
		h.Write(buf)
	}
	var id identity
	h.Sum(id[:0])
	return id, nil
}

// Matches reports whether the index was built from a stream of this size
// whose first and last KiB are the ones r holds: a cheap check, before
// using a persisted index, that it fits the stream. It does not prove that
// the bytes in between are unchanged.
func (ix *Index) Matches(r io.ReaderAt, size int64) bool {
	if size != ix.compressed {
		return false
	}
	id, err := streamIdentity(r, size)
	return err == nil && id == ix.ident
}
