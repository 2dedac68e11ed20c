package nbd

import (
	"encoding/binary"
	"net"
	"time"
)

// send writes one whole reply: replies of concurrent requests never
// interleave. A reply that cannot be written within ReplyTimeout, or at
// all, leaves the stream broken, so the connection is closed and every
// later reply is dropped; the reader then fails and ends the connection.
// Other connections never wait on this one.
func (c *conn) send(bufs ...[]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.ReplyTimeout))
	nb := net.Buffers(bufs)
	if _, err := nb.WriteTo(c.nc); err != nil {
		c.werr = err
		c.nc.Close()
	}
}

// sendSimple sends a simple reply, with data for a successful READ.
func (c *conn) sendSimple(cookie uint64, errno uint32, data []byte) {
	var h [16]byte
	binary.BigEndian.PutUint32(h[0:], magicSimpleReply)
	binary.BigEndian.PutUint32(h[4:], errno)
	binary.BigEndian.PutUint64(h[8:], cookie)
	c.send(h[:], data)
}

// sendChunk sends one structured reply chunk; payload is its parts.
func (c *conn) sendChunk(cookie uint64, flags, typ uint16, payload ...[]byte) {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	var h [20]byte
	binary.BigEndian.PutUint32(h[0:], magicStructured)
	binary.BigEndian.PutUint16(h[4:], flags)
	binary.BigEndian.PutUint16(h[6:], typ)
	binary.BigEndian.PutUint64(h[8:], cookie)
	binary.BigEndian.PutUint32(h[16:], uint32(n))
	c.send(append([][]byte{h[:]}, payload...)...)
}

// sendError fails a request: with its message in an error chunk when
// structured replies are on (a READ must then never get a simple reply),
// else with the error number alone.
func (c *conn) sendError(r *request, errno uint32, msg string) {
	if !c.structured {
		c.sendSimple(r.cookie, errno, nil)
		return
	}
	msg = truncate(msg, maxErrorMessage)
	p := binary.BigEndian.AppendUint32(nil, errno)
	p = binary.BigEndian.AppendUint16(p, uint16(len(msg)))
	c.sendChunk(r.cookie, replyFlagDone, replyTypeError, append(p, msg...))
}
