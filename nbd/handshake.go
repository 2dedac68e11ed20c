package nbd

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// errAbort ends a negotiation the client gave up with NBD_OPT_ABORT.
var errAbort = errors.New("nbd: client aborted the negotiation")

// handshake greets the client and answers its options until it chooses an
// export (nil) or ends the session (an error, errAbort for a clean abort).
// Every length the client sends is checked before anything is allocated
// for it: no option is longer than maxOptionLen.
func (c *conn) handshake() error {
	var greet [18]byte
	binary.BigEndian.PutUint64(greet[0:], magicNBD)
	binary.BigEndian.PutUint64(greet[8:], magicOption)
	binary.BigEndian.PutUint16(greet[16:], handshakeFixed|handshakeNoZeroes)
	if _, err := c.nc.Write(greet[:]); err != nil {
		return fmt.Errorf("nbd: greeting: %w", err)
	}
	var cf [4]byte
	if _, err := io.ReadFull(c.nc, cf[:]); err != nil {
		return fmt.Errorf("nbd: client flags: %w", err)
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^(clientFixed|clientNoZeroes) != 0 {
		// The specification: the server MUST close on flags it does not know.
		return fmt.Errorf("nbd: unknown client flags %#x", flags)
	}
	if flags&clientFixed == 0 && c.s.opts.RequireTLS {
		return errors.New("nbd: client without fixed newstyle cannot start TLS, which is required")
	}
	c.noZeroes = flags&clientNoZeroes != 0

	var hdr [16]byte
	for {
		if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
			return fmt.Errorf("nbd: option header: %w", err)
		}
		if m := binary.BigEndian.Uint64(hdr[0:]); m != magicOption {
			return fmt.Errorf("nbd: option magic %#x", m)
		}
		opt := binary.BigEndian.Uint32(hdr[8:])
		n := binary.BigEndian.Uint32(hdr[12:])
		if n > maxOptionLen {
			// Skipping gigabytes would only feed the client's attack.
			return fmt.Errorf("nbd: option %d: length %d over %d", opt, n, maxOptionLen)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c.nc, data); err != nil {
			return fmt.Errorf("nbd: option %d: %w", opt, err)
		}
		done, err := c.option(opt, data)
		if err != nil {
			return fmt.Errorf("nbd: option %d: %w", opt, err)
		}
		if done {
			return nil
		}
	}
}

// option answers one option; done means transmission starts.
func (c *conn) option(opt uint32, data []byte) (done bool, err error) {
	if c.s.opts.RequireTLS && !c.tls && opt != optStartTLS && opt != optAbort {
		if opt == optExportName {
			return false, errors.New("NBD_OPT_EXPORT_NAME before the TLS that is required")
		}
		return false, c.replyErr(opt, repErrTLSReqd, "TLS is required: send NBD_OPT_STARTTLS first")
	}
	if c.s.isClosed() && opt != optAbort {
		return false, c.replyErr(opt, repErrShutdown, "server shutting down")
	}
	switch opt {
	case optExportName:
		return true, c.exportName(string(data))
	case optAbort:
		// The client may close without reading this; its error is no news.
		_ = c.reply(opt, repAck, nil)
		return false, errAbort
	case optList:
		return false, c.list(data)
	case optStartTLS:
		return false, c.startTLS(data)
	case optInfo, optGo:
		return c.infoGo(opt, data)
	case optStructured:
		if len(data) != 0 {
			return false, c.replyErr(opt, repErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
		}
		c.structured = true
		return false, c.reply(opt, repAck, nil)
	case optListMetaContext, optSetMetaContext:
		return false, c.metaContext(opt, data)
	}
	return false, c.replyErr(opt, repErrUnsup, fmt.Sprintf("option %d is not supported", opt))
}

// reply sends one option reply.
func (c *conn) reply(opt, typ uint32, data []byte) error {
	b := make([]byte, 20, 20+len(data))
	binary.BigEndian.PutUint64(b[0:], magicOptionReply)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	_, err := c.nc.Write(append(b, data...))
	return err
}

// replyErr sends an error reply with a message for the user.
func (c *conn) replyErr(opt, typ uint32, msg string) error {
	return c.reply(opt, typ, []byte(truncate(msg, maxErrorMessage)))
}

// exportName answers the old NBD_OPT_EXPORT_NAME, which cannot fail but by
// closing the connection.
func (c *conn) exportName(name string) error {
	canon, e, ok := c.s.lookup(name)
	if !ok {
		return fmt.Errorf("no export %q", name)
	}
	c.use(canon, e)
	b := make([]byte, 10, 10+124)
	binary.BigEndian.PutUint64(b[0:], uint64(e.Size()))
	binary.BigEndian.PutUint16(b[8:], c.transmissionFlags(e))
	if !c.noZeroes {
		b = b[:10+124]
	}
	_, err := c.nc.Write(b)
	return err
}

// use makes e the connection's export. Metadata contexts chosen for
// another export are dropped, as the specification requires.
func (c *conn) use(name string, e Export) {
	c.name, c.export = name, e
	c.writer, _ = e.(Writer)
	if c.metaExport != name {
		c.metaAlloc = false
	}
}

// transmissionFlags describes e to the client. DF is offered with
// structured replies only, where it means something; reads are always
// answered in one chunk, so it costs nothing.
func (c *conn) transmissionFlags(e Export) uint16 {
	f := flagHasFlags | flagCanMultiConn
	if c.structured {
		f |= flagSendDF
	}
	if _, ok := e.(Writer); !ok {
		f |= flagReadOnly
	} else {
		f |= flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes
	}
	return f
}

// list answers NBD_OPT_LIST with every export's name and description.
func (c *conn) list(data []byte) error {
	if len(data) != 0 {
		return c.replyErr(optList, repErrInvalid, "NBD_OPT_LIST takes no data")
	}
	for _, name := range c.s.names {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
		b = append(b, name...)
		if d, ok := c.s.exports[name].(Describer); ok {
			b = append(b, truncate(d.Description(), maxString)...)
		}
		if err := c.reply(optList, repServer, b); err != nil {
			return err
		}
	}
	return c.reply(optList, repAck, nil)
}

// startTLS upgrades the connection. Everything negotiated before is
// forgotten, as the specification requires: it was said in the clear.
func (c *conn) startTLS(data []byte) error {
	switch {
	case c.s.opts.TLS == nil:
		return c.replyErr(optStartTLS, repErrUnsup, "TLS is not configured on this server")
	case c.tls:
		return c.replyErr(optStartTLS, repErrInvalid, "TLS is already on")
	case len(data) != 0:
		return c.replyErr(optStartTLS, repErrInvalid, "NBD_OPT_STARTTLS takes no data")
	}
	if err := c.reply(optStartTLS, repAck, nil); err != nil {
		return err
	}
	tc := tls.Server(c.nc, c.s.opts.TLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.nc, c.tls = tc, true
	c.structured, c.metaAlloc, c.metaExport = false, false, ""
	return nil
}

// infoGo answers NBD_OPT_INFO and NBD_OPT_GO; GO that succeeds starts
// transmission.
func (c *conn) infoGo(opt uint32, data []byte) (bool, error) {
	if len(data) < 6 {
		return false, c.replyErr(opt, repErrInvalid, "option too short")
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-6) {
		return false, c.replyErr(opt, repErrInvalid, "export name longer than the option")
	}
	name := string(data[4 : 4+n])
	rest := data[4+n:]
	nreq := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+2*nreq {
		return false, c.replyErr(opt, repErrInvalid, "information requests do not match the option length")
	}
	var wantName, wantDesc bool
	for i := range nreq {
		switch binary.BigEndian.Uint16(rest[2+2*i:]) {
		case infoName:
			wantName = true
		case infoDescription:
			wantDesc = true
		}
	}
	canon, e, ok := c.s.lookup(name)
	if !ok {
		return false, c.replyErr(opt, repErrUnknown, fmt.Sprintf("no export %q", truncate(name, 256)))
	}
	// GO commits to the export; INFO only describes it, with the flags GO
	// would give it now.
	flags := c.transmissionFlags(e)
	if opt == optGo {
		c.use(canon, e)
	}
	b := binary.BigEndian.AppendUint16(nil, infoExport)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Size()))
	b = binary.BigEndian.AppendUint16(b, flags)
	if err := c.reply(opt, repInfo, b); err != nil {
		return false, err
	}
	// Always sent: these are the specification's defaults, so a client
	// that did not ask loses nothing by ignoring them.
	b = binary.BigEndian.AppendUint16(nil, infoBlockSize)
	b = binary.BigEndian.AppendUint32(b, minBlock)
	b = binary.BigEndian.AppendUint32(b, preferredBlock)
	b = binary.BigEndian.AppendUint32(b, MaxPayload)
	if err := c.reply(opt, repInfo, b); err != nil {
		return false, err
	}
	if wantName {
		b = binary.BigEndian.AppendUint16(nil, infoName)
		if err := c.reply(opt, repInfo, append(b, canon...)); err != nil {
			return false, err
		}
	}
	if d, ok := e.(Describer); ok && wantDesc {
		b = binary.BigEndian.AppendUint16(nil, infoDescription)
		if err := c.reply(opt, repInfo, append(b, truncate(d.Description(), maxString)...)); err != nil {
			return false, err
		}
	}
	return opt == optGo, c.reply(opt, repAck, nil)
}

// metaContext answers NBD_OPT_LIST_META_CONTEXT and
// NBD_OPT_SET_META_CONTEXT. The only context is base:allocation.
func (c *conn) metaContext(opt uint32, data []byte) error {
	if opt == optSetMetaContext {
		// A SET replaces the selection even when it fails.
		c.metaAlloc, c.metaExport = false, ""
		if !c.structured {
			return c.replyErr(opt, repErrInvalid, "negotiate structured replies first")
		}
	}
	name, queries, ok := parseMetaQuery(data)
	if !ok {
		return c.replyErr(opt, repErrInvalid, "malformed metadata context request")
	}
	canon, _, found := c.s.lookup(name)
	if !found {
		return c.replyErr(opt, repErrUnknown, fmt.Sprintf("no export %q", truncate(name, 256)))
	}
	match := false
	for _, q := range queries {
		if q == allocationContext || (opt == optListMetaContext && q == "base:") {
			match = true
		}
	}
	if opt == optListMetaContext && len(queries) == 0 {
		match = true
	}
	if match {
		var id uint32 // reserved (zero) in LIST replies
		if opt == optSetMetaContext {
			id = allocationContextID
			c.metaAlloc, c.metaExport = true, canon
		}
		b := binary.BigEndian.AppendUint32(nil, id)
		if err := c.reply(opt, repMetaContext, append(b, allocationContext...)); err != nil {
			return err
		}
	}
	return c.reply(opt, repAck, nil)
}

// parseMetaQuery splits a metadata context option: an export name, then a
// count of queries, each with its length. Every length is checked against
// the bytes actually present.
func parseMetaQuery(data []byte) (name string, queries []string, ok bool) {
	next := func() (string, bool) {
		if len(data) < 4 {
			return "", false
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) || n > maxString {
			return "", false
		}
		s := string(data[4 : 4+n])
		data = data[4+n:]
		return s, true
	}
	if name, ok = next(); !ok || len(data) < 4 {
		return "", nil, false
	}
	count := binary.BigEndian.Uint32(data)
	data = data[4:]
	if uint64(count) > uint64(len(data)/4) { // each query takes 4 bytes at least
		return "", nil, false
	}
	for range count {
		q, ok := next()
		if !ok {
			return "", nil, false
		}
		queries = append(queries, q)
	}
	return name, queries, len(data) == 0
}

// truncate cuts s to at most n bytes, and to valid UTF-8, which the
// protocol's strings must be.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
