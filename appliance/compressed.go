package appliance

import (
	"bytes"
	"context"
	"os"
	"strings"
	"time"

	"github.com/ovfmount/ovfmount/internal/cachefile"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/logical"
)

// openCompressed opens an OVA that is compressed as a whole (an .ova.gz),
// recognised by its first bytes: the archive is read through a seek index
// of its decompressed bytes (built once, kept in CacheDir), and is then an
// OVA like any other. Its identity becomes that of the decompressed bytes,
// so chunk tables and indexes of a plain copy are never mistaken for its.
func openCompressed(in Input, opts Options) (*Package, bool, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	start, last := time.Now(), time.Now()
	aopts := logical.ArchiveOptions{CacheDir: opts.CacheDir, Identity: in.Identity,
		Progress: func(done, total int64) {
			if time.Since(last) >= 2*time.Second && done < total {
				last = time.Now()
				opts.Log.Info().Str("archive", in.Name).Int64("done", done).Int64("total", total).
					Msgf("indexing the compressed archive: %d%%", done*100/max(total, 1))
			}
		}}
	d, err := logical.Decompress(ctx, in.R, in.Size, aopts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, &NotPackageError{Name: in.Name, What: err.Error()}
	}
	ev := opts.Log.Info().Str("archive", in.Name).Str("compression", string(d.Compression)).
		Int64("size", d.Size).Int("units", d.Units)
	if d.FromCache {
		ev.Msg("compressed archive's index loaded")
	} else {
		ev.Dur("took_ms", time.Since(start)).Msg("compressed archive indexed")
	}
	inner := in
	inner.R, inner.Size, inner.Identity = d, d.Size, d.Identity
	// The decompressed bytes are an OVA or nothing: a compressed
	// descriptor or disk image is not a package ovfmount reads in place.
	inner.Folder, inner.Base = "", ""
	a, fromCache := scanCompressed(inner, opts.CacheDir)
	k, what := kindOVA, ""
	if a == nil {
		k, a, what = identify(inner.R, inner.Size)
	}
	if fromCache {
		opts.Log.Info().Str("archive", in.Name).Int("members", len(a.Members())).Msg("compressed archive's tar index loaded")
	}
	if k != kindOVA {
		d.Close()
		if k == kindDescriptor || k == kindDisk {
			what = "an OVF descriptor or a disk image, which is mounted uncompressed only"
		}
		return nil, false, &NotPackageError{Name: in.Name, What: string(d.Compression) + "-compressed, holding " + what}
	}
	p, err := build(inner, opts, SourceOVA, a)
	if err != nil {
		d.Close()
		return nil, false, err
	}
	p.closers = append(p.closers, d)
	p.Compression = d.Compression
	for _, w := range d.Warnings {
		p.warn("%s", w)
	}
	return p, true, nil
}

// LooksLikeArchive reports whether a file's first bytes (up to 512) are
// those of an archive a library would mount: a tar header, or the
// signature of a compressed archive. It is a cheap filter for listing a
// folder; opening the file decides.
func LooksLikeArchive(head []byte) bool {
	return ova.IsTarHeader(head) || logical.SniffBytes(head) != logical.CompressionNone ||
		ova.IsZip(bytes.NewReader(head), int64(len(head)))
}

// openZip opens a zip of an OVF package (the package's folder zipped, as
// some vendors ship it): the zip's central directory is the index, stored
// entries are read in place like tar members, and deflated ones through
// a seek index built at their first read (kept in CacheDir).
func openZip(in Input, opts Options) (*Package, bool, error) {
	a, err := ova.OpenZip(in.R, in.Size, ova.ZipOptions{CacheDir: opts.CacheDir, Source: in.Identity, Context: opts.Context})
	if err != nil {
		return nil, false, &NotPackageError{Name: in.Name, What: "a zip archive that cannot be read: " + strings.TrimPrefix(err.Error(), "ova: ")}
	}
	if len(a.Files()) == 0 {
		return nil, false, &NotPackageError{Name: in.Name, What: "a zip archive without files"}
	}
	p, err := build(in, opts, SourceOVA, a)
	if err != nil {
		a.Close()
		return nil, false, err
	}
	p.Compression = logical.CompressionZip // p.Close closes a
	return p, true, nil
}

// scanCompressed indexes the tar inside a compressed archive, where every
// header read is a decode: from the record an earlier run kept in
// cacheDir, or by a scan that keeps one. It returns nil when the bytes are
// no tar with files, for identify to say what they are.
func scanCompressed(in Input, cacheDir string) (a *ova.Archive, fromCache bool) {
	path := cachefile.Path(cacheDir, "tarindex", in.Identity, "")
	if path != "" {
		if b, err := os.ReadFile(path); err == nil {
			if a, err := ova.OpenSaved(in.R, in.Size, b); err == nil {
				return a, true
			}
			os.Remove(path) // damaged or stale: worthless
		}
	}
	a, rec, err := ova.OpenRecorded(in.R, in.Size)
	if err != nil || len(a.Files()) == 0 {
		return nil, false
	}
	if path != "" {
		cachefile.Write(path, rec) // best effort: the next run scans again
	}
	return a, false
}
