package integration

import (
	"archive/tar"
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonRSS returns the peak resident set (VmHWM) of the ovfmount process
// serving mnt.
func daemonRSS(t *testing.T, mnt string) int64 {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !strings.Contains(string(cmd), "ovfmount") || !strings.Contains(string(cmd), mnt) {
			continue
		}
		status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				return kb << 10
			}
		}
	}
	t.Fatalf("no ovfmount process serves %s", mnt)
	return 0
}

// tarOf writes an archive from name/contents pairs, with sizes as given
// (streamed from a generator when data is nil).
type member struct {
	name     string
	data     []byte
	typ      byte
	linkname string
	gen      func(w *bufio.Writer) // for large members, with size
	size     int64
}

func tarOf(t *testing.T, members ...member) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hostile.ova")
	f, _ := os.Create(p)
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(m.data)), Linkname: m.linkname}
		if m.typ != 0 {
			h.Typeflag, h.Size = m.typ, 0
		}
		if m.gen != nil {
			h.Size = m.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.gen != nil {
			tw.Flush()
			m.gen(bw)
		} else {
			tw.Write(m.data)
		}
	}
	tw.Close()
	bw.Flush()
	f.Close()
	return p
}

// hostileCase mounts one hostile archive: it must mount (a clear warning
// for what is wrong), keep serving its good member, and stay within a
// generous memory bound.
func hostileCase(t *testing.T, archive, warning string, rssLimit int64) {
	t.Helper()
	start := time.Now()
	m := mountArchive(t, archive)
	t.Logf("mounted in %v", time.Since(start))
	if b, err := os.ReadFile(m.path("good.txt")); err != nil || string(b) != "still served" {
		t.Errorf("the good member: %q, %v", b, err)
	}
	if warning != "" && !strings.Contains(readFile(m.logFile), warning) {
		t.Errorf("the log lacks %q:\n%s", warning, tail(readFile(m.logFile), 3000))
	}
	checkRSS(t, m.dir, rssLimit)
}

// checkRSS logs the peak RSS of the daemon serving mnt and fails the test
// above limit, a bound for the binary users run. The race detector
// multiplies memory use several times over, so a -race build gets four
// times the room.
func checkRSS(t *testing.T, mnt string, limit int64) {
	t.Helper()
	if raceDaemon(t) {
		limit *= 4
	}
	rss := daemonRSS(t, mnt)
	t.Logf("peak RSS %d MiB", rss>>20)
	if rss > limit {
		t.Errorf("peak RSS %d MiB, over %d MiB", rss>>20, limit>>20)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

var good = member{name: "good.txt", data: []byte("still served")}

func TestHostileArchives(t *testing.T) {
	const limit = 256 << 20
	t.Run("100000 tiny members", func(t *testing.T) {
		members := []member{good}
		for i := range 100_000 {
			members = append(members, member{name: fmt.Sprintf("d%03d/f%06d", i%1000, i), data: []byte{byte(i)}})
		}
		archive := tarOf(t, members...)
		hostileCase(t, archive, "", limit)
		m := mountArchive(t, archive)
		if b, err := os.ReadFile(m.path("d123/f099123")); err != nil || len(b) != 1 || b[0] != byte(99123%256) {
			t.Errorf("a tiny member: %v %v", b, err)
		}
	})
	t.Run("1 GB descriptor", func(t *testing.T) {
		archive := tarOf(t, good, member{name: "huge.ovf", size: 1 << 30, gen: func(w *bufio.Writer) {
			w.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Annotation>`)
			pad := []byte(strings.Repeat("padding ", 8192))
			written := int64(len(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Annotation>`))
			for written+int64(len(pad)) <= 1<<30 {
				w.Write(pad)
				written += int64(len(pad))
			}
			w.Write(make([]byte, 1<<30-written))
		}})
		hostileCase(t, archive, "descriptor", limit)
	})
	t.Run("deep nesting", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">`)
		for range 100_000 {
			b.WriteString("<a>")
		}
		hostileCase(t, tarOf(t, good, member{name: "deep.ovf", data: []byte(b.String())}), "descriptor", limit)
	})
	t.Run("entity bomb", func(t *testing.T) {
		bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
			`<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
			`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">` +
			`<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>` +
			`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Annotation>&lol9;</Annotation></Envelope>`
		hostileCase(t, tarOf(t, good, member{name: "bomb.ovf", data: []byte(bomb)}), "descriptor", limit)
	})
	t.Run("megabytes of manifest junk", func(t *testing.T) {
		rng := rand.New(rand.NewSource(1))
		junk := make([]byte, 20<<20)
		rng.Read(junk)
		hostileCase(t, tarOf(t, good, member{name: "app.ovf", data: []byte(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>`)},
			member{name: "app.mf", data: junk}), "manifest", limit)
	})
	t.Run("symlink loops", func(t *testing.T) {
		archive := tarOf(t, good, member{name: "a", typ: tar.TypeSymlink, linkname: "b"},
			member{name: "b", typ: tar.TypeSymlink, linkname: "a"}, member{name: "self", typ: tar.TypeSymlink, linkname: "self"})
		hostileCase(t, archive, "", limit)
		m := mountArchive(t, archive)
		for _, name := range []string{"a", "self"} {
			if _, err := os.ReadFile(m.path(name)); !errorsIs(err, syscall.ELOOP) {
				t.Errorf("%s: %v, want ELOOP from the kernel", name, err)
			}
		}
	})
	t.Run("overlapping sizes", func(t *testing.T) {
		// A member whose size claims the next member's header: the scan
		// follows the sizes, so the swallowed header is data, as for tar.
		archive := tarOf(t, good, member{name: "liar", data: make([]byte, 2048)}, member{name: "swallowed", data: []byte("x")})
		b, _ := os.ReadFile(archive)
		// liar's header is the third block (after good.txt's header and data).
		hdr := b[1024 : 1024+512]
		copy(hdr[124:136], fmt.Sprintf("%011o\x00", 2048+512+512))
		var sum int64
		for i := range hdr {
			if i >= 148 && i < 156 {
				sum += ' '
			} else {
				sum += int64(hdr[i])
			}
		}
		copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
		os.WriteFile(archive, b, 0o644)
		hostileCase(t, archive, "", limit)
		m := mountArchive(t, archive)
		if _, err := os.Stat(m.path("swallowed")); err == nil {
			t.Error("a header inside another member's data was indexed")
		}
		if st, err := os.Stat(m.path("liar")); err != nil || st.Size() != 3072 {
			t.Errorf("liar: %v %v", st, err)
		}
	})
}

func errorsIs(err error, target syscall.Errno) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == target
}
