package logical

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/ovfmount/ovfmount/gzindex"
	"github.com/ovfmount/ovfmount/internal/cachefile"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// GzipSpan is the checkpoint spacing of a gzip file's seek index: a random
// read decodes at most this much before its data (1 MiB on average, about
// 3 ms), and a 1 GiB file's index holds 512 windows (about 7 MiB).
const GzipSpan = 2 << 20

// GzipOptions configure OpenGzip.
type GzipOptions struct {
	// CacheDir keeps seek indexes between runs ("" = not kept).
	CacheDir string
	// Identity names the archive (see ova.Archive.Identity); nil keeps
	// nothing.
	Identity []byte
	// Progress, if set, gets the compressed bytes indexed so far while an
	// index is built.
	Progress func(done, total int64)
}

// Gzip is the decompressed content of a gzip-compressed file
// (ovf:compression="gzip"), readable at any offset.
type Gzip struct {
	// Checked decodes from the stored bytes read through the integrity
	// checks; Unchecked from the same bytes unchecked (see Stored).
	Checked, Unchecked *gzindex.Reader
	// FromCache reports that the index was loaded, not built.
	FromCache bool
	Index     *gzindex.Index
}

// Size is the decompressed size.
func (g *Gzip) Size() int64 { return g.Index.Size() }

// OpenGzip opens the decompressed content of the file name, whose stored
// bytes are st.
// Its seek index is loaded from the cache when one was saved for this
// archive, or built with one pass over the stored bytes (checking every
// gzip member's CRC-32) and saved.
//
// The index's windows are decompressed bytes, so what they were decoded
// from matters. The pass reads through the integrity checks: on a strict
// mount it waits until the file is verified, and an index is saved as
// built from checked bytes only if the file was verified before the pass
// began. A strict mount loads no other. A lazy mount may index bytes it
// has not checked yet; they are the bytes its verification then hashes,
// and if that fails, every read of the file fails.
func OpenGzip(ctx context.Context, name string, st *Stored, checks *integrity.Checks, opts GzipOptions) (*Gzip, error) {
	strict := checks != nil && checks.Mode() == integrity.Strict
	if g := loadGzip(name, st, opts, strict); g != nil {
		return g, nil
	}
	cache := cachefile.Path(opts.CacheDir, "gzindex", opts.Identity, name)
	checked := len(st.Files) > 0
	for _, vf := range st.Files {
		if vf.Status() != integrity.StatusVerified {
			checked = false
		}
	}
	if strict {
		checked = true // every read of the pass waits for verification
	}
	var progress func(int64)
	if opts.Progress != nil {
		progress = func(done int64) { opts.Progress(done, st.Size) }
	}
	ix, err := gzindex.BuildContext(ctx, st.Checked, st.Size, gzindex.Options{Span: GzipSpan, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("logical: %s: %w", name, err)
	}
	g := &Gzip{Checked: gzindex.NewReader(st.Checked, st.Size, ix), Unchecked: gzindex.NewReader(st.Unchecked, st.Size, ix), Index: ix}
	if cache != "" {
		if err := saveGzipIndex(cache, ix, checked); err != nil {
			return g, &CacheError{Path: cache, Err: err}
		}
	}
	return g, nil
}

// LoadGzip opens the decompressed content of the file name with the seek
// index an earlier run saved, and returns nil when there is none: it never
// reads the whole file, so it suits summaries that must answer at once.
func LoadGzip(name string, st *Stored, opts GzipOptions) *Gzip {
	return loadGzip(name, st, opts, false)
}

// loadGzip loads a saved index that fits the stream; strict loads only
// one built from checked bytes. A damaged one is removed.
func loadGzip(name string, st *Stored, opts GzipOptions, strict bool) *Gzip {
	cache := cachefile.Path(opts.CacheDir, "gzindex", opts.Identity, name)
	ix, checked, err := loadGzipIndex(cache)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			os.Remove(cache) // damaged or stale: worthless
		}
		return nil
	}
	if ix.Raw() || !ix.Matches(st.Unchecked, st.Size) || (strict && !checked) {
		return nil
	}
	return &Gzip{Checked: gzindex.NewReader(st.Checked, st.Size, ix), Unchecked: gzindex.NewReader(st.Unchecked, st.Size, ix),
		FromCache: true, Index: ix}
}

// CacheError reports that something worth keeping could not be saved: the
// result is good, the next run just does the work again.
type CacheError struct {
	Path string
	Err  error
}

func (e *CacheError) Error() string { return fmt.Sprintf("logical: saving %s: %v", e.Path, e.Err) }
func (e *CacheError) Unwrap() error { return e.Err }

const gzipIndexMagic = "OVFMGZ01"

// A saved index is the magic, a flag byte (1: built from checked bytes),
// the index's own encoding, and a SHA-256 of all that.
func loadGzipIndex(path string) (*gzindex.Index, bool, error) {
	if path == "" {
		return nil, false, os.ErrNotExist
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	n := len(b) - sha256.Size
	if n < len(gzipIndexMagic)+1 || string(b[:len(gzipIndexMagic)]) != gzipIndexMagic {
		return nil, false, errors.New("not a saved gzip index")
	}
	if sum := sha256.Sum256(b[:n]); !bytes.Equal(sum[:], b[n:]) {
		return nil, false, errors.New("saved gzip index is damaged")
	}
	ix, err := gzindex.Unmarshal(b[len(gzipIndexMagic)+1 : n])
	return ix, b[len(gzipIndexMagic)] == 1, err
}

func saveGzipIndex(path string, ix *gzindex.Index, checked bool) error {
	enc, err := ix.MarshalBinary()
	if err != nil {
		return err
	}
	b := append([]byte(gzipIndexMagic), 0)
	if checked {
		b[len(b)-1] = 1
	}
	b = append(b, enc...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	return cachefile.Write(path, b)
}
