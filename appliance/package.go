package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/ova/ovf"
	"github.com/ovfmount/ovfmount/vdisk"
)

// Source is what kind of thing a package was opened from.
type Source string

const (
	SourceOVA    Source = "ova"    // a tar archive
	SourceFolder Source = "folder" // an unpacked package: a descriptor and the files beside it
	SourceDisk   Source = "disk"   // a loose disk image: a one-disk package
)

// Input is an opened file to read a package from.
type Input struct {
	// Name is how logs and reports name the source: a path, or a URL
	// without credentials.
	Name string
	// R reads the file's bytes; Size is its length.
	R    io.ReaderAt
	Size int64
	// Identity names those bytes for what later runs reuse (chunk tables,
	// gzip indexes); nil reuses nothing.
	Identity []byte
	// ModTime dates the entries the archive gives no time.
	ModTime time.Time
	// Folder is the local folder holding the file, where an unpacked
	// package's files and a VMDK descriptor's extents are looked up (and
	// nowhere else); "" for a remote file, which can only be an OVA.
	Folder string
	// Base is the file's name in Folder.
	Base string
}

// Options configure Open.
type Options struct {
	// Descriptor picks a descriptor of an OVA other than the first.
	Descriptor string
	// Integrity configures the checks (mode, roots, cache of tables...).
	// Its Identity is set from the input's.
	Integrity integrity.Options
	// Cache holds decoded disk data for all views; nil: a small one.
	Cache *vdisk.Cache
	// CacheDir is where gzip seek indexes are kept between runs.
	CacheDir string
	// BuildGzip builds the seek index of a gzip-compressed file that has
	// none saved yet, which reads the whole file (a mount does); without
	// it such a file's content is left out (info answers at once).
	BuildGzip bool
	// Context stops index builds: Open then fails with its error.
	Context context.Context
	// Log receives progress and outcomes worth a line at info level
	// (gzip indexes built or loaded); warnings go to Package.Warnings.
	Log zerolog.Logger
	// NoDiskChain refuses child disks (deltas, overlays, differencing
	// disks) as before chains were read: they get no view. By default a
	// child reads through its parents, found among the package's files.
	NoDiskChain bool
	// LogInside logs what Inside finds when it finds it, long after the
	// package was opened: its warnings (why a volume shows no files, say)
	// and a summary line. A mount sets it; info and verify report the
	// same in their output instead.
	LogInside bool
}

// Package is an opened OVF package and what the mount shows of it.
type Package struct {
	Name   string
	Source Source
	// Compression is how the whole archive is compressed (an .ova.gz);
	// CompressionNone for a plain one.
	Compression logical.Compression
	Archive     *ova.Archive
	// Descriptor is the package's descriptor; nil when it has none (a tar
	// of disks, a loose disk image).
	Descriptor *Descriptor
	// Manifest and Cert are the package's own; nil when absent. A lenient
	// manifest (not named after the descriptor) has ManifestLenient set
	// and never comes with a Cert.
	Manifest        *ova.Member
	ManifestLenient bool
	Cert            *ova.Member
	// Foreign are the other manifests and certificates.
	Foreign []*ova.Member
	// Files are the descriptor's References, resolved.
	Files []*File
	// Disks are the disks: the descriptor's, then those found by their
	// magic bytes.
	Disks []*Disk
	// Checks checks every file against the package's manifest.
	Checks *integrity.Checks
	// Entries are everything the mount shows, sorted by path; the root
	// ("") first.
	Entries []*Entry
	// DisksFolder is where the raw views go, and the partition and volume
	// views; FilesFolder where guest filesystems are shown ("" when the
	// package has no disk).
	DisksFolder string
	FilesFolder string
	// Warnings lists every inconsistency found, each once.
	Warnings []string

	modTime time.Time
	in      inside // what the disks hold, found on first need
	logIn   bool   // Options.LogInside
	// chainsOff refuses child disks (Options.NoDiskChain).
	chainsOff bool
	isos      []*ova.Member // the ISO 9660 members, shown under files/
	closers   []io.Closer
	seen      map[string]bool
	log       zerolog.Logger // Options.Log: what happens while files are read
}

// Descriptor is the package's parsed descriptor.
type Descriptor struct {
	Member *ova.Member
	Env    *ovf.Envelope // nil when it could not be parsed
	Err    error
}

// Dir is the folder the descriptor's hrefs are relative to.
func (d *Descriptor) Dir() string { return parentOf(d.Member.Name) }

func (p *Package) warn(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[s] {
		p.seen[s] = true
		p.Warnings = append(p.Warnings, s)
	}
}

// Close releases what the package holds open.
func (p *Package) Close() error {
	var errs []error
	if p.Archive != nil {
		errs = append(errs, p.Archive.Close())
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i].Close())
	}
	return errors.Join(errs...)
}

// OpenPath opens the package a local path names: an OVA, an unpacked
// package's descriptor or folder, or a loose disk image.
func OpenPath(path string, opts Options) (*Package, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	// The folder a package's files are taken from is the one the file
	// really is in: a symlink to a descriptor elsewhere means that folder.
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	if st.IsDir() {
		desc, err := onlyDescriptor(real)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return openFolder(Input{Name: abs, Folder: real, Base: desc, ModTime: st.ModTime()}, opts, SourceFolder)
	}
	if !st.Mode().IsRegular() {
		return nil, &NotPackageError{Name: path, What: "not a regular file"}
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	w, err := ova.WatchFile(f, abs)
	if err != nil {
		f.Close()
		return nil, err
	}
	in := Input{Name: abs, R: w, Size: st.Size(), Identity: ova.FileIdentity(st), ModTime: st.ModTime(),
		Folder: filepath.Dir(real), Base: filepath.Base(real)}
	p, keep, err := open(in, opts)
	if !keep {
		w.Close()
		f.Close()
		return p, err
	}
	p.closers = append(p.closers, f, closeFunc(func() error { w.Close(); return nil }))
	return p, nil
}

// Open opens the package in a file: an OVA, or, when the file has a local
// Folder, an unpacked package's descriptor or a loose disk image. The
// caller keeps in.R open as long as the package.
func Open(in Input, opts Options) (*Package, error) {
	p, _, err := open(in, opts)
	return p, err
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// open opens the package in a file. keep reports that the package reads
// the file itself (an OVA), so that it must stay open; the package of a
// folder opens the files it takes itself.
func open(in Input, opts Options) (p *Package, keep bool, err error) {
	if logical.Sniff(in.R, in.Size) != logical.CompressionNone {
		return openCompressed(in, opts)
	}
	if ova.IsZip(in.R, in.Size) {
		return openZip(in, opts)
	}
	k, a, what := identify(in.R, in.Size)
	switch {
	case k == kindOVA:
		p, err := build(in, opts, SourceOVA, a)
		return p, err == nil, err
	case k == kindDescriptor && in.Folder == "":
		what = "an OVF descriptor: an unpacked package is mounted from its local folder, not from a URL"
	case k == kindDisk && in.Folder == "":
		what = "a disk image: loose disk images are mounted from local files only"
	case k == kindDescriptor:
		p, err := openFolder(in, opts, SourceFolder)
		return p, false, err
	case k == kindDisk:
		p, err := openFolder(in, opts, SourceDisk)
		return p, false, err
	}
	return nil, false, &NotPackageError{Name: in.Name, What: what}
}

// onlyDescriptor picks the one .ovf in a package folder.
func onlyDescriptor(dir string) (string, error) {
	f, err := ova.OpenFolder(dir)
	if err != nil {
		return "", err
	}
	defer f.Close()
	names, err := f.NamesWithSuffix(".ovf")
	if err != nil {
		return "", err
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", errors.New("a folder is mounted as an unpacked OVF package, but it holds no .ovf descriptor")
	}
	return "", &SeveralDescriptorsError{Names: names}
}

// SeveralDescriptorsError is a folder holding several descriptors, where
// the user must name one.
type SeveralDescriptorsError struct{ Names []string }

func (e *SeveralDescriptorsError) Error() string {
	return fmt.Sprintf("the folder holds several descriptors (%s); name the one to mount", strings.Join(e.Names, ", "))
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
