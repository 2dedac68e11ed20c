package nbd

import (
	"errors"
	"net"
	"sync"
	"time"
)

// conn is one client connection: its negotiated state, then its export.
type conn struct {
	s   *Server
	nc  net.Conn // the connection, or its TLS layer after STARTTLS
	tls bool

	noZeroes   bool
	structured bool
	// metaAlloc: base:allocation was selected by the last
	// NBD_OPT_SET_META_CONTEXT, for the export named metaExport.
	metaAlloc  bool
	metaExport string

	// Set when transmission starts.
	name   string
	export Export
	writer Writer // nil: read-only

	// Transmission: replies are written whole under wmu, one at a time, by
	// the goroutines serving requests; werr is the first write error, after
	// which nothing more is written.
	wmu  sync.Mutex
	werr error
	lim  *limiter
	work sync.WaitGroup
}

// serveConn runs one connection: negotiation under a deadline, then
// transmission until the client disconnects or breaks the protocol.
func (s *Server) serveConn(nc net.Conn) {
	c := &conn{s: s, nc: nc}
	log := s.log.With().Str("client", remoteName(nc)).Logger()
	defer func() {
		// Closing the TLS layer sends its close_notify; never wait long
		// for a client that does not read.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Close()
	}()
	nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	if err := c.handshake(); err != nil {
		if errors.Is(err, errAbort) {
			log.Debug().Msg("nbd: client ended the negotiation")
		} else {
			log.Info().Err(err).Msg("nbd: negotiation failed")
		}
		return
	}
	nc.SetDeadline(time.Time{})
	log = log.With().Str("export", c.name).Logger()
	log.Debug().Bool("tls", c.tls).Bool("structured", c.structured).Bool("writable", c.writer != nil).Msg("nbd: transmission")
	if err := c.transmit(log); err != nil {
		if s.ctx.Err() == nil { // not ended by Close
			log.Info().Err(err).Msg("nbd: connection dropped")
		}
		return
	}
	log.Debug().Msg("nbd: client disconnected")
}

// remoteName names a client in logs: its address, or the socket's path.
func remoteName(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	if a := nc.LocalAddr(); a != nil {
		return a.Network() + ":" + a.String()
	}
	return "?"
}
