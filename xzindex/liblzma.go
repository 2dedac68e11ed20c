//go:build liblzma && cgo

package xzindex

// liblzma is linked statically (the archive, not the .so), so that a
// binary built with the tag runs where liblzma-dev is not installed.

/*
#cgo LDFLAGS: -l:liblzma.a -lpthread
#include <stdlib.h>
#include <string.h>
#include <lzma.h>

// xz_start (re)initialises s as a raw LZMA2 decoder with a dict-byte
// dictionary; liblzma reuses the memory of the previous decoder of the
// same chain.
static lzma_ret xz_start(lzma_stream *s, uint32_t dict) {
	lzma_options_lzma opt;
	if (lzma_lzma_preset(&opt, 0))
		return LZMA_PROG_ERROR;
	opt.dict_size = dict;
	lzma_filter f[2] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
	return lzma_raw_decoder(s, f);
}

// xz_code runs the decoder over in and out, which are Go memory: it keeps
// no pointer to either once it returns.
static lzma_ret xz_code(lzma_stream *s, const uint8_t *in, size_t in_len, size_t *in_used,
		uint8_t *out, size_t out_len, size_t *out_used) {
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	lzma_ret r = lzma_code(s, LZMA_RUN);
	*in_used = in_len - s->avail_in;
	*out_used = out_len - s->avail_out;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return r;
}

static lzma_stream *xz_new(void) {
	lzma_stream *s = malloc(sizeof *s);
	if (s) {
		lzma_stream init = LZMA_STREAM_INIT;
		*s = init;
	}
	return s;
}

static void xz_free(lzma_stream *s) {
	lzma_end(s);
	free(s);
}
*/
import "C"

import (
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

func init() {
	defaultLZMA2 = cLZMA2
	Backend = "liblzma " + C.LZMA_VERSION_STRING
}

// cDecoder is a liblzma raw LZMA2 decoder over a section. Its stream is C
// memory, freed by a cleanup when the decoder is collected: unitread drops
// decoders without closing them.
type cDecoder struct {
	s   *cStream
	src *section
	eos bool
	err error
}

type cStream struct{ p *C.lzma_stream }

func cLZMA2(src *section, dict int, old lzma2Decoder) (lzma2Decoder, error) {
	d, _ := old.(*cDecoder)
	if d == nil {
		p := C.xz_new()
		if p == nil {
			return nil, fmt.Errorf("liblzma: out of memory")
		}
		d = &cDecoder{s: &cStream{p}}
		runtime.AddCleanup(d, func(s *cStream) { C.xz_free(s.p) }, d.s)
	}
	d.src, d.eos, d.err = src, false, nil
	if r := C.xz_start(d.s.p, C.uint32_t(dict)); r != C.LZMA_OK {
		return nil, fmt.Errorf("liblzma: starting an LZMA2 decoder with a %d-byte dictionary: %s", dict, lzmaRet(r))
	}
	return d, nil
}

func (d *cDecoder) EOS() bool { return d.eos }

func (d *cDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.eos {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	src := d.src
	for {
		drained := false
		if src.i == src.n {
			if err := src.fetch(); err == io.EOF {
				drained = true
			} else if err != nil {
				d.err = err
				return 0, err
			}
		}
		var in *C.uint8_t
		if src.i < src.n {
			in = (*C.uint8_t)(unsafe.Pointer(&src.buf[src.i]))
		}
		var inUsed, outUsed C.size_t
		r := C.xz_code(d.s.p, in, C.size_t(src.n-src.i), &inUsed, (*C.uint8_t)(unsafe.Pointer(&p[0])), C.size_t(len(p)), &outUsed)
		// The cleanup must not free the stream while C uses it.
		runtime.KeepAlive(d)
		src.i += int(inUsed)
		src.used += int64(inUsed)
		n := int(outUsed)
		switch r {
		case C.LZMA_OK:
		case C.LZMA_STREAM_END:
			d.eos = true
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		default:
			d.err = fmt.Errorf("liblzma: %s", lzmaRet(r))
			return n, d.err
		}
		if n > 0 {
			return n, nil
		}
		if drained && inUsed == 0 {
			d.err = io.ErrUnexpectedEOF
			return 0, fmt.Errorf("LZMA2 data ends without its end marker: %w", d.err)
		}
	}
}

func lzmaRet(r C.lzma_ret) string {
	switch r {
	case C.LZMA_MEM_ERROR:
		return "out of memory"
	case C.LZMA_OPTIONS_ERROR:
		return "unsupported options"
	case C.LZMA_DATA_ERROR:
		return "corrupt data"
	case C.LZMA_BUF_ERROR:
		return "no progress possible (truncated data)"
	case C.LZMA_PROG_ERROR:
		return "programming error"
	}
	return fmt.Sprintf("error %d", int(r))
}
