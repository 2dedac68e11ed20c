package nbd

import (
	"context"
	"encoding/binary"
)

// minHoleChunk is the shortest run of zeroes sent as an
// NBD_REPLY_TYPE_OFFSET_HOLE chunk; shorter ones go as data, so that a
// fragmented range does not become thousands of chunks (at most 2 × 32 MiB
// / 64 KiB = 1,024 a read).
const minHoleChunk = 64 << 10

// piece is a part of a READ: data to read, or zeroes to send as a hole.
type piece struct {
	off, n int64
	hole   bool
}

// read answers a READ. With structured replies (and no NBD_CMD_FLAG_DF),
// runs the export reports as reading zeroes are sent as hole chunks
// instead of bytes: a sparse disk view costs a client no bandwidth for its
// holes. Every byte is read before any chunk is sent, so an error is
// answered alone and the last chunk can carry NBD_REPLY_FLAG_DONE.
func (c *conn) read(ctx context.Context, r *request, off, length int64) error {
	pieces := []piece{{off, length, false}}
	if c.structured && r.flags&cmdFlagDF == 0 && length >= minHoleChunk {
		pieces = c.readPieces(ctx, off, length)
	}
	var dataLen int64
	for _, p := range pieces {
		if !p.hole {
			dataLen += p.n
		}
	}
	buf := make([]byte, dataLen)
	b := buf
	for _, p := range pieces {
		if p.hole {
			continue
		}
		if err := c.export.ReadAt(ctx, b[:p.n], p.off); err != nil {
			return fail(errIO, "read of %d bytes at %d: %v", p.n, p.off, err)
		}
		b = b[p.n:]
	}
	switch {
	case !c.structured:
		c.sendSimple(r.cookie, 0, buf)
		return nil
	case length == 0:
		c.sendChunk(r.cookie, replyFlagDone, replyTypeNone)
		return nil
	}
	for i, p := range pieces {
		var flags uint16
		if i == len(pieces)-1 {
			flags = replyFlagDone
		}
		h := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(p.off))
		if p.hole {
			c.sendChunk(r.cookie, flags, replyTypeOffsetHole, binary.BigEndian.AppendUint32(h, uint32(p.n)))
			continue
		}
		c.sendChunk(r.cookie, flags, replyTypeOffsetData, h, buf[:p.n])
		buf = buf[p.n:]
	}
	return nil
}

// readPieces splits [off, off+length) by the export's extents into data
// and holes: runs of zeroes of at least minHoleChunk. Where the extents
// fail or fall short, the rest is data: holes are an optimisation, never
// needed.
func (c *conn) readPieces(ctx context.Context, off, length int64) []piece {
	var runs []piece // hole here means "reads as zeroes"
	var covered int64
	err := c.export.Extents(ctx, off, length, func(n int64, _, zero bool) bool {
		if n <= 0 || covered >= length {
			return false
		}
		n = min(n, length-covered)
		runs = appendPiece(runs, piece{off + covered, n, zero})
		covered += n
		return covered < length
	})
	if err != nil {
		return []piece{{off, length, false}}
	}
	if covered < length {
		runs = appendPiece(runs, piece{off + covered, length - covered, false})
	}
	var pieces []piece
	for _, p := range runs {
		p.hole = p.hole && p.n >= minHoleChunk
		pieces = appendPiece(pieces, p)
	}
	return pieces
}

// appendPiece appends p, merged into the last piece when of the same kind.
func appendPiece(pieces []piece, p piece) []piece {
	if k := len(pieces) - 1; k >= 0 && pieces[k].hole == p.hole {
		pieces[k].n += p.n
		return pieces
	}
	return append(pieces, p)
}
