package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/diskhash"
	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/route"
)

// diskHashFlags are verify's --disks, --hash and --partitions.
type diskHashFlags struct {
	disks, partitions bool
	hash              string
	algs              []diskhash.Algorithm
	json              bool // the report is JSON: no progress line
}

func (d *diskHashFlags) flags(fs *pflag.FlagSet) {
	fs.BoolVar(&d.disks, "disks", false, "also hash every decoded disk (each raw view under disks/, the bytes qemu-img convert -O raw writes) through the same checks as the mount's reads, and the archive file itself; the report gains their digests, sizes and times")
	fs.StringVar(&d.hash, "hash", "", "with --disks: the algorithms, comma-separated, all computed in one pass: md5, sha1, sha256, blake3 (default sha256)")
	fs.BoolVar(&d.partitions, "partitions", false, "with --disks: also hash each partition view (disks/NAME.pN), in the same pass as its disk")
}

// parse checks the flags once parsed; errors are usage errors.
func (d *diskHashFlags) parse() error {
	if !d.disks {
		if d.hash != "" || d.partitions {
			return fail(exitUsage, "--hash and --partitions hash the disks: they need --disks")
		}
		return nil
	}
	spec := d.hash
	if spec == "" {
		spec = string(diskhash.SHA256)
	}
	algs, err := diskhash.ParseAlgorithms(spec)
	if err != nil {
		return fail(exitUsage, "--hash: %v", err)
	}
	d.algs = algs
	return nil
}

// hashReport is what --disks adds to verify's report (its "hashes").
type hashReport struct {
	// Started and Time are when hashing began and when the report was
	// made, RFC 3339 in UTC.
	Started    string       `json:"started"`
	Time       string       `json:"time"`
	Algorithms []string     `json:"algorithms"`
	Archive    *archiveHash `json:"archive"` // null for an unpacked package: it has no container
	Views      []viewHash   `json:"views"`

	partErr string   // why --partitions found no partition table to read
	notes   []string // warnings about partition tables that could not be read
}

// archiveHash is the digest of the file the user named: the container's
// bytes as stored, before anything is decoded.
type archiveHash struct {
	Path    string            `json:"path"`
	Size    int64             `json:"size"`
	Digests map[string]string `json:"digests,omitempty"`
	Seconds float64           `json:"seconds"`
	Error   string            `json:"error,omitempty"`
}

// viewHash is the digest of a raw view or a partition view.
type viewHash struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // disk or partition
	// Disk is a partition's disk view, Offset where the partition starts
	// in it (0 for a disk).
	Disk    string            `json:"disk,omitempty"`
	Offset  int64             `json:"offset"`
	Size    int64             `json:"size"`
	Digests map[string]string `json:"digests,omitempty"`
	Seconds float64           `json:"seconds"`
	// Status is verified (every member the bytes are decoded from matched
	// the manifest, and every read was checked against it), unverified
	// (digests of bytes no manifest vouches for: unlisted members, or no
	// manifest), or failed (no digests: Error says why).
	Status string   `json:"status"`
	Error  string   `json:"error,omitempty"`
	From   []string `json:"from"` // the archive members the bytes are decoded from
}

const (
	hashVerified   = "verified"
	hashUnverified = "unverified"
	hashFailed     = "failed"
)

// contentSource reads a view of the package through its checks, as a
// mount's read would, with its allocation map.
type contentSource struct{ c appliance.Content }

func (s contentSource) Size() int64 { return s.c.Size() }
func (s contentSource) ReadAt(ctx context.Context, p []byte, off int64) error {
	return appliance.ReadFull(ctx, s.c, p, off)
}
func (s contentSource) Runs(off, end int64, fn func(int64, bool) bool) error {
	return appliance.Extents(s.c, off, end, fn)
}

// fileSource reads a whole file, all of it data.
type fileSource struct {
	r    io.ReaderAt
	size int64
}

func (s fileSource) Size() int64 { return s.size }
func (s fileSource) ReadAt(ctx context.Context, p []byte, off int64) error {
	n, err := route.ReadAt(ctx, s.r, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
func (s fileSource) Runs(off, end int64, fn func(int64, bool) bool) error {
	if end > off {
		fn(end-off, true)
	}
	return nil
}

// hashJob is one pass: a disk's view with its partitions, or the archive.
type hashJob struct {
	src    diskhash.Source
	ranges []diskhash.Range
	// out receives each range's result.
	out []func(diskhash.Result)
	// archive is the container's pass, run beside the disks' rather than
	// in one of their slots: one read of a file, which mostly waits on the
	// disks' hashes for the CPU.
	archive bool
}

// container is the file the user named, to hash as stored: nil for an
// unpacked package (named by its folder or its descriptor). A URL or s3:// archive is read through the same pinned reader
// as its members, so its digest is of the version they were read from.
func container(arg string, pkg *appliance.Package, remote io.ReaderAt, remoteSize int64) (name string, r io.ReaderAt, size int64, closeFn func(), err error) {
	if remote != nil {
		return pkg.Name, remote, remoteSize, func() {}, nil
	}
	if pkg.Source == appliance.SourceFolder {
		return "", nil, 0, nil, nil // a folder, or a descriptor beside its files: no container
	}
	f, err := os.Open(arg)
	if err != nil {
		return arg, nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return arg, nil, 0, nil, err
	}
	name = arg
	if pkg.Name != "" {
		name = pkg.Name // absolute, as the rest of the report names it
	}
	return name, &unchangedFile{f: f, id: ova.FileIdentity(st)}, st.Size(), func() { f.Close() }, nil
}

// unchangedFile reads a local archive, and fails the read that finds it
// changed (its size, mtime or ctime) since it was opened for hashing: the
// digest is of one version of the file, or there is none.
type unchangedFile struct {
	f  *os.File
	id []byte
}

func (u *unchangedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := u.f.ReadAt(p, off)
	if st, serr := u.f.Stat(); serr == nil && !bytes.Equal(ova.FileIdentity(st), u.id) {
		return n, fmt.Errorf("%s changed while it was hashed", u.f.Name())
	}
	return n, err
}

// hashPackage hashes the container and every disk view (and with
// partitions, every partition view) of pkg, the disks in parallel, at most
// GOMAXPROCS at a time. It runs once verification has concluded, so that
// every read of a listed member is checked against its verified table, and
// a member that failed fails its disk's reads.
func hashPackage(ctx context.Context, arg string, pkg *appliance.Package, remote io.ReaderAt, remoteSize int64,
	d *diskHashFlags, stderr io.Writer, quiet bool) (*hashReport, error) {
	started := time.Now().UTC()
	rep := &hashReport{Started: started.Format(time.RFC3339), Views: []viewHash{}}
	for _, a := range d.algs {
		rep.Algorithms = append(rep.Algorithms, string(a))
	}
	var jobs []hashJob
	var total int64

	name, r, size, closeFn, err := container(arg, pkg, remote, remoteSize)
	switch {
	case err != nil:
		rep.Archive = &archiveHash{Path: name, Error: describeOSError(err)}
	case r != nil:
		defer closeFn()
		rep.Archive = &archiveHash{Path: name, Size: size}
		a := rep.Archive
		jobs = append(jobs, hashJob{archive: true, src: fileSource{r, size}, ranges: []diskhash.Range{{Off: 0, Len: size}},
			out: []func(diskhash.Result){func(res diskhash.Result) {
				a.Seconds = res.Elapsed.Seconds()
				if res.Err != nil {
					a.Error = res.Err.Error()
					return
				}
				a.Digests = digestMap(d.algs, res.Sums)
			}}})
		total += size
	}

	parts := map[*appliance.Disk][]*appliance.Volume{}
	if d.partitions {
		in, err := pkg.Inside(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// The disks are still hashed; the verdict fails, saying why
			// no partition was.
			rep.partErr = err.Error()
			in = &appliance.Inside{}
		}
		for _, w := range in.Warnings {
			if strings.Contains(w, ": partition table: ") {
				rep.notes = append(rep.notes, w) // a disk whose partitions were not hashed, and why
			}
		}
		for _, v := range in.Volumes {
			if v.Kind == appliance.VolumePartition && v.Disk != nil && v.Partition != nil && v.View != "" {
				parts[v.Disk] = append(parts[v.Disk], v)
			}
		}
	}
	for _, k := range pkg.Disks {
		e := pkg.Lookup(k.View)
		if k.View == "" || e == nil || e.Content == nil || e.Role != appliance.RoleView {
			continue
		}
		from := memberNames(e)
		c := e.Content
		job := hashJob{src: contentSource{c}}
		add := func(v viewHash, rg diskhash.Range) {
			v.From, v.Size, v.Offset = from, rg.Len, rg.Off
			i := len(rep.Views)
			rep.Views = append(rep.Views, v)
			job.ranges = append(job.ranges, rg)
			job.out = append(job.out, func(res diskhash.Result) {
				settleView(&rep.Views[i], res, c, d.algs)
			})
		}
		add(viewHash{Path: k.View, Kind: "disk"}, diskhash.Range{Off: 0, Len: c.Size()})
		for _, v := range parts[k] {
			add(viewHash{Path: v.View, Kind: "partition", Disk: k.View}, diskhash.Range{Off: v.Partition.Start, Len: v.Partition.Size})
		}
		// A view whose members failed verification fails every read:
		// skip its pass, say why.
		if st, _ := c.Status(); failedStatus(st) {
			for i := len(rep.Views) - len(job.ranges); i < len(rep.Views); i++ {
				rep.Views[i].Status, rep.Views[i].Error = hashFailed, failedWhy(st)
			}
			continue
		}
		jobs = append(jobs, job)
		total += c.Size()
	}

	var done atomic.Int64
	var progress func(int64)
	if f, ok := stderr.(*os.File); ok && isTerminal(f) && !quiet && !d.json {
		progress = func(n int64) { done.Add(n) }
		finish := showProgressAs(f, "hashing", total, &done)
		defer finish()
	}
	slots := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !j.archive {
				slots <- struct{}{}
				defer func() { <-slots }()
			}
			res := diskhash.Hash(ctx, j.src, d.algs, j.ranges, progress)
			for k, r := range res {
				j.out[k](r)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Time = time.Now().UTC().Format(time.RFC3339)
	return rep, nil
}

// settleView records a range's result, with the state of what it was read
// from after the pass: digests only of bytes that every read returned, and
// verified only when the members they come from are.
func settleView(v *viewHash, res diskhash.Result, c appliance.Content, algs []diskhash.Algorithm) {
	v.Seconds = res.Elapsed.Seconds()
	st, _ := c.Status()
	switch {
	case res.Err != nil:
		v.Status, v.Error = hashFailed, res.Err.Error()
		if failedStatus(st) {
			v.Error = failedWhy(st) + ": " + v.Error
		}
	case failedStatus(st):
		// Never a digest of bytes whose members failed, even if every
		// read happened to succeed.
		v.Status, v.Error = hashFailed, failedWhy(st)
	case st == string(integrity.StatusVerified):
		v.Status, v.Digests = hashVerified, digestMap(algs, res.Sums)
	default:
		v.Status, v.Digests = hashUnverified, digestMap(algs, res.Sums)
	}
}

// failedStatus is a view state whose bytes are not to be hashed: a member
// failed verification, the image is damaged, or verification never
// concluded.
func failedStatus(st string) bool {
	return st == string(integrity.StatusMismatch) || st == appliance.StatusDamaged || st == string(integrity.StatusPending)
}

func failedWhy(st string) string {
	switch st {
	case string(integrity.StatusMismatch):
		return "a member it is decoded from does not match the manifest"
	case appliance.StatusDamaged:
		return "the disk image is damaged"
	}
	return "the verification of its members did not conclude"
}

func digestMap(algs []diskhash.Algorithm, sums [][]byte) map[string]string {
	m := make(map[string]string, len(algs))
	for i, a := range algs {
		m[string(a)] = hex.EncodeToString(sums[i])
	}
	return m
}

func memberNames(e *appliance.Entry) []string {
	out := []string{}
	for _, m := range e.Members {
		out = append(out, m.Name)
	}
	return out
}

// hashFailures are the warnings of a report whose hashes failed: one per
// view or archive without digests.
func (h *hashReport) failures() []string {
	var out []string
	if h.partErr != "" {
		out = append(out, "no partition was hashed: reading the partition tables: "+h.partErr)
	}
	if a := h.Archive; a != nil && a.Error != "" {
		out = append(out, fmt.Sprintf("%s: no digest of the archive: %s", a.Path, a.Error))
	}
	for _, v := range h.Views {
		if v.Status == hashFailed {
			out = append(out, fmt.Sprintf("%s: no digest: %s", v.Path, v.Error))
		}
	}
	return out
}

// printHashes prints the digests: a table of what was hashed, then one
// line per digest in the form sha256sum and its peers print ("DIGEST
// PATH"), labelled by algorithm, so that a line can be compared with the
// same tool's output over the mounted view.
func printHashes(w io.Writer, h *hashReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HASHED\tSIZE\tSTATUS\tSECONDS")
	if a := h.Archive; a != nil {
		st := "archive"
		if a.Error != "" {
			st = "failed: " + a.Error
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\n", a.Path, a.Size, st, a.Seconds)
	}
	for _, v := range h.Views {
		st := v.Status
		if v.Error != "" {
			st += ": " + v.Error
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\n", v.Path, v.Size, st, v.Seconds)
	}
	tw.Flush()
	if h.Archive == nil {
		fmt.Fprintln(w, "archive: none (an unpacked package has no container to hash)")
	}
	for _, alg := range h.Algorithms {
		if a := h.Archive; a != nil && a.Digests[alg] != "" {
			fmt.Fprintf(w, "%-7s %s  %s\n", alg, a.Digests[alg], a.Path)
		}
		for _, v := range h.Views {
			if v.Digests[alg] != "" {
				fmt.Fprintf(w, "%-7s %s  %s\n", alg, v.Digests[alg], v.Path)
			}
		}
	}
	fmt.Fprintf(w, "hashed: %s to %s\n", h.Started, h.Time)
}
