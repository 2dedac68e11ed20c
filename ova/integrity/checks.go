package integrity

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/manifest"
	"github.com/ovfmount/ovfmount/ova/ovf"
)

// Mode says how reads are checked against the manifest.
type Mode int

const (
	// Off: no hashing at all.
	Off Mode = iota
	// Lazy: reads are served at once; the first open of a listed file
	// starts its verification in the background, and once it is verified
	// every later read is checked against its 32 KiB pieces' digests.
	Lazy
	// Strict: no byte of a listed file is served before the file is
	// verified; a bad signature fails every listed file; unlisted files
	// are refused unless allowed.
	Strict
)

// ParseMode reads "off", "lazy" or "strict".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "off":
		return Off, nil
	case "lazy":
		return Lazy, nil
	case "strict":
		return Strict, nil
	}
	return 0, fmt.Errorf("verify mode must be off, lazy or strict, not %q", s)
}

// Errors reads of checked files fail with.
var (
	ErrMismatch     = errors.New("file does not match its manifest digest")
	ErrBadSignature = errors.New("the manifest's signature is not valid")
	ErrUnsigned     = errors.New("the package is not signed by a trusted signer, and one is required")
	ErrUnlisted     = errors.New("file is not listed in the package's manifest")
)

// Status is a file's verification state, as the user.ovfmount.verify
// extended attribute shows it.
type Status string

const (
	StatusPending  Status = "pending"  // listed, not hashed yet
	StatusVerified Status = "verified" // matches the manifest (the manifest: validly signed)
	StatusMismatch Status = "mismatch" // listed, and differs or cannot be read
	StatusUnlisted Status = "unlisted" // the package's manifest does not list it
	StatusForeign  Status = "foreign"  // another package's manifest or certificate, unlisted
	StatusMeta     Status = "metadata" // the package's own certificate, or its unsigned manifest
	StatusOff      Status = "off"      // verification is off
)

// Event reports the outcome of a verification, for the caller to log.
type Event struct {
	File      string
	Status    Status // verified or mismatch
	Algorithm string
	Expected  string // hex
	Actual    string // hex; for a piece, its BLAKE3 (128 bits)
	// Piece is the index of the PieceSize piece whose digest differs from
	// the table recorded at verification (bytes Piece*PieceSize on), or
	// -1 for the whole file.
	Piece  int
	Err    error // why verification could not finish, if so
	Cached bool  // trusted from an earlier run's chunk table
}

// Package is what the checks are about, as the caller's model of the
// package decided it: the archive, the descriptor, and the package's own
// manifest and certificate. Nothing here is guessed from file names.
type Package struct {
	Archive    *ova.Archive
	Descriptor *ova.Member // nil: the package has none
	// Manifest is the package's own manifest (nil: none). Its names are
	// relative to its folder.
	Manifest *ova.Member
	// Cert is the package's own certificate (nil: none). It must sign
	// Manifest.
	Cert *ova.Member
	// Foreign are other manifests and certificates: ordinary files that
	// vouch for nothing.
	Foreign []*ova.Member
}

// Options configure New.
type Options struct {
	Mode Mode
	// CacheDir keeps trusted chunk tables between runs ("" = not kept).
	CacheDir string
	// Identity names the archive (ova.Archive.Identity), which names its
	// tables in the cache; nil keeps nothing.
	Identity []byte
	// UseCachedTables trusts the chunk tables an earlier run verified (for
	// the same archive identity) instead of hashing those files again.
	// Mounts use them to start trusted at once; a verification that must
	// read every byte does not.
	UseCachedTables bool
	// Roots checks the signer's chain; nil means the system roots.
	Roots *x509.CertPool
	// RequireTrustedSigner makes an untrusted, self-signed or expired
	// signer as bad as a bad signature, and, in strict mode, an unsigned
	// package as bad as one whose signature fails.
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

// Valid reports whether the signature vouches for the package (its signer
// trusted or not).
func (s Signature) Valid() bool { return s.State == "ok" || s.State == "ok-untrusted" }

// Checks checks a package's files against its manifest and signature.
// Build it with New; it is safe for concurrent use.
type Checks struct {
	p        Package
	opts     Options
	base     string // folder of the manifest: its names are relative to it
	mf       *manifest.Manifest
	sig      Signature
	coverage manifest.Report
	warnings []string
	files    map[*ova.Member]*File
	sem      chan struct{}
	cache    *tableCache

	mu     sync.Mutex
	tables map[string]*chunkTable // trusted, by member name
}

// New reads the package's manifest and certificate, checks the signature,
// its chain and what it binds, and prepares a checking reader for every
// file. It reads the small metadata files and the descriptor; hashing of
// other files starts when a file is opened or read through the mount (or
// with VerifyAll).
func New(p Package, opts Options) *Checks {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Checks{p: p, opts: opts, files: map[*ova.Member]*File{}, sem: make(chan struct{}, opts.Workers),
		tables: map[string]*chunkTable{}, cache: &tableCache{}}
	if p.Manifest != nil {
		c.base = parentOf(p.Manifest.Name)
	} else if p.Descriptor != nil {
		c.base = parentOf(p.Descriptor.Name)
	}
	c.readManifest()
	if opts.Mode != Off && opts.Identity != nil {
		c.cache = newTableCache(opts.CacheDir, opts.Identity)
		if opts.UseCachedTables {
			if tables, err := c.cache.load(); err != nil {
				c.warnf("chunk tables in %s were discarded: %v", opts.CacheDir, err)
			} else if tables != nil {
				c.tables = tables
			}
		}
	}
	foreign := map[*ova.Member]bool{}
	for _, m := range p.Foreign {
		foreign[m] = true
	}
	for _, m := range p.Archive.Files() {
		c.files[m] = c.newFile(m, foreign[m])
	}
	c.checkSignature()
	c.checkCoverage()
	for _, f := range c.files {
		f.settle()
	}
	return c
}

func (c *Checks) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// readManifest parses the package's own manifest.
func (c *Checks) readManifest() {
	m := c.p.Manifest
	if m == nil {
		return
	}
	mf, err := manifest.Parse(m.Open())
	if err != nil {
		c.warnf("manifest %s ignored: %v", m.Name, err)
		return
	}
	c.mf = mf
	for _, w := range mf.Warnings {
		c.warnf("%s: %s", m.Name, w)
	}
}

// checkSignature verifies the package's certificate over the exact bytes
// of the package's manifest, then what it binds: the package counts as
// signed only if the signed manifest lists the descriptor with a digest
// that matches it.
func (c *Checks) checkSignature() {
	cm := c.p.Cert
	if cm == nil {
		c.sig = Signature{State: "absent"}
		return
	}
	c.sig = Signature{State: "bad", File: cm.Name}
	bad := func(format string, args ...any) { c.sig.Err = fmt.Errorf(format, args...) }
	cert, err := manifest.ParseCert(cm.Open())
	if err != nil {
		bad("%s: %w", cm.Name, err)
		return
	}
	for _, w := range cert.Warnings {
		c.warnf("%s: %s", cm.Name, w)
	}
	if len(cert.Certificates) > 0 {
		c.sig.Signer = cert.Certificates[0].Subject.String()
	}
	signed := path.Join(parentOf(cm.Name), cert.ManifestName)
	switch {
	case c.p.Manifest == nil:
		bad("%s signs %s, but the package has no manifest", cm.Name, cert.ManifestName)
		return
	case !strings.EqualFold(signed, c.p.Manifest.Name):
		bad("%s signs %s, not the package's manifest %s", cm.Name, cert.ManifestName, c.p.Manifest.Name)
		return
	case c.mf == nil:
		bad("%s signs %s, which cannot be read", cm.Name, c.p.Manifest.Name)
		return
	}
	if err := cert.VerifySignature(c.mf.Raw); err != nil {
		bad("%s over %s: %w", cm.Name, c.p.Manifest.Name, err)
		return
	}
	if err := c.binds(); err != nil {
		bad("%s over %s is valid, but %v: it vouches for nothing of this package", cm.Name, c.p.Manifest.Name, err)
		return
	}
	chain := cert.VerifyChain(c.opts.Roots, c.opts.Now())
	c.sig.Chain = string(chain.Status)
	c.sig.Signer = chain.Signer
	switch {
	case chain.Status == manifest.Trusted:
		c.sig.State = "ok"
	case c.opts.RequireTrustedSigner:
		c.sig.State, c.sig.Err = "bad", fmt.Errorf("the signer %q is %s, and a trusted signer is required: %v", chain.Signer, chain.Status, chain.Err)
	default:
		c.sig.State, c.sig.Err = "ok-untrusted", chain.Err
	}
}

// binds checks that the manifest lists the descriptor and that the
// descriptor matches that digest (which verifies the descriptor's file).
func (c *Checks) binds() error {
	d := c.p.Descriptor
	if d == nil {
		return errors.New("the package has no descriptor")
	}
	f := c.files[d]
	switch {
	case !f.listed:
		return fmt.Errorf("the manifest does not list the descriptor %s", d.Name)
	case d.Size > ovf.MaxSize:
		// Not hashed: no descriptor is that large, and hashing a hostile
		// one would hold up the mount.
		return fmt.Errorf("the descriptor %s is %d bytes, larger than any descriptor is read", d.Name, d.Size)
	}
	got, err := f.digest()
	switch {
	case err != nil:
		return fmt.Errorf("the descriptor %s cannot be read: %v", d.Name, err)
	case !bytes.Equal(got, f.entry.Digest):
		return fmt.Errorf("the descriptor %s does not match its digest in the manifest", d.Name)
	}
	return nil
}

// checkCoverage compares the manifest with the files of the manifest's
// folder, both ways. The package's own manifest and certificate are never
// listed; other manifests and certificates are files like any other.
func (c *Checks) checkCoverage() {
	if c.mf == nil {
		return
	}
	var present []string
	for m, f := range c.files {
		if m == c.p.Manifest || m == c.p.Cert {
			continue
		}
		if rel, ok := c.relName(m); ok && f != nil {
			present = append(present, rel)
		}
	}
	sort.Strings(present)
	desc := ""
	if c.p.Descriptor != nil {
		desc, _ = c.relName(c.p.Descriptor)
	}
	c.coverage = manifest.Coverage(c.mf, present, desc, nil)
	c.warnings = append(c.warnings, c.coverage.Warnings()...)
}

// relName is a member's name as the manifest writes it; false for members
// outside the manifest's folder.
func (c *Checks) relName(m *ova.Member) (string, bool) {
	if c.base == "" {
		return m.Name, true
	}
	rest, ok := strings.CutPrefix(m.Name, c.base+"/")
	return rest, ok
}

// Signature is the verdict on the package's certificate.
func (c *Checks) Signature() Signature { return c.sig }

// Mode is how reads are checked.
func (c *Checks) Mode() Mode { return c.opts.Mode }

// RequireTrustedSigner reports whether only a trusted signature will do.
func (c *Checks) RequireTrustedSigner() bool { return c.opts.RequireTrustedSigner }

// Coverage reports files listed but missing and present but unlisted.
func (c *Checks) Coverage() manifest.Report { return c.coverage }

// Manifest is the package's parsed manifest (nil when it has none).
func (c *Checks) Manifest() *manifest.Manifest { return c.mf }

// Warnings lists manifest, certificate and coverage findings, each once.
func (c *Checks) Warnings() []string { return c.warnings }

// File returns the checking reader of a member (nil for non-files).
func (c *Checks) File(m *ova.Member) *File { return c.files[m] }

// trusted records a verified file's chunk table and persists all of them.
func (c *Checks) trusted(t *chunkTable) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables[t.Name] = t
	return c.cache.store(c.tables)
}

func (c *Checks) event(e Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
}

func nowNano() int64 { return time.Now().UnixNano() }

// VerifyAll verifies every listed file not yet verified, at most Workers
// at a time, and waits for them; progress, if set, gets bytes hashed. When
// ctx ends it stops hashing, waits for the files being hashed to stop (so
// no cache file is left half written) and returns ctx's error. It is what
// `ovfmount verify` runs, and it leaves trusted chunk tables for later
// mounts.
func (c *Checks) VerifyAll(ctx context.Context, progress func(int64)) error {
	var wg sync.WaitGroup
	for _, m := range c.p.Archive.Files() {
		f := c.files[m]
		if !f.listed {
			continue
		}
		started := false
		f.start.Do(func() { started = true })
		if !started {
			continue // concluded already, or being verified for a reader
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.verify(ctx, progress)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, m := range c.p.Archive.Files() {
		if f := c.files[m]; f.listed {
			f.Wait(ctx)
		}
	}
	return ctx.Err()
}

// ListedTotal is the number of bytes VerifyAll hashes.
func (c *Checks) ListedTotal() int64 {
	var n int64
	for m, f := range c.files {
		if f.listed && f.Status() == StatusPending {
			n += m.Size
		}
	}
	return n
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
