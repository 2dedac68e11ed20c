package main

import (
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/audit"
	"github.com/ovfmount/ovfmount/fs"
)

// openAuditLog opens --audit-log before anything is mounted: a log that
// cannot be opened, locked or continued stops the mount (exit code 2)
// before the archive is even read. Nothing is written until startAudit.
func openAuditLog(cfg *mountConfig) (*audit.Log, error) {
	if cfg.auditLog == "" {
		return nil, nil
	}
	l, err := audit.Open(cfg.auditLog)
	if err != nil {
		return nil, fail(exitUsage, "--audit-log: %v", err)
	}
	return l, nil
}

// startAudit writes the session's start line (and fsyncs it): the last
// step before the mount, so that a log that cannot be written stops it.
// Later failures are logged once; from then on reads fail with EIO.
func startAudit(l *audit.Log, cfg *mountConfig, tree served, mnt string, log zerolog.Logger) (fs.Observer, error) {
	if l == nil {
		return nil, nil
	}
	names := make([]string, len(cfg.archives))
	for i, a := range cfg.archives {
		names[i] = shownName(a)
		if !isURL(a) && !strings.HasPrefix(a, "s3://") {
			if abs, err := filepath.Abs(a); err == nil {
				names[i] = abs
			}
		}
	}
	s := audit.Start{Archive: strings.Join(names, ", "), Mountpoint: mnt, Program: versionString()}
	if tree.pkg != nil {
		s.Identity, _ = tree.pkg.Fingerprint()
	}
	err := l.Start(s, func(err error) {
		log.Error().Err(err).Msg("the audit log failed: every read from now on fails with EIO; unmount, and mount again with a log that can be written")
	})
	if err != nil {
		return nil, fail(exitUsage, "--audit-log: %v", err)
	}
	return auditObserver{l}, nil
}

// closeAudit closes the log after the unmount and logs its head, which,
// kept elsewhere, proves the whole log (audit verify --head).
func closeAudit(l *audit.Log, log zerolog.Logger) {
	if l == nil {
		return
	}
	head, err := l.Close()
	if err != nil {
		log.Error().Err(err).Msg("closing the audit log")
		return
	}
	if head == "" {
		return // the mount never started: nothing was written
	}
	log.Info().Str("auditLogHead", head).Msg("audit log closed (its head is the SHA-256 of its last line: 'ovfmount audit verify --head' checks it)")
}

// auditObserver is the log as the mount's Observer.
type auditObserver struct{ l *audit.Log }

func (a auditObserver) Open(path string, who fs.Caller) (fs.Observed, error) {
	f, err := a.l.Open(path, audit.Reader(who))
	if err != nil {
		return nil, err
	}
	return auditFile{f}, nil
}

type auditFile struct{ f *audit.File }

func (a auditFile) Read(off int64, n int, who fs.Caller) error {
	return a.f.Read(off, n, audit.Reader(who))
}

func (a auditFile) Release() { a.f.Release() }
