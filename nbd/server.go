package nbd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Export is one disk image served under a name.
type Export interface {
	// Size is the export's length in bytes; it never changes while served.
	Size() int64
	// ReadAt fills p from off (off+len(p) <= Size()) or fails; the error
	// text may reach the client.
	ReadAt(ctx context.Context, p []byte, off int64) error
	// Extents calls fn for consecutive extents covering [off, off+length)
	// in order, with hole and zero as base:allocation means them (hole: not
	// allocated; zero: reads as zeroes); fn returns false to stop early.
	Extents(ctx context.Context, off, length int64, fn func(length int64, hole, zero bool) bool) error
}

// Writer is implemented by exports that take writes (an overlay); others
// are served read-only. Because every export is offered with
// NBD_FLAG_CAN_MULTI_CONN, Flush must make durable every write completed
// on any connection, not only the caller's.
type Writer interface {
	WriteAt(ctx context.Context, p []byte, off int64) error
	Flush(ctx context.Context) error
	// Trim may discard [off, off+length); reads of it are then unspecified
	// until written again.
	Trim(ctx context.Context, off, length int64) error
	// WriteZeroes makes [off, off+length) read as zeroes; mayTrim says the
	// range may become a hole rather than allocated zeroes.
	WriteZeroes(ctx context.Context, off, length int64, mayTrim bool) error
}

// Describer is implemented by exports with a human-readable description,
// sent with NBD_OPT_LIST and as NBD_INFO_DESCRIPTION.
type Describer interface {
	Description() string
}

// Options configure a Server. The zero value serves plain NBD with no
// logging and the default limits.
type Options struct {
	// TLS, when set, is offered with NBD_OPT_STARTTLS. Set ClientAuth and
	// ClientCAs in it to require client certificates.
	TLS *tls.Config
	// RequireTLS refuses every option but STARTTLS and ABORT until TLS is
	// up (the specification's FORCEDTLS mode). It needs TLS.
	RequireTLS bool
	// Log receives a line per connection and per failed request.
	Log zerolog.Logger
	// MaxInFlight bounds the requests of one connection being served at
	// once (default 16); the connection's reader waits beyond it.
	MaxInFlight int
	// MaxInFlightBytes bounds the READ and WRITE payload bytes one
	// connection holds at once (default 64 MiB, never below MaxPayload).
	MaxInFlightBytes int64
	// HandshakeTimeout bounds the whole option negotiation of a connection
	// (default 30 s), so a client that connects and stalls is dropped.
	HandshakeTimeout time.Duration
	// ReplyTimeout bounds the writing of one reply (default 5 min): a
	// client that stops reading its replies is dropped after it, rather
	// than holding its requests' memory for ever. Other connections are
	// never blocked by it either way.
	ReplyTimeout time.Duration
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("nbd: server closed")

// Server serves a fixed set of exports to any number of connections.
type Server struct {
	exports map[string]Export
	names   []string // sorted, for NBD_OPT_LIST
	opts    Options
	log     zerolog.Logger

	ctx    context.Context // cancelled by Close: ends every connection's work
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup // connection handlers
}

// NewServer serves exports by name. The exports map is copied; the default
// export (the empty name) is the only export when there is exactly one and
// no export is named "".
func NewServer(exports map[string]Export, opts Options) *Server {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = 64 << 20
	}
	opts.MaxInFlightBytes = max(opts.MaxInFlightBytes, MaxPayload)
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = 5 * time.Minute
	}
	s := &Server{
		exports:   make(map[string]Export, len(exports)),
		opts:      opts,
		log:       opts.Log,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
	for name, e := range exports {
		s.exports[name] = e
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// lookup resolves a client's export name to the canonical name and export.
func (s *Server) lookup(name string) (string, Export, bool) {
	if e, ok := s.exports[name]; ok {
		return name, e, true
	}
	if name == "" && len(s.names) == 1 {
		return s.names[0], s.exports[s.names[0]], true
	}
	return "", nil, false
}

// Serve accepts connections on l and serves each on its own goroutine. It
// returns ErrServerClosed after Close, or the listener's error; l is closed
// either way.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.RequireTLS && s.opts.TLS == nil {
		l.Close()
		return errors.New("nbd: RequireTLS without a TLS configuration would refuse every client")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Dur("retry", backoff).Msg("nbd: accept")
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("nbd: accept: %w", err)
		}
		backoff = 0
		if !s.track(nc) {
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(nc)
			s.serveConn(nc)
		}()
	}
}

// track registers a new connection, unless the server is closed.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	nc.Close()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes every connection (cancelling the work in
// flight on it) and waits for their handlers to return. It is the
// protocol's hard disconnect: requests in flight are not answered, so a
// client retries them elsewhere or fails; nothing written and acknowledged
// is lost, since only completed writes are acknowledged.
func (s *Server) Close() error {
	s.cancel() // first: connections that fail from here on were closed by us
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
