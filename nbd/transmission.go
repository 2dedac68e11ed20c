package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rs/zerolog"
)

// request is one transmission request as read from the client.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	off    uint64
	length uint32
	data   []byte // WRITE's payload
}

// reqError is a request's failure as the client is told it.
type reqError struct {
	errno uint32
	msg   string
}

func (e *reqError) Error() string { return e.msg }

func fail(errno uint32, format string, a ...any) error {
	return &reqError{errno: errno, msg: fmt.Sprintf(format, a...)}
}

// transmit reads requests and serves each on its own goroutine, at most
// the limiter's worth at once; replies go out as they are ready, in any
// order, which the protocol allows. It returns nil after NBD_CMD_DISC
// (once every request before it is answered) and an error when the client
// breaks the protocol or the connection fails; in-flight work is then
// cancelled.
func (c *conn) transmit(log zerolog.Logger) error {
	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()
	c.lim = newLimiter(c.s.opts.MaxInFlight, c.s.opts.MaxInFlightBytes)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			c.stop(cancel)
			if errors.Is(err, io.EOF) {
				return errors.New("nbd: client closed the connection without NBD_CMD_DISC")
			}
			return fmt.Errorf("nbd: request header: %w", err)
		}
		if m := binary.BigEndian.Uint32(hdr[0:]); m != magicRequest {
			c.stop(cancel)
			return fmt.Errorf("nbd: request magic %#x", m)
		}
		r := &request{
			flags:  binary.BigEndian.Uint16(hdr[4:]),
			typ:    binary.BigEndian.Uint16(hdr[6:]),
			cookie: binary.BigEndian.Uint64(hdr[8:]),
			off:    binary.BigEndian.Uint64(hdr[16:]),
			length: binary.BigEndian.Uint32(hdr[24:]),
		}
		var cost int64
		switch r.typ {
		case cmdDisc:
			c.work.Wait()
			return nil
		case cmdWrite:
			if r.length > MaxPayload {
				// Its payload follows and cannot be refused: drop the client.
				c.stop(cancel)
				return fmt.Errorf("nbd: write of %d bytes over the %d maximum", r.length, MaxPayload)
			}
			cost = int64(r.length)
		case cmdRead:
			if r.length <= MaxPayload {
				cost = int64(r.length)
			}
		}
		c.lim.acquire(cost)
		if r.typ == cmdWrite {
			r.data = make([]byte, r.length)
			if _, err := io.ReadFull(br, r.data); err != nil {
				c.lim.release(cost)
				c.stop(cancel)
				return fmt.Errorf("nbd: write payload: %w", err)
			}
		}
		c.work.Add(1)
		go func() {
			defer c.work.Done()
			defer c.lim.release(cost)
			c.serve(ctx, log, r)
		}()
	}
}

// stop ends a connection that failed: its requests' work is cancelled and
// their replies fail at once, then they are waited for.
func (c *conn) stop(cancel context.CancelFunc) {
	cancel()
	c.nc.Close()
	c.work.Wait()
}

// serve answers one request and logs it once if it failed.
func (c *conn) serve(ctx context.Context, log zerolog.Logger, r *request) {
	err := c.do(ctx, r)
	if err == nil {
		return
	}
	var re *reqError
	if !errors.As(err, &re) {
		re = &reqError{errno: errIO, msg: err.Error()}
	}
	if ctx.Err() != nil {
		return // the connection is gone; nobody is waiting for the reply
	}
	// The export failing is the server's news; a client's bad request is
	// the client's, and quieter, so that a hostile one cannot flood the log.
	lvl := zerolog.InfoLevel
	if re.errno == errIO {
		lvl = zerolog.WarnLevel
	}
	log.WithLevel(lvl).Str("cmd", cmdName(r.typ)).Uint64("offset", r.off).Uint32("length", r.length).
		Uint32("errno", re.errno).Msg("nbd: request failed: " + re.msg)
	c.sendError(r, re.errno, re.msg)
}

// do performs r and sends its successful reply, or returns the error to
// send. Ranges are checked here against the export's size, without
// overflow, before the export sees them.
func (c *conn) do(ctx context.Context, r *request) error {
	size := uint64(c.export.Size())
	inRange := r.off <= size && uint64(r.length) <= size-r.off
	allowed := uint16(0)
	if c.writer != nil {
		allowed |= cmdFlagFUA // valid on every command once advertised
	}
	switch r.typ {
	case cmdRead:
		if c.structured {
			allowed |= cmdFlagDF
		}
	case cmdWriteZeroes:
		allowed |= cmdFlagNoHole
	case cmdBlockStatus:
		allowed |= cmdFlagReqOne
	case cmdWrite, cmdFlush, cmdTrim:
	default:
		return fail(errInvalid, "unknown command %d", r.typ)
	}
	if r.flags&^allowed != 0 {
		return fail(errInvalid, "%s: flags %#x not allowed", cmdName(r.typ), r.flags&^allowed)
	}
	off, length := int64(r.off), int64(r.length)

	if r.typ == cmdRead {
		switch {
		case r.length > MaxPayload && c.structured:
			return fail(errOverflow, "read of %d bytes over the %d maximum", r.length, MaxPayload)
		case r.length > MaxPayload:
			return fail(errInvalid, "read of %d bytes over the %d maximum", r.length, MaxPayload)
		case !inRange:
			return fail(errInvalid, "read of %d bytes at %d past the end (%d)", r.length, r.off, size)
		}
		return c.read(ctx, r, off, length)
	}
	if r.typ == cmdBlockStatus {
		if !c.structured || !c.metaAlloc {
			return fail(errInvalid, "block status without the base:allocation context selected")
		}
		if r.length == 0 || !inRange {
			return fail(errInvalid, "block status of %d bytes at %d outside the export (%d)", r.length, r.off, size)
		}
		return c.blockStatus(ctx, r, off, length)
	}

	w := c.writer
	if w == nil {
		return fail(errPerm, "%s: the export is read-only", cmdName(r.typ))
	}
	var err error
	switch r.typ {
	case cmdWrite:
		if !inRange {
			return fail(errNoSpace, "write of %d bytes at %d past the end (%d)", r.length, r.off, size)
		}
		err = w.WriteAt(ctx, r.data, off)
	case cmdFlush:
		err = w.Flush(ctx)
	case cmdTrim:
		if !inRange {
			return fail(errInvalid, "trim of %d bytes at %d past the end (%d)", r.length, r.off, size)
		}
		err = w.Trim(ctx, off, length)
	case cmdWriteZeroes:
		if !inRange {
			return fail(errNoSpace, "write zeroes of %d bytes at %d past the end (%d)", r.length, r.off, size)
		}
		err = w.WriteZeroes(ctx, off, length, r.flags&cmdFlagNoHole == 0)
	}
	if err == nil && r.flags&cmdFlagFUA != 0 && r.typ != cmdFlush {
		err = w.Flush(ctx)
	}
	if err != nil {
		return fail(errIO, "%s of %d bytes at %d: %v", cmdName(r.typ), r.length, r.off, err)
	}
	c.sendSimple(r.cookie, 0, nil)
	return nil
}

// blockStatus answers with base:allocation descriptors from the export's
// extents: neighbours with the same flags are merged, none reaches past
// the request, at most maxDescriptors are sent (the client asks on from
// where they end), and only one with REQ_ONE.
func (c *conn) blockStatus(ctx context.Context, r *request, off, length int64) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+8*16), allocationContextID)
	var total int64
	count := 0
	var last uint32
	bad := false
	err := c.export.Extents(ctx, off, length, func(n int64, hole, zero bool) bool {
		if total >= length || count >= maxDescriptors {
			return false // an export that calls on after being told to stop
		}
		if n <= 0 {
			bad = true
			return false
		}
		n = min(n, length-total)
		var flags uint32
		if hole {
			flags |= stateHole
		}
		if zero {
			flags |= stateZero
		}
		if count > 0 && flags == last {
			i := len(b) - 8
			binary.BigEndian.PutUint32(b[i:], binary.BigEndian.Uint32(b[i:])+uint32(n))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(n))
			b = binary.BigEndian.AppendUint32(b, flags)
			count++
			last = flags
		}
		total += n
		return total < length && count < maxDescriptors && r.flags&cmdFlagReqOne == 0
	})
	switch {
	case err != nil:
		return fail(errIO, "extents of %d bytes at %d: %v", length, off, err)
	case bad:
		return fail(errIO, "extents of %d bytes at %d: the export gave an empty extent", length, off)
	case count == 0:
		return fail(errIO, "extents of %d bytes at %d: the export gave none", length, off)
	}
	c.sendChunk(r.cookie, replyFlagDone, replyTypeBlockStatus, b)
	return nil
}

// cmdName names a command in logs and error messages.
func cmdName(typ uint16) string {
	switch typ {
	case cmdRead:
		return "read"
	case cmdWrite:
		return "write"
	case cmdDisc:
		return "disconnect"
	case cmdFlush:
		return "flush"
	case cmdTrim:
		return "trim"
	case cmdWriteZeroes:
		return "write zeroes"
	case cmdBlockStatus:
		return "block status"
	}
	return fmt.Sprintf("command %d", typ)
}
