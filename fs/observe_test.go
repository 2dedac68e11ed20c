package fs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/appliance"
)

// recorder is an Observer that keeps what it is told: every open, the
// ranges read through each, and its release. failOpen and failRead make
// it refuse.
type recorder struct {
	mu       sync.Mutex
	opens    []*recorded
	failOpen bool
	failRead bool
}

type recorded struct {
	r        *recorder
	path     string
	who      Caller
	reads    [][2]int64
	readers  map[Caller]bool
	released int
}

func (r *recorder) Open(path string, who Caller) (Observed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOpen {
		return nil, errors.New("the log cannot be written")
	}
	o := &recorded{r: r, path: path, who: who, readers: map[Caller]bool{}}
	r.opens = append(r.opens, o)
	return o, nil
}

func (o *recorded) Read(off int64, n int, who Caller) error {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	if o.r.failRead {
		return errors.New("the log failed")
	}
	o.reads = append(o.reads, [2]int64{off, int64(n)})
	o.readers[who] = true
	return nil
}

func (o *recorded) Release() {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	o.released++
}

// covered is the bytes of path read through every open of it, merged.
func (r *recorder) covered(path string) [][2]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all [][2]int64
	for _, o := range r.opens {
		if o.path == path {
			all = append(all, o.reads...)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i][0] < all[j][0] })
	var out [][2]int64
	for _, x := range all {
		if k := len(out); k > 0 && x[0] <= out[k-1][0]+out[k-1][1] {
			out[k-1][1] = max(out[k-1][1], x[0]+x[1]-out[k-1][0])
			continue
		}
		out = append(out, x)
	}
	return out
}

// TestObserverSeesEveryRead: on a mount with an Observer, opens of the
// plan's files (read spliced and copied, with and without direct I/O) and
// of guest files are seen with the reader's pid and uid, every byte read
// was observed before it was served, and each open is released once. A
// second open of a file read before reaches the daemon again (the cache is
// dropped at open), and small guest files are not stored ahead.
func TestObserverSeesEveryRead(t *testing.T) {
	big := randomBytes(3<<20+5, 7)
	p, _ := testPackage(t, map[string][]byte{"disk1.vmdk": big, "appliance.ovf": []byte("<Envelope/>")})
	fsys := &filesFS{sizes: []int{100, 5000, 70000}}
	entries := append(p.Entries, &appliance.Entry{Path: "vol", Type: appliance.Dir, Perm: 0o755,
		Guest: &appliance.GuestTree{Volume: "vol", FS: fsys, Status: func() string { return "off" }}})
	for _, direct := range []bool{false, true} {
		rec := &recorder{}
		mnt := testMountWith(t, entries, Options{Observer: rec, DirectIO: direct})
		// FUSE gives the calling thread's id: one of this process's.
		mine := func(c Caller) bool {
			_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", c.Pid))
			return err == nil && c.Uid == uint32(os.Getuid()) && c.Gid == uint32(os.Getgid())
		}

		for range 2 {
			got, err := os.ReadFile(filepath.Join(mnt, "disk1.vmdk"))
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("direct %v: disk1.vmdk: %d bytes, %v", direct, len(got), err)
			}
		}
		f, err := os.Open(filepath.Join(mnt, "appliance.ovf"))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := f.ReadAt(buf, 3); err != nil || string(buf) != "velop" {
			t.Fatalf("appliance.ovf: %q, %v", buf, err)
		}
		f.Close()
		for i := range fsys.sizes {
			got, err := os.ReadFile(filepath.Join(mnt, "vol", fsys.name(i)))
			if err != nil || !bytes.Equal(got, fsys.content(i)) {
				t.Fatalf("direct %v: guest file %d: %v", direct, i, err)
			}
		}
		// The kernel releases a file after close(2) returns.
		released := waitFor(func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, o := range rec.opens {
				if o.released != 1 {
					return false
				}
			}
			return true
		})
		if !released {
			t.Errorf("direct %v: not every open was released once", direct)
		}

		rec.mu.Lock()
		opens := map[string]int{}
		for _, o := range rec.opens {
			opens[o.path]++
			if !mine(o.who) {
				t.Errorf("direct %v: %s opened by %+v, not by a thread of this process", direct, o.path, o.who)
			}
			for who := range o.readers {
				if !mine(who) {
					t.Errorf("direct %v: %s read for %+v, not a thread of this process", direct, o.path, who)
				}
			}
		}
		rec.mu.Unlock()
		if opens["disk1.vmdk"] != 2 || opens["appliance.ovf"] != 1 || opens["vol/f000"] != 1 || opens["vol/f002"] != 1 {
			t.Errorf("direct %v: opens %v", direct, opens)
		}
		// Each of the two opens of disk1.vmdk read it whole from the daemon.
		var whole int
		rec.mu.Lock()
		for _, o := range rec.opens {
			if o.path == "disk1.vmdk" {
				var n int64
				for _, r := range o.reads {
					n += r[1]
				}
				if n >= int64(len(big)) {
					whole++
				}
			}
		}
		rec.mu.Unlock()
		if whole != 2 {
			t.Errorf("direct %v: %d of the 2 opens of disk1.vmdk were served whole by the daemon", direct, whole)
		}
		for path, size := range map[string]int{"disk1.vmdk": len(big), "vol/f000": 100, "vol/f001": 5000, "vol/f002": 70000} {
			if got := rec.covered(path); len(got) != 1 || got[0] != [2]int64{0, int64(size)} {
				t.Errorf("direct %v: %s: observed %v, want [[0 %d]]", direct, path, got, size)
			}
		}
		if got := rec.covered("appliance.ovf"); len(got) != 1 || got[0][0] > 3 || got[0][0]+got[0][1] < 8 {
			t.Errorf("direct %v: appliance.ovf: observed %v, want 3+5 covered", direct, got)
		}
		if direct {
			if got := rec.covered("appliance.ovf"); got[0] != [2]int64{3, 5} {
				t.Errorf("direct I/O: appliance.ovf observed %v, want exactly [[3 5]]", got)
			}
		}
	}
}

func waitFor(cond func() bool) bool {
	for range 500 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// TestObserverRefusalIsEIO: an Observer that refuses opens or reads (its
// log failed) fails them with EIO, and nothing is served.
func TestObserverRefusalIsEIO(t *testing.T) {
	p, _ := testPackage(t, map[string][]byte{"disk1.vmdk": randomBytes(1<<20, 3), "appliance.ovf": []byte("<Envelope/>")})
	fsys := &filesFS{sizes: []int{100}}
	entries := append(p.Entries, &appliance.Entry{Path: "vol", Type: appliance.Dir, Perm: 0o755,
		Guest: &appliance.GuestTree{Volume: "vol", FS: fsys, Status: func() string { return "off" }}})
	rec := &recorder{}
	mnt := testMountWith(t, entries, Options{Observer: rec})
	for _, name := range []string{"disk1.vmdk", "appliance.ovf", "vol/f000"} {
		rec.mu.Lock()
		rec.failRead = true
		rec.mu.Unlock()
		f, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 128<<10)
		if n, err := f.Read(buf); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: a refused read gave %d bytes, %v; want EIO", name, n, err)
		}
		f.Close()
		rec.mu.Lock()
		rec.failRead, rec.failOpen = false, true
		rec.mu.Unlock()
		if _, err := os.Open(filepath.Join(mnt, name)); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: a refused open gave %v; want EIO", name, err)
		}
		rec.mu.Lock()
		rec.failOpen = false
		rec.mu.Unlock()
	}
}
