package logical

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ovfmount/ovfmount/gzindex"
	"github.com/ovfmount/ovfmount/internal/cachefile"
	"github.com/ovfmount/ovfmount/xzindex"
	"github.com/ovfmount/ovfmount/zstdindex"
)

// Compression is how a whole archive is compressed.
type Compression string

const (
	CompressionNone Compression = ""
	CompressionGzip Compression = "gzip"
	CompressionXZ   Compression = "xz"
	CompressionZstd Compression = "zstd"
	// CompressionZip is a zip of the package's files: not a compressed
	// tar, but an archive of its own (ova.OpenZip reads it); named here so
	// that a package says how its archive is packed in one field.
	CompressionZip Compression = "zip"
)

// ArchiveSpan is the checkpoint spacing of a whole compressed archive's
// seek index. It is GzipSpan for the same reason: a random read of a disk
// in the archive decodes at most this much before its data.
const ArchiveSpan = GzipSpan

// ArchiveOptions configure Decompress.
type ArchiveOptions struct {
	// CacheDir keeps the seek index between runs ("" = not kept), so that
	// a second mount of the same compressed archive reads only its index.
	CacheDir string
	// Identity names the compressed file (size, mtime, inode; or a remote
	// file's validator). nil keeps nothing.
	Identity []byte
	// Progress, if set, gets the compressed bytes indexed so far while an
	// index is built.
	Progress func(done, total int64)
}

// Archive is the decompressed bytes of a whole compressed archive (an
// .ova.gz), readable at any offset.
type Archive struct {
	io.ReaderAt
	Compression Compression
	// Size is the decompressed size.
	Size int64
	// FromCache reports that the index was loaded, not built.
	FromCache bool
	// Identity names the decompressed bytes for what later runs reuse:
	// the compressed file's identity and the compression.
	Identity []byte
	// Units is how many independently decodable pieces the index holds
	// (gzip: checkpoints), for logs and info.
	Units    int
	Warnings []string
	saved    io.Closer // a loaded seek index, read from while in use
}

// Close releases what a loaded seek index reads from. Reads fail after it.
func (a *Archive) Close() error {
	if a.saved == nil {
		return nil
	}
	return a.saved.Close()
}

// Sniff reports the compression of a file from its first bytes (never its
// name): CompressionNone when it is not one this package decompresses.
func Sniff(r io.ReaderAt, size int64) Compression {
	var b [sniffLen]byte
	n, _ := r.ReadAt(b[:min(size, sniffLen)], 0)
	return SniffBytes(b[:n])
}

// sniffLen is how many leading bytes tell the compression.
const sniffLen = 6

// SniffBytes is Sniff of a file's first bytes.
func SniffBytes(head []byte) Compression {
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return CompressionGzip
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return CompressionXZ
	case bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")),
		// a skippable frame, which a zstd file may start with
		len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18:
		return CompressionZstd
	}
	return CompressionNone
}

// Decompress opens the decompressed bytes of a whole compressed archive of
// size bytes read from r, by its first bytes:
//
//   - gzip: the seek index is loaded from CacheDir when an earlier run
//     saved one for this file (checked against the stream by gzindex's
//     cheap identity), or built by one pass that verifies every gzip
//     member's CRC-32 and size, and then saved.
//   - xz: the index at the end of the file lists the blocks, each
//     decoded from its start (see xzindex); nothing is read beyond the
//     indexes, so nothing is kept.
//   - zstd: the frames, found from the seek table of the seekable format,
//     else by walking the frame and block headers (see zstdindex).
//
// It fails with the decoder's error on a stream its tool would refuse,
// and on one whose blocks or frames are too large to read at random
// offsets (the error says how to recompress it).
func Decompress(ctx context.Context, r io.ReaderAt, size int64, opts ArchiveOptions) (*Archive, error) {
	c := Sniff(r, size)
	a := &Archive{Compression: c}
	if opts.Identity != nil {
		id := sha256.Sum256(append([]byte("archive-"+string(c)+"\x00"), opts.Identity...))
		a.Identity = id[:]
	}
	switch c {
	case CompressionGzip:
		if err := a.openGzip(ctx, r, size, opts); err != nil {
			return nil, err
		}
		return a, nil
	case CompressionXZ:
		x, err := xzindex.Open(r, size, xzindex.Options{})
		if err != nil {
			return nil, fmt.Errorf("an xz-compressed file, but %w", err)
		}
		a.ReaderAt, a.Size = x, x.Size()
		a.Units, _ = x.Units()
		return a, nil
	case CompressionZstd:
		z, err := zstdindex.Open(r, size, zstdindex.Options{Progress: opts.Progress})
		if err != nil {
			return nil, fmt.Errorf("a zstd-compressed file, but %w", err)
		}
		a.ReaderAt, a.Size = z, z.Size()
		a.Units, _ = z.Units()
		return a, nil
	}
	return nil, errors.New("logical: not a compressed archive")
}

// openGzip reads a gzip stream through its seek index, loaded or built.
func (a *Archive) openGzip(ctx context.Context, r io.ReaderAt, size int64, opts ArchiveOptions) error {
	cache := cachefile.Path(opts.CacheDir, "gzarchive", opts.Identity, "")
	ix, _, saved, err := loadGzipIndex(cache)
	switch {
	case err == nil && ix.Matches(r, size):
		a.FromCache, a.saved = true, saved
	case err != nil && !errors.Is(err, os.ErrNotExist):
		os.Remove(cache) // damaged: worthless
		ix = nil
	case err == nil:
		saved.Close()
		ix = nil
	default:
		ix = nil
	}
	if ix == nil {
		var progress func(int64)
		if opts.Progress != nil {
			progress = func(done int64) { opts.Progress(done, size) }
		}
		ix, err = gzindex.BuildContext(ctx, r, size, gzindex.Options{Span: ArchiveSpan, Progress: progress})
		if err != nil {
			return fmt.Errorf("a gzip-compressed file, but %w", err)
		}
		if cache != "" {
			// The pass verified every member's CRC-32: the index is
			// built from checked bytes.
			if err := saveGzipIndex(cache, ix, true); err != nil {
				a.Warnings = append(a.Warnings, fmt.Sprintf("the archive's gzip index is not saved for next time: %v", err))
			}
		}
	}
	a.ReaderAt, a.Size, a.Units = gzindex.NewReader(r, size, ix), ix.Size(), ix.Checkpoints()
	a.Warnings = append(a.Warnings, ix.Warnings()...)
	return nil
}
