package nbd

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// rawClient speaks the protocol byte by byte, so that tests can send what
// no real client would. Every read has a deadline: a server that neither
// answers nor closes fails the test instead of hanging it.
type rawClient struct {
	t testing.TB
	c net.Conn
}

func newRaw(t testing.TB, c net.Conn) *rawClient {
	return &rawClient{t: t, c: c}
}

func (r *rawClient) write(b []byte) error {
	r.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := r.c.Write(b)
	return err
}

func (r *rawClient) read(n int) ([]byte, error) {
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, n)
	_, err := io.ReadFull(r.c, b)
	return b, err
}

func (r *rawClient) must(b []byte, err error) []byte {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// greet reads the server's greeting and sends fixed newstyle + no zeroes.
func (r *rawClient) greet() {
	r.t.Helper()
	g := r.must(r.read(18))
	if binary.BigEndian.Uint64(g) != magicNBD || binary.BigEndian.Uint64(g[8:]) != magicOption {
		r.t.Fatalf("greeting %x", g)
	}
	r.must(nil, r.write(binary.BigEndian.AppendUint32(nil, clientFixed|clientNoZeroes)))
}

// option sends an option header with a claimed length and the data given.
func (r *rawClient) option(opt, length uint32, data []byte) error {
	b := binary.BigEndian.AppendUint64(nil, magicOption)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, length)
	return r.write(append(b, data...))
}

// optReply reads one option reply: its type and data.
func (r *rawClient) optReply() (uint32, []byte, error) {
	h, err := r.read(20)
	if err != nil {
		return 0, nil, err
	}
	if binary.BigEndian.Uint64(h) != magicOptionReply {
		return 0, nil, fmt.Errorf("option reply magic %x", h[:8])
	}
	n := binary.BigEndian.Uint32(h[16:])
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("option reply length %d", n)
	}
	d, err := r.read(int(n))
	return binary.BigEndian.Uint32(h[12:]), d, err
}

// simpleOption sends an option and returns the type of its final reply.
func (r *rawClient) simpleOption(opt uint32, data []byte) uint32 {
	r.t.Helper()
	r.must(nil, r.option(opt, uint32(len(data)), data))
	for {
		typ, _, err := r.optReply()
		r.must(nil, err)
		if typ == repAck || typ&(1<<31) != 0 {
			return typ
		}
	}
}

// goData is the payload of NBD_OPT_INFO/GO for name with no info requests.
func goData(name string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint16(b, 0)
}

// metaData is the payload of a metadata context option.
func metaData(name string, queries ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(queries)))
	for _, q := range queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(q)))
		b = append(b, q...)
	}
	return b
}

// open negotiates structured replies, base:allocation and export name.
func (r *rawClient) open(name string) {
	r.t.Helper()
	r.greet()
	if typ := r.simpleOption(optStructured, nil); typ != repAck {
		r.t.Fatalf("structured replies: %#x", typ)
	}
	if typ := r.simpleOption(optSetMetaContext, metaData(name, allocationContext)); typ != repAck {
		r.t.Fatalf("set meta context: %#x", typ)
	}
	if typ := r.simpleOption(optGo, goData(name)); typ != repAck {
		r.t.Fatalf("go: %#x", typ)
	}
}

// request builds a transmission request.
func reqBytes(typ, flags uint16, cookie, off uint64, length uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, data...)
}

// reply is one simple reply or structured reply chunk.
type reply struct {
	simple     bool
	errno      uint32 // of a simple reply or an error chunk
	flags, typ uint16
	cookie     uint64
	payload    []byte
}

// reply reads a simple reply (with dataLen bytes of data if it succeeded)
// or one structured chunk.
func (r *rawClient) reply(dataLen int) (reply, error) {
	m, err := r.read(4)
	if err != nil {
		return reply{}, err
	}
	switch binary.BigEndian.Uint32(m) {
	case magicSimpleReply:
		h, err := r.read(12)
		if err != nil {
			return reply{}, err
		}
		rp := reply{simple: true, errno: binary.BigEndian.Uint32(h), cookie: binary.BigEndian.Uint64(h[4:])}
		if rp.errno == 0 && dataLen > 0 {
			rp.payload, err = r.read(dataLen)
		}
		return rp, err
	case magicStructured:
		h, err := r.read(16)
		if err != nil {
			return reply{}, err
		}
		rp := reply{flags: binary.BigEndian.Uint16(h), typ: binary.BigEndian.Uint16(h[2:]), cookie: binary.BigEndian.Uint64(h[4:])}
		n := binary.BigEndian.Uint32(h[12:])
		if n > MaxPayload+64 {
			return rp, fmt.Errorf("chunk length %d", n)
		}
		if rp.payload, err = r.read(int(n)); err != nil {
			return rp, err
		}
		if rp.typ&(1<<15) != 0 && n >= 4 {
			rp.errno = binary.BigEndian.Uint32(rp.payload)
		}
		return rp, nil
	}
	return reply{}, fmt.Errorf("reply magic %x", m)
}

// final reads replies until the last one of a request (a simple reply or
// a chunk flagged done), and returns them all.
func (r *rawClient) final(dataLen int) ([]reply, error) {
	var all []reply
	for {
		rp, err := r.reply(dataLen)
		if err != nil {
			return all, err
		}
		all = append(all, rp)
		if rp.simple || rp.flags&replyFlagDone != 0 {
			return all, nil
		}
	}
}

// assembly gathers the chunks of structured READ replies, by cookie.
type assembly struct {
	off     uint64
	data    []byte
	covered int
	chunks  []uint16 // chunk types, in order
	errno   uint32
}

// add takes one chunk; it reports whether the reply is complete.
func (a *assembly) add(t testing.TB, rp reply) bool {
	t.Helper()
	a.chunks = append(a.chunks, rp.typ)
	p := rp.payload
	switch rp.typ {
	case replyTypeOffsetData, replyTypeOffsetHole:
		if len(p) < 8 {
			t.Fatalf("chunk of %d bytes", len(p))
		}
		at := binary.BigEndian.Uint64(p)
		n := uint64(len(p) - 8)
		if rp.typ == replyTypeOffsetHole {
			if len(p) != 12 {
				t.Fatalf("hole chunk of %d bytes", len(p))
			}
			n = uint64(binary.BigEndian.Uint32(p[8:]))
		}
		if at < a.off || at+n > a.off+uint64(len(a.data)) || n == 0 {
			t.Fatalf("chunk of %d bytes at %d outside the read of %d at %d", n, at, len(a.data), a.off)
		}
		if rp.typ == replyTypeOffsetData {
			copy(a.data[at-a.off:], p[8:])
		} // holes stay zero
		a.covered += int(n)
	case replyTypeNone:
	default:
		a.errno = rp.errno
	}
	return rp.flags&replyFlagDone != 0
}

// readAt sends a READ and reassembles its structured reply.
func (r *rawClient) readAt(cookie, off uint64, n uint32, flags uint16) *assembly {
	r.t.Helper()
	r.must(nil, r.write(reqBytes(cmdRead, flags, cookie, off, n, nil)))
	a := &assembly{off: off, data: make([]byte, n)}
	for {
		rp, err := r.reply(0)
		r.must(nil, err)
		if rp.simple || rp.cookie != cookie {
			r.t.Fatalf("reply %+v to a structured read", rp)
		}
		if a.add(r.t, rp) {
			return a
		}
	}
}
