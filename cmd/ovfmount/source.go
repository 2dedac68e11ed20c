package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/remote"
)

// source is an opened package: an OVA file, or an unpacked package folder.
type source struct {
	archive *ova.Archive
	file    *os.File         // the OVA, kept open: reads are served from it
	watched *ova.WatchedFile // the OVA, watched for changes underneath
	remote  *remote.File     // the OVA, when it is on a web server
	path    string           // absolute path, or the URL without credentials: shown in df and logs
	modTime time.Time
}

// remoteSettings are what opening an archive given as a URL needs.
type remoteSettings struct {
	flags    *remoteFlags
	ca       *caBundle // --ca, shared with the signature check
	cacheDir string
	log      zerolog.Logger
}

// identity names the archive's bytes for what is cached about them (chunk
// tables, gzip indexes); nil when it cannot be told.
func (s *source) identity() []byte {
	if s.remote != nil {
		return s.remote.Identity()
	}
	var st os.FileInfo
	var err error
	if s.file != nil {
		st, err = s.file.Stat()
	} else {
		st, err = os.Stat(s.path)
	}
	if err != nil {
		return nil
	}
	return ova.FileIdentity(st)
}

func (s *source) Close() error {
	if s.watched != nil {
		s.watched.Close()
	}
	err := s.archive.Close()
	if s.file != nil {
		err = errors.Join(err, s.file.Close())
	}
	if s.remote != nil {
		err = errors.Join(err, s.remote.Close())
	}
	return err
}

// openSource opens what the user named: an .ova (any name; recognised by
// content) as a file or an http(s) URL, an .ovf descriptor of an unpacked
// package, or the folder of one. Errors carry exit code 2 and name the
// file and the problem.
func openSource(path string, rs remoteSettings) (*source, error) {
	if isURL(path) {
		return openURL(path, rs)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fail(exitUsage, "%s: %v", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fail(exitUsage, "%s: %v", path, describeOSError(err))
	}
	if st.IsDir() {
		ovf, err := findDescriptor(abs)
		if err != nil {
			return nil, fail(exitUsage, "%s: %v", path, err)
		}
		return openPackageDir(ovf, path)
	}
	if !st.Mode().IsRegular() {
		return nil, fail(exitUsage, "%s: not a regular file", path)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fail(exitUsage, "%s: %v", path, describeOSError(err))
	}
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fail(exitUsage, "%s: cannot read: %v", path, err)
	}
	if looksLikeDescriptor(head[:n]) {
		f.Close()
		return openPackageDir(abs, path)
	}
	w, err := ova.WatchFile(f, abs)
	if err != nil {
		f.Close()
		return nil, fail(exitUsage, "%s: %v", path, err)
	}
	a, err := ova.Open(w, st.Size())
	if err != nil {
		w.Close()
		f.Close()
		var fe *ova.FormatError
		if errors.As(err, &fe) {
			return nil, fail(exitUsage, "%s: not an OVA: %s", path, fe.Reason)
		}
		return nil, fail(exitUsage, "%s: %v", path, err)
	}
	return &source{archive: a, file: f, watched: w, path: abs, modTime: st.ModTime()}, nil
}

// openURL opens an OVA on a web server. An unpacked package is not
// accepted there: its files would be separate URLs, each of them opened
// and trusted on its own.
func openURL(rawURL string, rs remoteSettings) (*source, error) {
	shown := shownName(rawURL)
	opt, err := rs.flags.options(rs.ca, rs.cacheDir, rs.log)
	if err != nil {
		return nil, err
	}
	f, err := openRemote(rawURL, opt)
	if err != nil {
		return nil, err
	}
	a, err := ova.Open(f, f.Size())
	if err != nil {
		f.Close()
		var fe *ova.FormatError
		if errors.As(err, &fe) {
			return nil, fail(exitUsage, "%s: not an OVA: %s", shown, fe.Reason)
		}
		return nil, fail(exitUsage, "%s: %v", shown, err)
	}
	return &source{archive: a, remote: f, path: f.URL(), modTime: f.ModTime()}, nil
}

func openPackageDir(ovf, shown string) (*source, error) {
	a, err := ova.OpenPackageDir(ovf)
	if err != nil {
		return nil, fail(exitUsage, "%s: %v", shown, strings.TrimPrefix(err.Error(), "ova: "))
	}
	var mt time.Time
	if st, err := os.Stat(ovf); err == nil {
		mt = st.ModTime()
	}
	return &source{archive: a, path: ovf, modTime: mt}, nil
}

// looksLikeDescriptor recognises an OVF descriptor by its first bytes, so
// that an unpacked package works whatever the file is called.
func looksLikeDescriptor(head []byte) bool {
	s := strings.TrimLeft(strings.TrimPrefix(string(head), "\xef\xbb\xbf"), " \t\r\n")
	if strings.HasPrefix(s, "<?xml") {
		return strings.Contains(s, "Envelope") || !strings.Contains(s, "<")
	}
	return strings.HasPrefix(s, "<Envelope") || strings.HasPrefix(s, "<ovf:Envelope")
}

// findDescriptor picks the one .ovf in a package folder.
func findDescriptor(dir string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.[oO][vV][fF]"))
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", errors.New("a folder is mounted as an unpacked OVF package, but it holds no .ovf descriptor")
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	return "", fmt.Errorf("the folder holds several descriptors (%s); name the one to mount", strings.Join(names, ", "))
}

func describeOSError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
