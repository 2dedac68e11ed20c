package overlay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// journalFixture makes a folder whose disk "d" (32 blocks) had four
// commits and was then dropped without Close, so its journal holds them
// all. It returns the folder, the base, the view after each commit
// (states[0] is the base alone), and the journal's length after each.
//
// Only the last append can be torn by a crash: the space an earlier
// commit released is reused once the next one is durable, so a journal
// cut before its last commit may name reused space (it recovers to that
// commit, but blocks may read later data; doc.go says so).
func journalFixture(t *testing.T) (string, *patternBase, [][]byte, []int64) {
	ctx := context.Background()
	dir := t.TempDir()
	base := &patternBase{size: 32 * BlockSize}
	s := openTest(t, dir, "k")
	d := openDiskT(t, s, "d", base)
	states := [][]byte{base.bytes()}
	ends := []int64{headerSize}
	for c := range uint64(4) {
		for b := c; b < 32; b += 3 {
			d.WriteAt(ctx, versionBlock(b, c+1), int64(b)*BlockSize)
		}
		d.Discard(ctx, int64(c*5)*BlockSize, BlockSize)
		d.WriteAt(ctx, []byte("partial"), int64(c*7)*BlockSize+100)
		if c < 3 {
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
		} else {
			// The last commit stops as a crash right after its append
			// would: the space it releases is not yet punched or reused.
			d.mu.Lock()
			es := d.pending
			d.mu.Unlock()
			if err := d.durable(es, nil, false, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		v := make([]byte, base.size)
		d.ReadAt(ctx, v, 0)
		states = append(states, v)
		ends = append(ends, d.jnlEnd)
	}
	d.data.Close()
	d.jnl.Close()
	s.lock.Close()
	return dir, base, states, ends
}

// copyDir copies the overlay folder so that each damaged variant starts
// from the same files.
func copyDir(t *testing.T, from string) string {
	to := t.TempDir()
	es, _ := os.ReadDir(from)
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
	}
	return to
}

// openDamaged opens a copy of dir whose journal is j: it returns the view,
// or the error opening it.
func openDamaged(t *testing.T, dir string, base *patternBase, j []byte) ([]byte, error) {
	c := copyDir(t, dir)
	os.WriteFile(filepath.Join(c, "d"+journalExt), j, 0o600)
	s, err := Open(c, Identity{Key: "k"})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	d, err := s.Disk("d", base.size, base)
	if err != nil {
		return nil, err
	}
	v := make([]byte, base.size)
	if err := d.ReadAt(context.Background(), v, 0); err != nil {
		t.Fatal(err)
	}
	return v, nil
}

func oneOf(v []byte, states [][]byte) int {
	for i, s := range states {
		if bytes.Equal(v, s) {
			return i
		}
	}
	return -1
}

// TestTruncatedJournal cuts the journal at every length: opening fails on
// a header too short, and otherwise recovers to the last whole commit;
// cut within the last append (a torn tail), the view is the state before
// that commit or after it.
func TestTruncatedJournal(t *testing.T) {
	dir, base, states, ends := journalFixture(t)
	tornFrom := ends[len(ends)-2]
	j, _ := os.ReadFile(filepath.Join(dir, "d"+journalExt))
	// Every third length: each open syncs, and the machine is shared.
	step := 3
	if testing.Short() {
		step = 17
	}
	last := -1
	for n := 0; n < len(j)+step; n += step {
		n := min(n, len(j))
		v, err := openDamaged(t, dir, base, j[:n])
		if n < headerSize {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("journal cut to %d bytes: %v, want ErrCorrupt", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("journal cut to %d bytes: %v", n, err)
		}
		if int64(n) < tornFrom {
			continue
		}
		i := oneOf(v, states)
		if i < len(states)-2 || i < last {
			t.Fatalf("journal cut to %d bytes: the view is state %d, after state %d", n, i, last)
		}
		last = i
	}
	if last != len(states)-1 {
		t.Errorf("the whole journal gave state %d of %d", last, len(states)-1)
	}
}

// TestFlippedJournal flips each byte of the journal: the open fails with
// ErrCorrupt or recovers to a commit; within the last append, to the
// state before it or after it.
func TestFlippedJournal(t *testing.T) {
	dir, base, states, ends := journalFixture(t)
	tornFrom := ends[len(ends)-2]
	j, _ := os.ReadFile(filepath.Join(dir, "d"+journalExt))
	step := 3
	if testing.Short() {
		step = 13
	}
	for i := 0; i < len(j); i += step {
		k := bytes.Clone(j)
		k[i] ^= 0x41
		v, err := openDamaged(t, dir, base, k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d flipped: %v, want ErrCorrupt", i, err)
			}
			continue
		}
		if int64(i) >= tornFrom && oneOf(v, states) < len(states)-2 {
			t.Fatalf("byte %d flipped: the view is state %d", i, oneOf(v, states))
		}
	}
}

// TestCraftedJournal has records whose checksums are right but whose
// contents are impossible: each is refused with ErrCorrupt, or, for a
// length past the file, ends the journal there.
func TestCraftedJournal(t *testing.T) {
	dir, base, _, _ := journalFixture(t)
	h := header{blockSize: BlockSize, diskSize: base.size, created: time.Now()}.encode()
	now := time.Now()
	cases := []struct {
		name    string
		j       []byte
		corrupt bool
	}{
		{"block past the disk", appendEntries(bytes.Clone(h), []entry{{32, 0, 0}}, 1, now), true},
		{"slot past the data file", appendEntries(bytes.Clone(h), []entry{{0, 1 << 40, 0}}, 1, now), true},
		{"two blocks share a slot", appendEntries(bytes.Clone(h), []entry{{0, 1, 0}, {1, 1, 0}}, 1, now), true},
		{"zero range past the disk", appendEntries(bytes.Clone(h), []entry{{30, zeroSlot, 3}}, 1, now), true},
		{"zero range of no blocks", appendCRC(append(appendRecHead(bytes.Clone(h), recZero, 16), 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), headerSize), true},
		{"zero range that wraps", appendEntries(bytes.Clone(h), []entry{{3, zeroSlot, 1<<64 - 1}}, 1, now), true},
		{"unknown kind", func() []byte {
			b := appendRecHead(bytes.Clone(h), 9, 0)
			return appendCRC(b, headerSize)
		}(), true},
		{"commit of the wrong size", appendCRC(append(appendRecHead(bytes.Clone(h), recCommit, 4), 1, 2, 3, 4), headerSize), true},
		{"map of a partial entry", appendCRC(append(appendRecHead(bytes.Clone(h), recMap, 3), 1, 2, 3), headerSize), true},
		{"huge length", append(appendRecHead(bytes.Clone(h), recMap, 0xffffffff), make([]byte, 64)...), false},
		{"disk of another size", appendEntries(header{blockSize: BlockSize, diskSize: 1 << 30}.encode(), nil, 1, now), true},
		{"another block size", header{blockSize: 512, diskSize: base.size}.encode(), true},
	}
	for _, c := range cases {
		_, err := openDamaged(t, dir, base, c.j)
		if c.corrupt != errors.Is(err, ErrCorrupt) || (!c.corrupt && err != nil) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// appendCRC ends the record starting at from with its checksum.
func appendCRC(b []byte, from int) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[from:], castagnoli))
}

// TestDamagedRecordAndDataFile covers the other files: a damaged identity
// record, and a data file shorter than the map says.
func TestDamagedRecordAndDataFile(t *testing.T) {
	dir, base, _, _ := journalFixture(t)
	c := copyDir(t, dir)
	os.WriteFile(filepath.Join(c, recordName), []byte(`{"format":"ovfmount-overlay","version":1,"key":`), 0o600)
	if _, err := Open(c, Identity{Key: "k"}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a damaged record: %v, want ErrCorrupt", err)
	}
	c = copyDir(t, dir)
	os.Truncate(filepath.Join(c, "d"+dataExt), BlockSize)
	s, err := Open(c, Identity{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Disk("d", base.size, base); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a truncated data file: %v, want ErrCorrupt", err)
	}
}

// FuzzReplay feeds the journal parser and the map loader arbitrary bytes:
// they must not panic, and what they accept must respect the limits.
func FuzzReplay(f *testing.F) {
	h := header{blockSize: BlockSize, diskSize: 64 * BlockSize, created: time.Unix(1, 0)}.encode()
	f.Add(h)
	f.Add(appendEntries(bytes.Clone(h), []entry{{1, 0, 0}, {2, zeroSlot, 0}, {3, 5, 0}}, 1, time.Unix(2, 0)))
	f.Add(appendEntries(bytes.Clone(h), []entry{{1, 0, 0}, {0, zeroSlot, 64}, {3, 5, 0}}, 1, time.Unix(2, 0)))
	f.Add(appendEntries(appendEntries(bytes.Clone(h), []entry{{1, 0, 0}}, 1, time.Unix(2, 0)), []entry{{1, 1, 0}, {63, 0, 0}}, 2, time.Unix(3, 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := limits{blocks: 64, slots: 16}
		tab := newTable(lim.blocks)
		rp, err := replay(bytes.NewReader(b), int64(len(b)), lim, func(e entry) {
			if e.block >= lim.blocks || (e.slot != zeroSlot && e.slot >= lim.slots) || e.n > lim.blocks-e.block {
				t.Fatalf("entry %+v past the limits", e)
			}
			tab.apply(e, func(uint64) {})
		})
		if err != nil {
			return
		}
		if rp.end > int64(len(b)) || rp.end < headerSize {
			t.Fatalf("end %d of %d bytes", rp.end, len(b))
		}
		end, free, err := loadMap(tab)
		if err != nil {
			return
		}
		if end > lim.slots || uint64(tab.data) > end {
			t.Fatalf("end %d, %d data blocks", end, tab.data)
		}
		for _, r := range free {
			if r.start+r.n > end {
				t.Fatalf("free run %+v past end %d", r, end)
			}
		}
	})
}

// TestFIFOInFolder puts FIFOs where the files should be: refused, not
// waited on.
func TestFIFOInFolder(t *testing.T) {
	dir, base, _, _ := journalFixture(t)
	for _, name := range []string{"d" + journalExt, "d" + dataExt} {
		c := copyDir(t, dir)
		os.Remove(filepath.Join(c, name))
		if err := syscall.Mkfifo(filepath.Join(c, name), 0o600); err != nil {
			t.Skip(err)
		}
		s, err := Open(c, Identity{Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Disk("d", base.size, base); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s a FIFO: %v, want ErrCorrupt", name, err)
		}
		if name == "d"+journalExt {
			st, err := ReadStatus(c)
			if err != nil || len(st.Disks) != 1 || !strings.Contains(st.Disks[0].Error, "not a regular file") {
				t.Errorf("status with %s a FIFO: %+v, %v", name, st, err)
			}
		}
		s.Close()
	}
	c := copyDir(t, dir)
	os.Remove(filepath.Join(c, recordName))
	syscall.Mkfifo(filepath.Join(c, recordName), 0o600)
	if _, err := Open(c, Identity{Key: "k"}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("the record a FIFO: %v, want ErrCorrupt", err)
	}
}
