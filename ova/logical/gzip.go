package logical

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	saved     io.Closer // the saved index Index reads its windows from
}

// Size is the decompressed size.
func (g *Gzip) Size() int64 { return g.Index.Size() }

// Close releases the saved index a loaded Gzip reads from. Reads fail
// after it.
func (g *Gzip) Close() error {
	if g.saved == nil {
		return nil
	}
	return g.saved.Close()
}

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
	ix, checked, saved, err := loadGzipIndex(cache)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			os.Remove(cache) // damaged or stale: worthless
		}
		return nil
	}
	if ix.Raw() || !ix.Matches(st.Unchecked, st.Size) || (strict && !checked) {
		saved.Close()
		return nil
	}
	return &Gzip{Checked: gzindex.NewReader(st.Checked, st.Size, ix), Unchecked: gzindex.NewReader(st.Unchecked, st.Size, ix),
		FromCache: true, Index: ix, saved: saved}
}

// CacheError reports that something worth keeping could not be saved: the
// result is good, the next run just does the work again.
type CacheError struct {
	Path string
	Err  error
}

func (e *CacheError) Error() string { return fmt.Sprintf("logical: saving %s: %v", e.Path, e.Err) }
func (e *CacheError) Unwrap() error { return e.Err }

const gzipIndexMagic = "OVFMGZ02"

// Whether a saved index was built from checked bytes, spelled so that no
// one or two flipped bits turn one into the other.
const (
	indexChecked   = 'C'
	indexUnchecked = 'U'
)

// A saved index is the magic, a byte saying whether it was built from
// checked bytes, and the index in gzindex's split form, whose digest
// covers its head: loading it reads the head alone (11 KB for a 1.2 GB
// archive), and a read takes a window from the file
// when it first starts from its checkpoint. Version 01 held the whole
// index under one digest; reading its 19 MB into fresh memory and hashing
// them took about 150 ms of every mount.
//
// The file stays open for the index's windows, so that removing it (a
// cache cleanup) does not fail a mount's reads: the returned Closer
// closes it.
func loadGzipIndex(path string) (*gzindex.Index, bool, io.Closer, error) {
	if path == "" {
		return nil, false, nil, os.ErrNotExist
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, nil, err
	}
	n := int64(len(gzipIndexMagic)) + 1
	var pre [len(gzipIndexMagic) + 1]byte
	if k, _ := f.ReadAt(pre[:], 0); k < len(pre) || string(pre[:n-1]) != gzipIndexMagic ||
		(pre[n-1] != indexChecked && pre[n-1] != indexUnchecked) {
		f.Close()
		return nil, false, nil, errors.New("not a saved gzip index")
	}
	ix, err := gzindex.Load(io.NewSectionReader(f, n, st.Size()-n), st.Size()-n)
	if err != nil {
		f.Close()
		return nil, false, nil, err
	}
	return ix, pre[n-1] == indexChecked, f, nil
}

func saveGzipIndex(path string, ix *gzindex.Index, checked bool) error {
	enc, err := ix.MarshalSplit()
	if err != nil {
		return err
	}
	flag := byte(indexUnchecked)
	if checked {
		flag = indexChecked
	}
	b := append(append([]byte(gzipIndexMagic), flag), enc...)
	return cachefile.Write(path, b)
}
