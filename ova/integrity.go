package ova

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ovfmount/ovfmount/ova/manifest"
)

// VerifyMode says how reads are checked against the manifest.
type VerifyMode int

const (
	// VerifyOff: no hashing at all.
	VerifyOff VerifyMode = iota
	// VerifyLazy: reads are served at once; the first open of a listed
	// file starts its verification in the background, and once it is
	// verified every later read is checked chunk by chunk.
	VerifyLazy
	// VerifyStrict: no byte of a listed file is served before the file is
	// verified; a bad signature fails every listed file; unlisted files
	// are refused unless allowed.
	VerifyStrict
)

// ParseVerifyMode reads "off", "lazy" or "strict".
func ParseVerifyMode(s string) (VerifyMode, error) {
	switch s {
	case "off":
		return VerifyOff, nil
	case "lazy":
		return VerifyLazy, nil
	case "strict":
		return VerifyStrict, nil
	}
	return 0, fmt.Errorf("verify mode must be off, lazy or strict, not %q", s)
}

// Errors reads of checked files fail with.
var (
	ErrMismatch     = errors.New("file does not match its manifest digest")
	ErrBadSignature = errors.New("the manifest's signature is not valid")
	ErrUnlisted     = errors.New("file is not listed in the manifest")
)

// Status is a file's verification state, as the user.ovfmount.verify
// extended attribute shows it.
type Status string

const (
	StatusPending  Status = "pending"
	StatusVerified Status = "verified"
	StatusMismatch Status = "mismatch"
	StatusUnlisted Status = "unlisted"
	StatusOff      Status = "off"
)

// Event reports the outcome of a verification, for the caller to log.
type Event struct {
	File      string
	Status    Status // verified or mismatch
	Algorithm string
	Expected  string // hex
	Actual    string // hex; for a chunk, its SHA-256
	Chunk     int    // -1 for the whole file
	Err       error  // why verification could not finish, if so
	Cached    bool   // trusted from an earlier run's chunk table
}

// IntegrityOptions configure NewIntegrity.
type IntegrityOptions struct {
	Mode VerifyMode
	// CacheDir keeps trusted chunk tables between runs ("" = not kept).
	CacheDir string
	// Source identifies the archive's bytes (FileIdentity of a local file,
	// or a URL and its validator), which names its tables in the cache;
	// nil keeps nothing.
	Source []byte
	// Roots checks the signer's chain; nil means the system roots.
	Roots *x509.CertPool
	// RequireTrustedSigner makes an untrusted, self-signed or expired
	// signer as bad as a bad signature.
	RequireTrustedSigner bool
	// AllowUnlisted serves unlisted files in strict mode.
	AllowUnlisted bool
	// Workers bounds how many files are hashed at once (default 2).
	Workers int
	// OnEvent receives each verification outcome (it may be called from
	// background goroutines).
	OnEvent func(Event)
	// Now is the time certificates are checked at (default time.Now).
	Now func() time.Time
}

// Signature is the verdict on the package's certificate.
type Signature struct {
	State  string // "ok", "bad", "absent" or "ok-untrusted"
	Signer string // the signer's subject
	Chain  string // "trusted", "untrusted", "self-signed" or "expired"
	File   string // the .cert member
	Err    error  // why it is bad or untrusted
}

// String is the user.ovfmount.signature attribute: the state, and for an
// untrusted signer its subject.
func (s Signature) String() string {
	if s.State == "ok-untrusted" {
		return s.State + " " + s.Signer
	}
	return s.State
}

// Integrity checks an archive's files against its manifests and
// signature. Build it with NewIntegrity; it is safe for concurrent use.
type Integrity struct {
	a        *Archive
	opts     IntegrityOptions
	base     string // folder of the descriptor: manifest names are relative to it
	mf       *manifest.Manifest
	sig      Signature
	coverage manifest.Report
	warnings []string
	files    map[*Member]*VerifiedFile
	sem      chan struct{}
	cache    *tableCache

	mu     sync.Mutex
	tables map[string]*chunkTable // trusted, by member name
}

// NewIntegrity reads the archive's manifests and certificate, checks the
// signature and chain, and prepares a verifying reader for every file.
// It reads only the small metadata files; hashing starts when a file is
// opened (or with VerifyAll).
func NewIntegrity(a *Archive, opts IntegrityOptions) *Integrity {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	in := &Integrity{a: a, opts: opts, files: map[*Member]*VerifiedFile{}, sem: make(chan struct{}, opts.Workers),
		tables: map[string]*chunkTable{}, cache: &tableCache{}}
	descriptor := in.descriptor()
	if descriptor != nil {
		in.base = parentOf(descriptor.Name)
	}
	raws := in.readManifests(descriptor)
	in.checkSignature(descriptor, raws)
	in.checkCoverage(descriptor)
	if opts.Mode != VerifyOff && opts.Source != nil {
		in.cache = newTableCache(opts.CacheDir, archiveIdentity(opts.Source, a))
		if tables, err := in.cache.load(); err != nil {
			in.warnf("chunk tables in %s were discarded: %v", opts.CacheDir, err)
		} else {
			in.tables = tables
			if in.tables == nil {
				in.tables = map[string]*chunkTable{}
			}
		}
	}
	for _, m := range a.Files() {
		in.files[m] = in.newFile(m)
	}
	return in
}

func (in *Integrity) warnf(format string, args ...any) {
	in.warnings = append(in.warnings, fmt.Sprintf(format, args...))
}

// descriptor picks the package's descriptor: the .ovf at the shallowest
// level, first by name.
func (in *Integrity) descriptor() *Member {
	var best *Member
	for _, m := range in.a.FilesWithSuffix(".ovf") {
		if best == nil || strings.Count(m.Name, "/") < strings.Count(best.Name, "/") {
			best = m
		}
	}
	return best
}

// readManifests parses every .mf and merges them, the descriptor's own
// first. It returns each manifest's exact bytes, which a .cert signs.
func (in *Integrity) readManifests(descriptor *Member) map[string][]byte {
	raws := map[string][]byte{}
	var sources []manifest.Source
	for _, m := range in.a.FilesWithSuffix(".mf") {
		mf, err := manifest.Parse(m.Open())
		if err != nil {
			in.warnf("manifest %s ignored: %v", m.Name, err)
			continue
		}
		raws[m.Name] = mf.Raw
		sources = append(sources, manifest.Source{Name: m.Name, Manifest: mf})
	}
	if len(sources) == 0 {
		in.mf = nil
		return raws
	}
	name := ""
	if descriptor != nil {
		name = descriptor.Name
	}
	in.mf = manifest.Merge(name, sources...)
	in.warnings = append(in.warnings, in.mf.Warnings...)
	return raws
}

// checkSignature verifies the .cert (the one named after the descriptor,
// else the only one) over the exact bytes of the manifest it names.
func (in *Integrity) checkSignature(descriptor *Member, raws map[string][]byte) {
	certs := in.a.FilesWithSuffix(".cert")
	if len(certs) == 0 {
		in.sig = Signature{State: "absent"}
		return
	}
	cm := certs[0]
	if descriptor != nil {
		want := strings.TrimSuffix(descriptor.Name, path.Ext(descriptor.Name)) + ".cert"
		for _, c := range certs {
			if strings.EqualFold(c.Name, want) {
				cm = c
			}
		}
	}
	in.sig = Signature{State: "bad", File: cm.Name}
	cert, err := manifest.ParseCert(cm.Open())
	if err != nil {
		in.sig.Err = fmt.Errorf("%s: %w", cm.Name, err)
		return
	}
	in.warnings = append(in.warnings, cert.Warnings...)
	signed := path.Join(parentOf(cm.Name), cert.ManifestName)
	raw, ok := raws[signed]
	if !ok {
		in.sig.Err = fmt.Errorf("%s signs %s, which is not in the package", cm.Name, cert.ManifestName)
		return
	}
	if len(cert.Certificates) > 0 {
		in.sig.Signer = cert.Certificates[0].Subject.String()
	}
	if err := cert.VerifySignature(raw); err != nil {
		in.sig.Err = fmt.Errorf("%s over %s: %w", cm.Name, signed, err)
		return
	}
	chain := cert.VerifyChain(in.opts.Roots, in.opts.Now())
	in.sig.Chain = string(chain.Status)
	in.sig.Signer = chain.Signer
	switch {
	case chain.Status == manifest.Trusted:
		in.sig.State = "ok"
	case in.opts.RequireTrustedSigner:
		in.sig.State, in.sig.Err = "bad", fmt.Errorf("the signer %q is %s, and a trusted signer is required: %v", chain.Signer, chain.Status, chain.Err)
	default:
		in.sig.State, in.sig.Err = "ok-untrusted", chain.Err
	}
}

// checkCoverage compares the manifest with the files present, both ways.
func (in *Integrity) checkCoverage(descriptor *Member) {
	if in.mf == nil {
		if descriptor != nil {
			in.warnf("the package has no manifest: nothing can be verified")
		}
		return
	}
	var present []string
	for _, m := range in.a.Files() {
		if rel, ok := in.relName(m); ok {
			present = append(present, rel)
		}
	}
	desc := ""
	if descriptor != nil {
		desc, _ = in.relName(descriptor)
	}
	in.coverage = manifest.Coverage(in.mf, present, desc, nil)
	in.warnings = append(in.warnings, in.coverage.Warnings()...)
}

// relName is a member's name as a manifest beside the descriptor writes
// it; false for members outside the descriptor's folder.
func (in *Integrity) relName(m *Member) (string, bool) {
	if in.base == "" {
		return m.Name, true
	}
	rest, ok := strings.CutPrefix(m.Name, in.base+"/")
	return rest, ok
}

// Signature is the verdict on the package's certificate.
func (in *Integrity) Signature() Signature { return in.sig }

// Mode is how reads are checked.
func (in *Integrity) Mode() VerifyMode { return in.opts.Mode }

// Coverage reports files listed but missing and present but unlisted.
func (in *Integrity) Coverage() manifest.Report { return in.coverage }

// Manifest is the merged manifest (nil when the package has none).
func (in *Integrity) Manifest() *manifest.Manifest { return in.mf }

// Warnings lists manifest, certificate and coverage findings.
func (in *Integrity) Warnings() []string { return in.warnings }

// File returns the verifying reader of a member (nil for non-files).
func (in *Integrity) File(m *Member) *VerifiedFile { return in.files[m] }

// trusted records a verified file's chunk table and persists all of them.
func (in *Integrity) trusted(t *chunkTable) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.tables[t.Name] = t
	return in.cache.store(in.tables)
}

func (in *Integrity) event(e Event) {
	if in.opts.OnEvent != nil {
		in.opts.OnEvent(e)
	}
}

func nowNano() int64 { return time.Now().UnixNano() }

// VerifyAll verifies every listed file not yet verified, at most Workers
// at a time, and waits for them; progress, if set, gets bytes hashed. It
// is what `ovfmount verify` runs, and it leaves trusted chunk tables for
// later mounts.
func (in *Integrity) VerifyAll(ctx context.Context, progress func(int64)) error {
	var wg sync.WaitGroup
	for _, m := range in.a.Files() {
		f := in.files[m]
		if !f.listed {
			continue
		}
		wg.Add(1)
		started := false
		f.start.Do(func() { started = true })
		go func() {
			defer wg.Done()
			if started && f.Status() == StatusPending {
				f.verify(progress)
				return
			}
			<-f.done // concluded already, or being verified for a reader
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListedTotal is the number of bytes VerifyAll hashes.
func (in *Integrity) ListedTotal() int64 {
	var n int64
	for m, f := range in.files {
		if f.listed && f.Status() == StatusPending {
			n += m.Size
		}
	}
	return n
}
