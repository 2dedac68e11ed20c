package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// expectClosed checks that the server dropped the connection: a read gets
// EOF (or a reset), never a deadline.
func (r *rawClient) expectClosed() {
	r.t.Helper()
	b := make([]byte, 1<<16)
	for {
		_, err := r.c.Read(b)
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("the server neither answered nor closed the connection")
		}
		return
	}
}

// TestHostileHandshake: malformed options get an error reply or close that
// one connection; the server keeps serving (checked after each case by a
// normal client).
func TestHostileHandshake(t *testing.T) {
	m := newMem(1<<20, 7)
	socket, _ := testServer(t, map[string]Export{"disk": m, "other": newMem(blockSize, 8)}, Options{})
	cases := []struct {
		name string
		run  func(r *rawClient)
	}{
		{"unknown client flags", func(r *rawClient) {
			r.must(r.read(18))
			r.must(nil, r.write([]byte{0, 0, 0, 0x10}))
			r.expectClosed()
		}},
		{"bad option magic", func(r *rawClient) {
			r.greet()
			r.must(nil, r.write(bytes.Repeat([]byte{0x42}, 16)))
			r.expectClosed()
		}},
		{"option length 2^32-1", func(r *rawClient) {
			r.greet()
			r.must(nil, r.option(optGo, 1<<32-1, []byte("disk")))
			r.expectClosed()
		}},
		{"info name longer than the option", func(r *rawClient) {
			r.greet()
			d := binary.BigEndian.AppendUint32(nil, 1000)
			d = append(d, "disk\x00\x00"...)
			if typ := r.simpleOption(optInfo, d); typ != repErrInvalid {
				t.Errorf("reply %#x, want NBD_REP_ERR_INVALID", typ)
			}
			d = binary.BigEndian.AppendUint32(nil, 1<<32-1)
			d = append(d, "disk\x00\x00"...)
			if typ := r.simpleOption(optGo, d); typ != repErrInvalid {
				t.Errorf("reply %#x, want NBD_REP_ERR_INVALID", typ)
			}
			// Information requests that do not fill the option exactly.
			if typ := r.simpleOption(optGo, append(goData("disk"), 0)); typ != repErrInvalid {
				t.Errorf("reply %#x, want NBD_REP_ERR_INVALID", typ)
			}
			if typ := r.simpleOption(optGo, []byte{0, 0}); typ != repErrInvalid {
				t.Errorf("short option: reply %#x, want NBD_REP_ERR_INVALID", typ)
			}
			// The connection still works.
			if typ := r.simpleOption(optGo, goData("disk")); typ != repAck {
				t.Errorf("go after errors: %#x", typ)
			}
		}},
		{"unknown export", func(r *rawClient) {
			r.greet()
			if typ := r.simpleOption(optGo, goData("nope")); typ != repErrUnknown {
				t.Errorf("reply %#x, want NBD_REP_ERR_UNKNOWN", typ)
			}
			// Two exports: no default.
			if typ := r.simpleOption(optInfo, goData("")); typ != repErrUnknown {
				t.Errorf("default export among two: reply %#x, want NBD_REP_ERR_UNKNOWN", typ)
			}
			r.must(nil, r.option(optExportName, 4, []byte("nope")))
			r.expectClosed()
		}},
		{"unknown option and data where none belongs", func(r *rawClient) {
			r.greet()
			if typ := r.simpleOption(4242, []byte("junk")); typ != repErrUnsup {
				t.Errorf("unknown option: %#x", typ)
			}
			for _, opt := range []uint32{optList, optStructured, optStartTLS} {
				want := repErrInvalid
				if opt == optStartTLS {
					want = repErrUnsup // no TLS configured
				}
				if typ := r.simpleOption(opt, []byte{1}); typ != want {
					t.Errorf("option %d with data: %#x, want %#x", opt, typ, want)
				}
			}
		}},
		{"malformed meta context", func(r *rawClient) {
			r.greet()
			if typ := r.simpleOption(optSetMetaContext, metaData("disk", allocationContext)); typ != repErrInvalid {
				t.Errorf("set before structured replies: %#x", typ)
			}
			r.simpleOption(optStructured, nil)
			bad := [][]byte{
				{0, 0, 0, 4, 'd'},                    // name past the end
				metaData("disk")[:8],                 // no query count
				append(metaData("disk"), 1),          // trailing byte
				{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, // 2^32-1 queries
				append(metaData("disk", "base:allocation")[:len("disk")+8], 0, 0, 1, 0), // query past the end
			}
			for i, d := range bad {
				for _, opt := range []uint32{optListMetaContext, optSetMetaContext} {
					if typ := r.simpleOption(opt, d); typ != repErrInvalid {
						t.Errorf("malformed %d, option %d: %#x", i, opt, typ)
					}
				}
			}
			if typ := r.simpleOption(optListMetaContext, metaData("nope")); typ != repErrUnknown {
				t.Errorf("meta context of an unknown export: %#x", typ)
			}
		}},
		{"abort", func(r *rawClient) {
			r.greet()
			if typ := r.simpleOption(optAbort, nil); typ != repAck {
				t.Errorf("abort: %#x", typ)
			}
			r.expectClosed()
		}},
		{"hang up mid-option", func(r *rawClient) {
			r.greet()
			r.must(nil, r.option(optGo, 100, []byte("dis")))
			r.c.Close()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRaw(t, dialRaw(t, socket))
			c.run(r)
			checkServing(t, socket, m)
		})
	}
}

// checkServing: a well-behaved client is served.
func checkServing(t *testing.T, socket string, m *memExport) {
	t.Helper()
	checkServingName(t, socket, "disk", m)
}

func checkServingName(t *testing.T, socket, name string, m *memExport) {
	t.Helper()
	r := newRaw(t, dialRaw(t, socket))
	r.open(name)
	r.must(nil, r.write(reqBytes(cmdRead, 0, 7, 4096, 8192, nil)))
	rp, err := r.final(0)
	if err != nil || len(rp) != 1 || rp[0].typ != replyTypeOffsetData || !bytes.Equal(rp[0].payload[8:], m.data[4096:4096+8192]) {
		t.Fatalf("a normal client was not served: %v %+v", err, rp)
	}
}

// TestHostileRequests: bad requests get an error, or close that connection
// when the stream cannot be followed any more.
func TestHostileRequests(t *testing.T) {
	m := newMem(1<<20, 9)
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{})
	size := uint64(m.Size())
	errCases := []struct {
		name  string
		req   []byte
		errno uint32
	}{
		{"read of 2^31 bytes", reqBytes(cmdRead, 0, 1, 0, 1<<31, nil), errOverflow},
		{"read past the end", reqBytes(cmdRead, 0, 1, size-10, 11, nil), errInvalid},
		{"read at 2^64-1", reqBytes(cmdRead, 0, 1, 1<<64-1, 2, nil), errInvalid},
		{"unknown command", reqBytes(42, 0, 1, 0, 512, nil), errInvalid},
		{"unknown flag", reqBytes(cmdRead, 1<<9, 1, 0, 512, nil), errInvalid},
		{"write to a read-only export", reqBytes(cmdWrite, 0, 1, 0, 3, []byte("abc")), errPerm},
		{"trim on a read-only export", reqBytes(cmdTrim, 0, 1, 0, 4096, nil), errPerm},
		{"write zeroes on a read-only export", reqBytes(cmdWriteZeroes, 0, 1, 0, 4096, nil), errPerm},
		{"flush on a read-only export", reqBytes(cmdFlush, 0, 1, 0, 0, nil), errPerm},
		{"FUA not offered", reqBytes(cmdRead, cmdFlagFUA, 1, 0, 512, nil), errInvalid},
		{"block status past the end", reqBytes(cmdBlockStatus, 0, 1, size, 1, nil), errInvalid},
		{"block status of 0 bytes", reqBytes(cmdBlockStatus, 0, 1, 0, 0, nil), errInvalid},
	}
	r := newRaw(t, dialRaw(t, socket))
	r.open("disk")
	for _, c := range errCases {
		r.must(nil, r.write(c.req))
		rp, err := r.final(0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if last := rp[len(rp)-1]; last.errno != c.errno || last.cookie != 1 {
			t.Errorf("%s: error %d (cookie %d), want %d", c.name, last.errno, last.cookie, c.errno)
		} else if len(last.payload) <= 6 {
			t.Errorf("%s: error chunk without a message", c.name)
		}
	}
	checkServing(t, socket, m)

	t.Run("simple replies", func(t *testing.T) {
		r := newRaw(t, dialRaw(t, socket))
		r.greet()
		r.simpleOption(optGo, goData("disk"))
		for _, req := range [][]byte{reqBytes(cmdRead, 0, 3, 0, 1<<31, nil), reqBytes(cmdBlockStatus, 0, 3, 0, 512, nil)} {
			r.must(nil, r.write(req))
			rp, err := r.reply(0)
			if err != nil || !rp.simple || rp.errno != errInvalid {
				t.Errorf("reply %+v %v, want a simple EINVAL", rp, err)
			}
		}
		r.must(nil, r.write(reqBytes(cmdRead, 0, 4, 512, 512, nil)))
		if rp, err := r.reply(512); err != nil || !rp.simple || !bytes.Equal(rp.payload, m.data[512:1024]) {
			t.Errorf("simple read: %+v %v", rp, err)
		}
	})

	dropCases := []struct {
		name string
		req  []byte
	}{
		{"write of 2^31 bytes", reqBytes(cmdWrite, 0, 1, 0, 1<<31, nil)},
		{"bad request magic", bytes.Repeat([]byte{0x25}, 28)},
		{"write that hangs up mid-payload", reqBytes(cmdWrite, 0, 1, 0, 4096, []byte("short"))},
	}
	for _, c := range dropCases {
		t.Run(c.name, func(t *testing.T) {
			r := newRaw(t, dialRaw(t, socket))
			r.open("disk")
			r.must(nil, r.write(c.req))
			if c.name == "write that hangs up mid-payload" {
				r.c.Close()
			} else {
				r.expectClosed()
			}
			checkServing(t, socket, m)
		})
	}
}

// TestBlockStatus checks REQ_ONE and replies bounded by the request.
func TestBlockStatus(t *testing.T) {
	m := newMem(1<<20, 10)
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("disk")
	descs := func(flags uint16, off uint64, length uint32) [][2]uint32 {
		t.Helper()
		r.must(nil, r.write(reqBytes(cmdBlockStatus, flags, 5, off, length, nil)))
		rp, err := r.final(0)
		if err != nil || len(rp) != 1 || rp[0].typ != replyTypeBlockStatus {
			t.Fatalf("block status: %v %+v", err, rp)
		}
		p := rp[0].payload
		if binary.BigEndian.Uint32(p) != allocationContextID || (len(p)-4)%8 != 0 {
			t.Fatalf("block status payload %x", p)
		}
		var out [][2]uint32
		for i := 4; i < len(p); i += 8 {
			out = append(out, [2]uint32{binary.BigEndian.Uint32(p[i:]), binary.BigEndian.Uint32(p[i+4:])})
		}
		return out
	}
	if d := descs(cmdFlagReqOne, 1000, 3*blockSize); len(d) != 1 || d[0] != [2]uint32{blockSize - 1000, 0} {
		t.Errorf("REQ_ONE: %v", d)
	}
	if d := descs(cmdFlagReqOne, blockSize, 100); len(d) != 1 || d[0] != [2]uint32{100, stateHole | stateZero} {
		t.Errorf("REQ_ONE in a hole: %v", d)
	}
	d := descs(0, 0, uint32(m.Size()))
	var sum uint32
	for _, x := range d {
		sum += x[0]
	}
	if sum != uint32(m.Size()) || len(d) != len(wantExtents(m)) {
		t.Errorf("whole export: %v", d)
	}
}

// TestStalledClient: a client that sends requests and never reads the
// replies blocks only itself; another client is served meanwhile, and
// Close (at the end of the test) ends the stalled connection.
func TestStalledClient(t *testing.T) {
	m := newMem(4<<20, 11)
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{})
	stalled := newRaw(t, dialRaw(t, socket))
	stalled.open("disk")
	// 64 MiB of replies asked for, far beyond any socket buffer; the
	// writes may block once the server stops reading, so they run aside.
	go func() {
		for i := range 64 {
			if stalled.write(reqBytes(cmdRead, 0, uint64(i), 0, 1<<20, nil)) != nil {
				return
			}
		}
	}()
	for range 3 {
		checkServing(t, socket, m)
	}
}

// TestPipelined: many requests in flight on one connection, and several
// connections at once, each reply matched to its request by cookie.
func TestPipelined(t *testing.T) {
	w := &writableExport{memExport: *newMem(4<<20, 12)}
	socket, _ := testServer(t, map[string]Export{"disk": w}, Options{MaxInFlight: 4})
	want := w.bytes()
	var wg sync.WaitGroup
	for client := range 4 {
		wg.Go(func() {
			r := newRaw(t, dialRaw(t, socket))
			r.open("disk")
			rng := rand.New(rand.NewPCG(uint64(client), 1))
			type span struct{ off, n uint64 }
			reqs := map[uint64]span{}
			var all []byte
			for i := range 64 {
				n := 1 + rng.Uint64N(256<<10)
				off := rng.Uint64N(uint64(len(want)) - n)
				reqs[uint64(i)] = span{off, n}
				all = append(all, reqBytes(cmdRead, 0, uint64(i), off, uint32(n), nil)...)
			}
			// Requests are written while replies are read: with only a few
			// in flight, the server stops reading until replies are taken.
			go r.write(all)
			pending := map[uint64]*assembly{}
			for len(reqs) > 0 {
				rp, err := r.reply(0)
				if err != nil {
					t.Error(err)
					return
				}
				s, ok := reqs[rp.cookie]
				if !ok || rp.simple {
					t.Errorf("client %d: unexpected reply %+v", client, rp)
					return
				}
				a := pending[rp.cookie]
				if a == nil {
					a = &assembly{off: s.off, data: make([]byte, s.n)}
					pending[rp.cookie] = a
				}
				if !a.add(t, rp) {
					continue
				}
				if a.errno != 0 || a.covered != int(s.n) || !bytes.Equal(a.data, want[s.off:s.off+s.n]) {
					t.Errorf("client %d: reply to cookie %d is wrong", client, rp.cookie)
				}
				delete(reqs, rp.cookie)
			}
			r.must(nil, r.write(reqBytes(cmdDisc, 0, 99, 0, 0, nil)))
			if _, err := r.c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("after NBD_CMD_DISC: %v, want EOF", err)
			}
		})
	}
	wg.Wait()
}

// TestWrites checks writes, FUA and zeroing over the raw protocol.
func TestWrites(t *testing.T) {
	w := &writableExport{memExport: *newMem(1<<20, 13)}
	socket, _ := testServer(t, map[string]Export{"rw": w}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("rw")
	ok := func(req []byte) {
		t.Helper()
		r.must(nil, r.write(req))
		rp, err := r.final(0)
		if err != nil || rp[len(rp)-1].errno != 0 {
			t.Fatalf("%v %+v", err, rp)
		}
	}
	ok(reqBytes(cmdWrite, cmdFlagFUA, 1, 100, 5, []byte("hello")))
	ok(reqBytes(cmdWriteZeroes, cmdFlagNoHole, 2, 2*blockSize, blockSize, nil))
	ok(reqBytes(cmdTrim, 0, 3, 0, blockSize, nil))
	ok(reqBytes(cmdFlush, 0, 4, 0, 0, nil))
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.alloc[2] || !bytes.Equal(w.data[2*blockSize:3*blockSize], make([]byte, blockSize)) {
		t.Error("NO_HOLE write zeroes")
	}
	if w.alloc[0] || w.data[100] != 0 {
		t.Error("trim")
	}
	if w.flushes != 2 {
		t.Errorf("%d flushes, want 2 (FUA and FLUSH)", w.flushes)
	}
}

func TestWritePastEnd(t *testing.T) {
	w := &writableExport{memExport: *newMem(1<<20, 13)}
	socket, _ := testServer(t, map[string]Export{"rw": w}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("rw")
	r.must(nil, r.write(reqBytes(cmdWrite, 0, 5, uint64(w.Size())-2, 3, []byte("abc"))))
	if rp, err := r.final(0); err != nil || rp[0].errno != errNoSpace {
		t.Errorf("write past the end: %v %+v", err, rp)
	}
	checkServingName(t, socket, "rw", &w.memExport)
}

// blockingExport's reads wait for their context to end, and report it.
type blockingExport struct {
	memExport
	started, cancelled chan struct{}
}

func (b *blockingExport) ReadAt(ctx context.Context, p []byte, off int64) error {
	b.started <- struct{}{}
	<-ctx.Done()
	b.cancelled <- struct{}{}
	return ctx.Err()
}

// TestCancelOnHangUp: a client that hangs up cancels the work of its
// requests in flight.
func TestCancelOnHangUp(t *testing.T) {
	b := &blockingExport{memExport: *newMem(blockSize, 1), started: make(chan struct{}, 1), cancelled: make(chan struct{}, 1)}
	socket, _ := testServer(t, map[string]Export{"disk": b}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("disk")
	r.must(nil, r.write(reqBytes(cmdRead, 0, 1, 0, 512, nil)))
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatalf("the read was never %s", what)
		}
	}
	wait(b.started, "started")
	r.c.Close()
	wait(b.cancelled, "cancelled")
}

// failingExport fails every read and extent lookup.
type failingExport struct{ memExport }

func (*failingExport) ReadAt(context.Context, []byte, int64) error {
	return errors.New("disk 3 is damaged")
}

func (*failingExport) Extents(context.Context, int64, int64, func(int64, bool, bool) bool) error {
	return errors.New("allocation map unreadable")
}

// TestExportErrors: an export's failure reaches the client as NBD_EIO,
// with its text when structured replies are on.
func TestExportErrors(t *testing.T) {
	socket, _ := testServer(t, map[string]Export{"bad": &failingExport{*newMem(blockSize, 1)}}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("bad")
	for _, c := range []struct {
		req  []byte
		text string
	}{
		{reqBytes(cmdRead, 0, 1, 0, 512, nil), "disk 3 is damaged"},
		{reqBytes(cmdBlockStatus, 0, 2, 0, 512, nil), "allocation map unreadable"},
	} {
		r.must(nil, r.write(c.req))
		rp, err := r.final(0)
		if err != nil || len(rp) != 1 || rp[0].typ != replyTypeError || rp[0].errno != errIO {
			t.Fatalf("%v %+v", err, rp)
		}
		p := rp[0].payload
		if n := binary.BigEndian.Uint16(p[4:]); int(n) != len(p)-6 || !strings.Contains(string(p[6:]), c.text) {
			t.Errorf("error message %q, want it to say %q", p[6:], c.text)
		}
	}
	// Without structured replies, the number alone.
	r = newRaw(t, dialRaw(t, socket))
	r.greet()
	r.simpleOption(optGo, goData("bad"))
	r.must(nil, r.write(reqBytes(cmdRead, 0, 1, 0, 512, nil)))
	if rp, err := r.reply(512); err != nil || !rp.simple || rp.errno != errIO || rp.payload != nil {
		t.Errorf("simple read error: %v %+v", err, rp)
	}
	// qemu-img shows the text.
	cmd := execTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", uri(socket, "bad"), filepath.Join(t.TempDir(), "out"))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("qemu-img convert of a failing export succeeded: %s", out)
	}
}

// TestStartTLSResets: STARTTLS forgets what was negotiated in the clear,
// and a second STARTTLS is refused.
func TestStartTLSResets(t *testing.T) {
	cert, x, _, _ := selfSigned(t, "localhost", x509.ExtKeyUsageServerAuth)
	m := newMem(blockSize, 1)
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	r := newRaw(t, dialRaw(t, socket))
	r.greet()
	if typ := r.simpleOption(optStructured, nil); typ != repAck {
		t.Fatalf("structured: %#x", typ)
	}
	if typ := r.simpleOption(optStartTLS, nil); typ != repAck {
		t.Fatalf("starttls: %#x", typ)
	}
	pool := x509.NewCertPool()
	pool.AddCert(x)
	tc := tls.Client(r.c, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	r.c = tc
	if typ := r.simpleOption(optStartTLS, nil); typ != repErrInvalid {
		t.Errorf("second starttls: %#x, want NBD_REP_ERR_INVALID", typ)
	}
	// Block status needs structured replies, negotiated again after TLS.
	if typ := r.simpleOption(optSetMetaContext, metaData("disk", allocationContext)); typ != repErrInvalid {
		t.Errorf("meta context with structured replies from before TLS: %#x", typ)
	}
	if typ := r.simpleOption(optGo, goData("disk")); typ != repAck {
		t.Fatalf("go: %#x", typ)
	}
	r.must(nil, r.write(reqBytes(cmdRead, 0, 1, 0, 512, nil)))
	if rp, err := r.reply(512); err != nil || !rp.simple || !bytes.Equal(rp.payload, m.data[:512]) {
		t.Errorf("read after TLS without structured replies: %v %+v", err, rp)
	}
}

// TestReadHoles: runs that read as zeroes go as hole chunks, unless short
// or the client asked for one chunk (DF).
func TestReadHoles(t *testing.T) {
	m := newMem(1<<20, 14) // block 1 a hole, block 2 allocated zeroes
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{})
	r := newRaw(t, dialRaw(t, socket))
	r.open("disk")
	cases := []struct {
		name   string
		off    uint64
		n      uint32
		flags  uint16
		chunks []uint16
	}{
		{"data, hole, data", 0, 3 * blockSize, 0, []uint16{replyTypeOffsetData, replyTypeOffsetHole, replyTypeOffsetData}},
		{"hole only", blockSize, blockSize, 0, []uint16{replyTypeOffsetHole}},
		{"short hole", 1000, blockSize, 0, []uint16{replyTypeOffsetData}},
		{"don't fragment", 0, 3 * blockSize, cmdFlagDF, []uint16{replyTypeOffsetData}},
		{"empty", 0, 0, 0, []uint16{replyTypeNone}},
	}
	for i, c := range cases {
		a := r.readAt(uint64(i), c.off, c.n, c.flags)
		if !slices.Equal(a.chunks, c.chunks) || a.covered != int(c.n) || !bytes.Equal(a.data, m.data[c.off:c.off+uint64(c.n)]) {
			t.Errorf("%s: chunks %v covering %d bytes, want %v", c.name, a.chunks, a.covered, c.chunks)
		}
	}
}
