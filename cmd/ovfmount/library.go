package main

import (
	"context"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
)

// A source is one archive the user named, or found in a folder or
// under an S3 prefix the user named.
type source struct {
	arg  string // as openPackage takes it: a path or a URL
	base string // its file name, which a library folder is named after
	size int64  // as listed; 0 when unknown before it is opened
}

// expandSources turns the archive arguments into the archives they name.
// library reports whether they make a library (one folder per archive):
// several arguments, a local folder of archives, or an S3 prefix. One
// archive, or one unpacked package's folder, is mounted as it always was.
func expandSources(args []string, v *verify) (srcs []source, library bool, err error) {
	library = len(args) > 1
	for _, arg := range args {
		switch {
		case isS3(arg) && isS3Prefix(arg):
			more, err := listS3(arg, v)
			if err != nil {
				return nil, false, err
			}
			srcs, library = append(srcs, more...), true
		case isURL(arg) || isS3(arg):
			srcs = append(srcs, source{arg: arg, base: urlBase(arg)})
		default:
			more, isLib, err := localSources(arg)
			if err != nil {
				return nil, false, err
			}
			srcs, library = append(srcs, more...), library || isLib
		}
	}
	return srcs, library, nil
}

// localSources is what a local path names: a file, an unpacked package's
// folder (it holds an .ovf), or a folder of archives, which are the
// regular files in it that are archives by their first bytes.
func localSources(arg string) ([]source, bool, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, false, fail(exitUsage, "%s: %s", arg, describeOSError(err))
	}
	if !st.IsDir() {
		return []source{{arg: arg, base: filepath.Base(arg), size: st.Size()}}, false, nil
	}
	des, err := os.ReadDir(arg)
	if err != nil {
		return nil, false, fail(exitUsage, "%s: %s", arg, describeOSError(err))
	}
	for _, de := range des {
		if strings.HasSuffix(strings.ToLower(de.Name()), ".ovf") {
			abs, _ := filepath.Abs(arg)
			return []source{{arg: arg, base: filepath.Base(abs)}}, false, nil
		}
	}
	var out []source
	for _, de := range des {
		p := filepath.Join(arg, de.Name())
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if looksLikeArchive(p) {
			out = append(out, source{arg: p, base: de.Name(), size: st.Size()})
		}
	}
	if len(out) == 0 {
		return nil, false, fail(exitUsage, "%s: a folder is mounted as an unpacked OVF package or as a library of archives, but it holds neither an .ovf descriptor nor an archive", arg)
	}
	return out, true, nil
}

// looksLikeArchive tells an archive from the other files of a folder by
// its first bytes: a tar header (its "ustar" magic or a valid checksum),
// or a gzip, xz, zstd or zip signature. A folder of downloads also holds
// checksums, signatures and notes, which would be folders that only fail.
func looksLikeArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := io.ReadFull(f, b)
	return appliance.LooksLikeArchive(b[:n])
}

// urlBase is the file name at the end of a URL's path.
func urlBase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "archive"
	}
	b := path.Base(u.Path)
	if b == "/" || b == "." {
		return u.Host
	}
	return b
}

// librarySources makes the library's sources: each opens its package the
// way a single mount would, with the request's context.
func librarySources(srcs []source, v *verify, w openWith, onOpen func(*appliance.Package)) []appliance.LibrarySource {
	out := make([]appliance.LibrarySource, 0, len(srcs))
	seen := map[string]bool{}
	for _, s := range srcs {
		ls := appliance.LibrarySource{Name: shownName(s.arg), Base: s.base}
		if st, err := os.Stat(s.arg); err == nil {
			ls.ModTime = st.ModTime()
			if abs, err := filepath.Abs(s.arg); err == nil {
				ls.Name = abs
			}
		}
		if seen[ls.Name] {
			continue // named twice (a file and its folder, say): one folder
		}
		seen[ls.Name] = true
		ls.Open = func(ctx context.Context) (*appliance.Package, io.Closer, error) {
			ow := w
			ow.ctx = ctx
			p, rf, err := openPackage(s.arg, v, ow)
			if err != nil {
				return nil, nil, err
			}
			if onOpen != nil {
				onOpen(p)
			}
			if rf == nil {
				return p, nil, nil
			}
			return p, rf, nil
		}
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// served is what a mount serves: one package's tree, or a library's.
type served struct {
	entries   []*appliance.Entry
	name      string // what df and the log call it
	size      int64  // the archives' bytes, which statfs reports
	signature string // the root's user.ovfmount.signature ("" for a library)
	pkg       *appliance.Package
	close     func()
}

// serveLibrary makes the tree of a library: ready at once, each archive
// opened (and its signature and warnings logged) when first looked into.
func serveLibrary(args []string, srcs []source, v *verify, w openWith, log zerolog.Logger) served {
	var size int64
	for _, s := range srcs {
		size += s.size
	}
	lib := appliance.NewLibrary(librarySources(srcs, v, w, func(p *appliance.Package) {
		log.Info().Str("archive", p.Name).Msg("archive opened")
		logPackage(log, p)
	}), time.Now())
	log.Info().Int("archives", len(srcs)).Msg("library listed; each archive is opened when its folder is first looked into")
	name := "ovfmount-library"
	if len(args) == 1 {
		name = shownName(args[0])
	}
	return served{entries: lib.Entries(), name: name, size: size, close: func() { lib.Close() }}
}
