package appliance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// A Library is several archives in one mount, one folder each. It is
// ready as soon as the archives are listed: each is opened and indexed the
// first time something under its folder is looked up, so a library of a
// thousand archives mounts at once, and an archive that cannot be read
// fails its own folder only.
type Library struct {
	folders []*libraryFolder
	modTime time.Time
}

// LibrarySource is one archive of a library.
type LibrarySource struct {
	// Name is how logs and reports name the archive: a path, or a URL
	// without credentials. Two sources of one library never share it.
	Name string
	// Base is the archive's file name (the last part of its path or key),
	// which its folder is named after.
	Base    string
	ModTime time.Time
	// Open opens the package. The closer, if not nil, is closed after
	// the package, when the library is (a remote file, say).
	Open func(ctx context.Context) (*Package, io.Closer, error)
}

// Library folder attributes: how a folder's archive is doing, for
// getfattr and scripts.
const (
	AttrSource    = "user.ovfmount.source"    // the archive, as Name shows it
	AttrState     = "user.ovfmount.state"     // closed (not looked into yet), open or failed
	AttrError     = "user.ovfmount.error"     // why the archive failed to open
	AttrSignature = "user.ovfmount.signature" // ok, bad, absent, ok-untrusted SIGNER: once open
)

// retryFailedAfter is how long a failure to open an archive is answered
// from memory before the next look tries again: a folder that a find
// visits again and again does not re-read a broken archive each time, and
// a remote archive that was unreachable is tried again later.
const retryFailedAfter = 30 * time.Second

type libraryFolder struct {
	name string
	src  LibrarySource

	mu       sync.Mutex
	p        *Package
	closer   io.Closer
	err      error
	failedAt time.Time
	now      func() time.Time
}

// NewLibrary makes the library of srcs. Each folder is named after its
// archive's Base without the extensions archives carry (.ova, .ova.gz,
// .tar.xz, .zip...). Names that clash get a suffix made from the
// source's Name, so that a folder keeps its name from one mount to the
// next whatever else the library holds.
func NewLibrary(srcs []LibrarySource, modTime time.Time) *Library {
	l := &Library{modTime: modTime}
	count := map[string]int{}
	for _, s := range srcs {
		count[FolderName(s.Base)]++
	}
	for _, s := range srcs {
		name := FolderName(s.Base)
		if count[name] > 1 {
			sum := sha256.Sum256([]byte(s.Name))
			name = fmt.Sprintf("%s~%x", name, sum[:4])
		}
		l.folders = append(l.folders, &libraryFolder{name: name, src: s, now: time.Now})
	}
	sort.Slice(l.folders, func(i, j int) bool { return l.folders[i].name < l.folders[j].name })
	return l
}

// archiveSuffixes are stripped from a file name to name its folder,
// longest first.
var archiveSuffixes = []string{".ova.gz", ".ova.xz", ".ova.zst", ".ova.zip", ".tar.gz", ".tar.xz", ".tar.zst",
	".ova", ".tar", ".tgz", ".txz", ".zip", ".gz", ".xz", ".zst"}

// FolderName is the folder a library shows an archive of that file name
// in: the name without its archive extensions, never empty, ".", ".." or
// holding a slash.
func FolderName(base string) string {
	name := base
	lower := strings.ToLower(name)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) && len(name) > len(s) {
			name = name[:len(name)-len(s)]
			break
		}
	}
	name = strings.ReplaceAll(name, "/", "_")
	name = strings.ReplaceAll(name, "\x00", "_")
	switch name {
	case "", ".", "..":
		name = "_" + name
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

// Entries is what the mount shows before any archive is opened: the root
// and one folder per archive, each expanding into its package's entries
// when first looked into.
func (l *Library) Entries() []*Entry {
	out := []*Entry{{Path: "", Type: Dir, Perm: 0o755, ModTime: l.modTime, Role: RoleFolder}}
	for _, f := range l.folders {
		mt := f.src.ModTime
		if mt.IsZero() {
			mt = l.modTime
		}
		out = append(out, &Entry{Path: f.name, Type: Dir, Perm: 0o755, ModTime: mt, Role: RoleArchive,
			Expand: f.expand, Attrs: f.attrs})
	}
	return out
}

// Close closes every package the library opened.
func (l *Library) Close() error {
	var errs []error
	for _, f := range l.folders {
		f.mu.Lock()
		if f.p != nil {
			errs = append(errs, f.p.Close())
		}
		if f.closer != nil {
			errs = append(errs, f.closer.Close())
		}
		f.p, f.closer = nil, nil
		f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// expand opens the folder's archive and gives its package's entries under
// the folder.
func (f *libraryFolder) expand(ctx context.Context) ([]*Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.p == nil && f.err != nil && f.now().Sub(f.failedAt) < retryFailedAfter {
		return nil, f.err
	}
	if f.p == nil {
		p, c, err := f.src.Open(ctx)
		if err != nil {
			if ctx.Err() == nil { // an interrupted look is no verdict on the archive
				f.err, f.failedAt = err, f.now()
			}
			return nil, err
		}
		f.p, f.closer, f.err = p, c, nil
	}
	return underFolder(f.name, f.p.Entries), nil
}

func (f *libraryFolder) attrs() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := map[string]string{AttrSource: f.src.Name}
	switch {
	case f.p != nil:
		a[AttrState] = "open"
		if f.p.Checks != nil {
			a[AttrSignature] = f.p.Checks.Signature().String()
		}
	case f.err != nil:
		a[AttrState] = "failed"
		a[AttrError] = f.err.Error()
	default:
		a[AttrState] = "closed"
	}
	return a
}

// underFolder moves a package's entries under dir: the package's root
// becomes dir itself, and folders that expand later expand under it too.
func underFolder(dir string, entries []*Entry) []*Entry {
	out := make([]*Entry, 0, len(entries))
	for _, e := range entries {
		if e.Path == "" {
			continue // dir is the package's root
		}
		c := *e
		c.Path = dir + "/" + e.Path
		if e.Expand != nil {
			inner := e.Expand
			c.Expand = func(ctx context.Context) ([]*Entry, error) {
				more, err := inner(ctx)
				if err != nil {
					return nil, err
				}
				return underFolder(dir, more), nil
			}
		}
		out = append(out, &c)
	}
	return out
}
