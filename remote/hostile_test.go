package remote

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// partial answers with a 206 whose headers and body the test chooses.
func partial(hdr map[string]string, body []byte, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		if _, ok := hdr["Content-Length"]; !ok && !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(http.StatusPartialContent)
		if chunked {
			w.(http.Flusher).Flush()
		}
		w.Write(body)
	}
}

// Answers that break the range rules are refused with ErrProtocol (or
// ErrChanged where they claim another file), never retried, never used,
// and never panic. The File still works once the server behaves.
func TestHostileAnswersToReads(t *testing.T) {
	data := testData(10*testBlock, 30)
	size := strconv.Itoa(len(data))
	blk := data[2*testBlock : 3*testBlock]
	cr := "bytes 131072-196607/" + size
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		target  error
		words   string
	}{
		{"other start", partial(map[string]string{"Content-Range": "bytes 0-65535/" + size}, data[:testBlock], false),
			ErrProtocol, "with bytes 0-65535"},
		{"more than asked", partial(map[string]string{"Content-Range": "bytes 131072-262143/" + size}, data[2*testBlock:4*testBlock], false),
			ErrProtocol, "with bytes 131072-262143"},
		{"other total", partial(map[string]string{"Content-Range": "bytes 131072-196607/99999999"}, blk, false),
			ErrChanged, "is now 99999999"},
		{"Content-Length disagrees", partial(map[string]string{"Content-Range": cr, "Content-Length": "10"}, blk[:10], false),
			ErrProtocol, "Content-Length 10"},
		{"garbage Content-Range", partial(map[string]string{"Content-Range": "bytes 1-2-3/x"}, blk, false),
			ErrProtocol, `malformed Content-Range bytes 1-2-3/x`},
		{"non-ASCII Content-Range", partial(map[string]string{"Content-Range": "bytes 131072-196607/" + size + "\xff"}, blk, false),
			ErrProtocol, `malformed Content-Range "bytes 131072-196607/655360\xff"`},
		{"no Content-Range", partial(nil, blk, false), ErrProtocol, "malformed Content-Range"},
		{"unsatisfied form on 206", partial(map[string]string{"Content-Range": "bytes */" + size}, blk, false),
			ErrProtocol, "of a 416"},
		{"unknown total", partial(map[string]string{"Content-Range": "bytes 131072-196607/*"}, blk, false),
			ErrProtocol, "does not give the file size"},
		{"negative start", partial(map[string]string{"Content-Range": "bytes -131072-196607/" + size}, blk, false),
			ErrProtocol, "malformed"},
		{"absurd total", partial(map[string]string{"Content-Range": "bytes 131072-196607/99999999999999999999999"}, blk, false),
			ErrProtocol, "malformed"},
		{"extra bytes after the range", partial(map[string]string{"Content-Range": cr}, append(append([]byte(nil), blk...), "trailing garbage"...), true),
			ErrProtocol, "more than the"},
		{"compressed", partial(map[string]string{"Content-Range": cr, "Content-Encoding": "gzip"}, blk, false),
			ErrProtocol, "Content-Encoding gzip"},
		{"multipart", partial(map[string]string{"Content-Range": cr, "Content-Type": "multipart/byteranges; boundary=x"}, blk, false),
			ErrProtocol, "multipart"},
		{"stops honouring ranges", wholeFile(data), ErrChanged, "whole file"},
		// net/http itself refuses a header block with control characters,
		// as a broken connection: retried, then unavailable.
		{"control characters", partial(map[string]string{"Content-Range": "bytes 1\x01"}, blk, false),
			ErrUnavailable, "malformed MIME header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newTestServer(t, data)
			opt := testOptions()
			opt.ReadAhead = -1
			f := mustOpen(t, srv.url(), opt)
			srv.setPlans(func(n int64, r *http.Request) plan { return plan{handler: c.handler} })
			n, err := f.ReadAt(make([]byte, 100), 2*testBlock)
			if n != 0 || !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("ReadAt = %d, %v; want %v with %q", n, err, c.target, c.words)
			}
			if got := f.Stats().Retries; got != 0 && c.target != ErrUnavailable {
				t.Errorf("retried %d times", got)
			}
			srv.setPlans(nil)
			_, err = f.ReadAt(make([]byte, 100), 2*testBlock)
			if c.target == ErrChanged {
				if !errors.Is(err, ErrChanged) {
					t.Errorf("after a change, a read gave %v", err)
				}
				return
			}
			readCheck(t, f, data, 2*testBlock, testBlock)
		})
	}
}

// The same at Open, where the first answer sets everything up.
func TestHostileAnswersAtOpen(t *testing.T) {
	data := testData(10*testBlock, 31)
	size := strconv.Itoa(len(data))
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		target  error
		words   string
	}{
		{"other start", partial(map[string]string{"Content-Range": "bytes 5-65540/" + size}, data[5:65541], false),
			ErrProtocol, "with bytes 5-65540"},
		{"more than a block", partial(map[string]string{"Content-Range": "bytes 0-65536/" + size}, data[:65537], false),
			ErrProtocol, "with bytes 0-65536"},
		{"unknown total", partial(map[string]string{"Content-Range": "bytes 0-65535/*"}, data[:testBlock], false),
			ErrProtocol, "does not give the file size"},
		{"absurd total", partial(map[string]string{"Content-Range": fmt.Sprintf("bytes 0-65535/%d", int64(maxSize)+1)}, data[:testBlock], false),
			ErrProtocol, "malformed"},
		{"extra bytes", partial(map[string]string{"Content-Range": "bytes 0-65535/" + size}, data[:testBlock+1], true),
			ErrProtocol, "more than the"},
		{"416 for a file that is not empty", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes */100")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}, ErrProtocol, "only an empty file"},
		{"200 of unknown length", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			w.Write(data)
		}, ErrNoRanges, "whole file"},
		{"Accept-Ranges none", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Accept-Ranges", "none")
			wholeFile(data)(w, r)
		}, ErrNoRanges, "Accept-Ranges: none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newTestServer(t, data)
			srv.setPlans(func(n int64, r *http.Request) plan { return plan{handler: c.handler} })
			f, err := Open(t.Context(), srv.url(), testOptions())
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("Open: %v; want %v with %q", err, c.target, c.words)
			}
			if got := srv.requests.Load(); got != 1 {
				t.Errorf("%d requests: refused answers must not be retried", got)
			}
		})
	}
}

// A server without range support answering with a large file is refused
// at Open, and its body is not downloaded: the connection is closed after
// at most what the socket buffers held.
func TestServerWithoutRangesIsRefusedUnread(t *testing.T) {
	const size = 256 << 20
	srv := newTestServer(t, nil)
	srv.setPlans(func(int64, *http.Request) plan {
		return plan{ignoreRange: true, content: io.NewSectionReader(zeros{}, 0, size)}
	})
	_, err := Open(t.Context(), srv.url(), Options{})
	if !errors.Is(err, ErrNoRanges) {
		t.Fatalf("Open: %v, want ErrNoRanges", err)
	}
	eventually(t, "the server's handler to end", func() bool { return srv.finished.Load() == srv.requests.Load() })
	t.Logf("the server wrote %d of %d bytes", srv.written.Load(), size)
	if w := srv.written.Load(); w >= size/4 {
		t.Errorf("the server wrote %d of %d bytes before the client hung up", w, size)
	}
	if got := srv.requests.Load(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}
