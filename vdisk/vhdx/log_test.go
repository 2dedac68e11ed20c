package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// logDesc is one descriptor of a test log entry: a 4 KiB data sector, or
// zeroLen bytes of zeros when data is nil.
type logDesc struct {
	off     uint64
	data    []byte
	zeroLen uint64
}

// logEntryOpts are the header fields of a test log entry.
type logEntryOpts struct {
	seq, flushed, last uint64
	tail               uint32
	guid               guid
}

// buildLogEntry lays out a log entry as [MS-VHDX] 2.3.1 describes: a
// header and descriptors in the first sectors, then one data sector per
// data descriptor, with the CRC-32C over the whole entry.
func buildLogEntry(o logEntryOpts, descs []logDesc) []byte {
	data := 0
	for _, d := range descs {
		if d.data != nil {
			data++
		}
	}
	ds := int(descSectors(int64(len(descs))))
	e := make([]byte, (ds+data)*logSector)
	le := binary.LittleEndian
	copy(e, "loge")
	le.PutUint32(e[8:], uint32(len(e)))
	le.PutUint32(e[12:], o.tail)
	le.PutUint64(e[16:], o.seq)
	le.PutUint32(e[24:], uint32(len(descs)))
	copy(e[32:48], o.guid[:])
	le.PutUint64(e[48:], o.flushed)
	le.PutUint64(e[56:], o.last)
	n := 0
	for i, d := range descs {
		x := e[64+32*i:]
		le.PutUint64(x[16:], d.off)
		le.PutUint64(x[24:], o.seq)
		if d.data == nil {
			copy(x, "zero")
			le.PutUint64(x[8:], d.zeroLen)
			continue
		}
		copy(x, "desc")
		copy(x[4:8], d.data[logSector-4:])
		copy(x[8:16], d.data[:8])
		s := e[(ds+n)*logSector:]
		copy(s, "data")
		le.PutUint32(s[4:], uint32(o.seq>>32))
		copy(s[8:logSector-4], d.data[8:logSector-4])
		le.PutUint32(s[logSector-4:], uint32(o.seq))
		n++
	}
	setCRC(e)
	return e
}

// smallBase is a qemu-img VHDX of 4 MiB with 1 MiB blocks, one of them
// without data, made from the start of the shared partitioned disk.
var smallBase struct {
	once   sync.Once
	path   string
	bytes  []byte
	layout layout
	err    error
}

func smallImage(t testing.TB) []byte {
	t.Helper()
	testutil.RequireTool(t, "qemu-img")
	src := testutil.PartitionedDisk(t, 64<<20, 24<<20)
	smallBase.once.Do(func() {
		raw, err := os.ReadFile(src)
		if err != nil {
			smallBase.err = err
			return
		}
		raw = raw[:4<<20]
		clear(raw[2<<20 : 3<<20])
		p := filepath.Join(workDir, "small.raw")
		if smallBase.err = os.WriteFile(p, raw, 0o644); smallBase.err != nil {
			return
		}
		smallBase.path = testutil.Convert(t, workDir, p, "vhdx", "block_size=1M")
		if smallBase.bytes, smallBase.err = os.ReadFile(smallBase.path); smallBase.err == nil {
			smallBase.layout = layoutOf(t, smallBase.bytes)
		}
	})
	if smallBase.err != nil {
		t.Fatal(smallBase.err)
	}
	return scratchCopy(t, smallBase.bytes)
}

// scratch recycles the buffers of scratchCopy: under the race detector a
// fresh allocation of a few MiB costs about 100 ms, which dozens of small
// test cases would pay again and again.
var scratch sync.Pool

// scratchCopy returns a copy of b that lives until the test ends.
func scratchCopy(t testing.TB, b []byte) []byte {
	var c []byte
	if v, ok := scratch.Get().(*[]byte); ok && cap(*v) >= len(b) {
		c = (*v)[:len(b)]
	} else {
		c = make([]byte, len(b))
	}
	copy(c, b)
	t.Cleanup(func() { scratch.Put(&c) })
	return c
}

// smallLayout is the layout of the image smallImage returns.
func smallLayout(t testing.TB) layout {
	smallImage(t)
	return smallBase.layout
}

// layout is what the tests need to know of an image to edit it.
type layout struct {
	hdr            int64 // active header
	logOff, logLen int64
	batOff         int64
	blocks         []uint64 // BAT entries of the payload blocks
}

func layoutOf(t testing.TB, b []byte) layout {
	t.Helper()
	l := layout{hdr: activeHeaderOffset(b)}
	l.logLen = int64(binary.LittleEndian.Uint32(b[l.hdr+68:]))
	l.logOff = int64(binary.LittleEndian.Uint64(b[l.hdr+72:]))
	l.batOff, _, _ = regionOf(t, b, regionBAT)
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "layout"})
	if err != nil {
		t.Fatal(err)
	}
	for blk := range img.blocks {
		l.blocks = append(l.blocks, binary.LittleEndian.Uint64(b[l.batOff+8*img.batIndex(blk):]))
	}
	return l
}

// blockOff is the file offset of present block i.
func (l layout) blockOff(t testing.TB, i int) uint64 {
	t.Helper()
	if l.blocks[i]&batStateMask != blockFullyPresent {
		t.Fatalf("block %d is not present (entry %#x)", i, l.blocks[i])
	}
	return l.blocks[i] >> 20 << 20
}

// makeDirty sets a new log GUID in the active header and writes entries
// into the log at the given byte positions, wrapping around its end.
func makeDirty(b []byte, l layout, g guid, entries map[int64][]byte) {
	copy(b[l.hdr+48:l.hdr+64], g[:])
	fixHeader(b, l.hdr)
	for pos, e := range entries {
		for i := range e {
			b[l.logOff+(pos+int64(i))%l.logLen] = e[i]
		}
	}
}

func sector(fill byte, seed int64) []byte {
	s := make([]byte, logSector)
	rand.New(rand.NewSource(seed)).Read(s)
	for i := 0; i < len(s); i += 3 {
		s[i] = fill
	}
	return s
}

// replayOracle lets qemu replay the log of a copy (qemu-img check -r all
// opens the image read-write, which replays and clears the log) and
// returns qemu-img's raw reading of the result.
func replayOracle(t *testing.T, dirty string) rawFile {
	t.Helper()
	b, err := os.ReadFile(dirty)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "replayed.vhdx")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.QemuImg(t, "check", "-r", "all", cp)
	return oracle(t, cp)
}

var testLogGUID = mustGUID("11223344-5566-7788-99AA-BBCCDDEEFF00")

// dirtyScenario builds a dirty image whose log, once replayed, allocates a
// new block and rewrites and zeroes payload sectors of present blocks:
//
//   - "three-entries": the new block's data was written past the old end
//     of the file before the crash, as qemu and Hyper-V order it; a second
//     entry overwrites part of the first and a torn third one follows;
//   - "wrapped-entry": one entry starting in the last sector of the log;
//   - "grown-file": the new block lies past the end of the member, only
//     one sector of it comes from the log, and LastFileOffset grows the
//     file so the rest of the block reads as zeros.
func dirtyScenario(t testing.TB, mode string) (dirty []byte, touched []int64) {
	t.Helper()
	b := smallImage(t)
	l := smallLayout(t)
	absent := -1
	for i, e := range l.blocks {
		if e&batStateMask != blockFullyPresent {
			absent = i
			break
		}
	}
	if absent < 0 {
		t.Fatal("no block without data in the small image")
	}
	p0, p1 := l.blockOff(t, 0), l.blockOff(t, 1)
	// z: three sectors of block 1 holding data, for the log to zero
	z := uint64(mib)
	for k := uint64(0); k+12288 <= mib; k += logSector {
		if bytes.Count(b[p1+k:p1+k+12288], []byte{0}) < 12288 {
			z = k
			break
		}
	}
	if z == mib {
		t.Fatal("block 1 holds only zeros")
	}

	newOff := (uint64(len(b)) + mib - 1) &^ (mib - 1)
	if mode != "grown-file" {
		grown := make([]byte, newOff+mib)
		copy(grown, b)
		rand.New(rand.NewSource(9)).Read(grown[newOff:])
		b = grown
	}
	idx := int64(absent) // fewer blocks than a chunk: no bitmap entries before it
	secOff := l.batOff + (8*idx)&^(logSector-1)
	batSec := append([]byte(nil), b[secOff:secOff+logSector]...)
	binary.LittleEndian.PutUint64(batSec[8*idx-(secOff-l.batOff):], newOff|blockFullyPresent)
	size := uint64(len(b))
	o := logEntryOpts{seq: 100, flushed: size, last: size, guid: testLogGUID}
	touched = []int64{0, 8192}

	entries := map[int64][]byte{}
	switch mode {
	case "three-entries":
		entries[0] = buildLogEntry(o, []logDesc{
			{off: uint64(secOff), data: batSec},
			{off: p0 + 8192, data: sector(0xa5, 1)},
			{off: p1 + z, zeroLen: 12288},
			{off: p0, zeroLen: 12288}, // after the write above: zeros win at p0+8192
		})
		o2 := o
		o2.seq = 101
		second := buildLogEntry(o2, []logDesc{
			{off: p0 + 8192, data: sector(0x5a, 2)},
			{off: p0 + mib - logSector, data: sector(0x77, 3)},
		})
		o3 := o
		o3.seq = 102
		torn := buildLogEntry(o3, []logDesc{{off: p0, data: sector(0x33, 4)}})
		torn[len(torn)-1] ^= 0xff
		entries[int64(len(entries[0]))] = second
		entries[int64(len(entries[0])+len(second))] = torn
		touched = append(touched, int64(absent)*mib, mib+int64(z), mib-logSector)
	case "wrapped-entry":
		o.tail = uint32(l.logLen - logSector)
		entries[l.logLen-logSector] = buildLogEntry(o, []logDesc{
			{off: uint64(secOff), data: batSec},
			{off: p0 + 8192, data: sector(0xa5, 1)},
			{off: p1 + z, zeroLen: 12288},
			{off: p0, zeroLen: 4096},
		})
		touched = append(touched, int64(absent)*mib, mib+int64(z))
	case "grown-file":
		o.last = newOff + 12288
		entries[0] = buildLogEntry(o, []logDesc{
			{off: uint64(secOff), data: batSec},
			{off: newOff + 8192, data: sector(0xc3, 5)},
			{off: p0 + 8192, data: sector(0xa5, 1)},
			{off: p0, zeroLen: 4096},
		})
		touched = append(touched, int64(absent)*mib+8192)
	default:
		t.Fatalf("unknown scenario %q", mode)
	}
	makeDirty(b, l, testLogGUID, entries)
	return b, touched
}

// TestLogReplay checks the in-memory replay against qemu's own replay of a
// copy of the same dirty image.
func TestLogReplay(t *testing.T) {
	base := oracle(t, smallImagePath(t))
	for _, mode := range []string{"three-entries", "wrapped-entry", "grown-file"} {
		t.Run(mode, func(t *testing.T) {
			dirty, touched := dirtyScenario(t, mode)
			path := filepath.Join(t.TempDir(), "dirty.vhdx")
			if err := os.WriteFile(path, dirty, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := execOut("qemu-img", "info", path); err == nil {
				t.Fatalf("qemu-img opens the dirty image read-only, so the log is not seen as dirty:\n%s", out)
			}
			want := replayOracle(t, path)
			for _, off := range touched {
				if bytes.Equal(want.get(t, make([]byte, logSector), off), base.get(t, make([]byte, logSector), off)) {
					t.Fatalf("qemu's replay left the sector at virtual offset %d unchanged; the test log is not replayed", off)
				}
			}
			img := openFile(t, path)
			if w := strings.Join(img.Warnings(), "; "); !strings.Contains(w, "replayed") {
				t.Errorf("warnings %q do not mention the replay", w)
			}
			compareAll(t, img, want)
			compareRandom(t, img, want, 11, 100)
			compareBoundaries(t, img, want)
			kinds := walkRuns(t, img)
			t.Logf("replayed image matches qemu's replay; runs %v; %d overlay extents", kinds, len(img.view.ov.ext))
			if !bytes.Equal(dirty, mustRead(t, path)) {
				t.Fatal("the image file changed")
			}
		})
	}
}

// smallImagePath is the file smallImage reads.
func smallImagePath(t testing.TB) string {
	smallImage(t)
	return smallBase.path
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLogNothingToReplay covers logs whose GUID is set but which hold no
// active sequence: qemu opens those read-only without replaying, and so
// must this package, with a warning.
func TestLogNothingToReplay(t *testing.T) {
	base := oracle(t, smallImagePath(t))
	for name, edit := range map[string]func(b []byte, l layout){
		"empty log": func(b []byte, l layout) {
			clear(b[l.logOff : l.logOff+l.logLen])
			makeDirty(b, l, testLogGUID, nil)
		},
		"entries of another log GUID": func(b []byte, l layout) {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: mustGUID("99999999-5566-7788-99AA-BBCCDDEEFF00")},
				[]logDesc{{off: uint64(l.batOff), data: sector(1, 1)}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
		},
		"torn entry": func(b []byte, l layout) {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: sector(1, 1)}})
			e[5000] ^= 1
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := smallImage(t)
			edit(b, smallLayout(t))
			path := filepath.Join(t.TempDir(), "clean-log.vhdx")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if !oracle(t, path).same(t, base) {
				t.Fatal("qemu-img reads this image differently from the base")
			}
			img := openFile(t, path)
			if w := strings.Join(img.Warnings(), "; "); !strings.Contains(w, "nothing to replay") {
				t.Errorf("warnings %q", w)
			}
			compareAll(t, img, base)
		})
	}
}

// TestLogRefused covers logs that cannot be replayed exactly: each must
// be refused with the right sentinel, never read stale.
func TestLogRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, b []byte, l layout) []byte
		want error
	}{
		{"tail outside the sequence", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, tail: 64 * logSector, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: b[l.batOff : l.batOff+logSector]}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"descriptor of another sequence", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: sector(1, 1)}})
			binary.LittleEndian.PutUint64(e[64+24:], 6)
			setCRC(e)
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"data sector without signature", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: sector(1, 1)}})
			copy(e[logSector:], "DATA")
			setCRC(e)
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"data descriptors without data sectors", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: sector(1, 1)}})
			binary.LittleEndian.PutUint32(e[8:], logSector) // drop the data sector
			setCRC(e[:logSector])
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e[:logSector]})
			return b
		}, blockmap.ErrCorrupt},
		{"write into the headers", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: header1Offset, data: sector(1, 1)}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"write into the log", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: uint64(l.logOff) + 8*logSector, zeroLen: logSector}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"huge zero write", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: 1, guid: testLogGUID},
				[]logDesc{{off: 1 << 40, zeroLen: 1 << 63}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"file truncated after the log was written", func(t *testing.T, b []byte, l layout) []byte {
			e := buildLogEntry(logEntryOpts{seq: 5, flushed: uint64(len(b)) + mib, guid: testLogGUID},
				[]logDesc{{off: uint64(l.batOff), data: b[l.batOff : l.batOff+logSector]}})
			makeDirty(b, l, testLogGUID, map[int64][]byte{0: e})
			return b
		}, blockmap.ErrCorrupt},
		{"log larger than the replay limit", func(t *testing.T, b []byte, l layout) []byte {
			makeDirty(b, l, testLogGUID, nil)
			binary.LittleEndian.PutUint32(b[l.hdr+68:], 64*mib)
			fixHeader(b, l.hdr)
			return b
		}, blockmap.ErrUnsupported},
		{"log length not a multiple of 1 MiB", func(t *testing.T, b []byte, l layout) []byte {
			makeDirty(b, l, testLogGUID, nil)
			binary.LittleEndian.PutUint32(b[l.hdr+68:], mib+logSector)
			fixHeader(b, l.hdr)
			return b
		}, blockmap.ErrCorrupt},
		{"log past the end of the file", func(t *testing.T, b []byte, l layout) []byte {
			makeDirty(b, l, testLogGUID, nil)
			binary.LittleEndian.PutUint64(b[l.hdr+72:], 1<<30)
			fixHeader(b, l.hdr)
			return b
		}, blockmap.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := smallImage(t)
			b = tc.edit(t, b, smallLayout(t))
			_, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "dirty.vhdx"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "vhdx: dirty.vhdx: ") {
				t.Errorf("error %q does not name the image", err)
			}
			t.Log(err)
		})
	}
}

// TestPaint compares the overlay of random overlapping writes with a
// byte-by-byte model.
func TestPaint(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const space = 16 * logSector
	for round := range 100 {
		model := make([]byte, space)
		touched := make([]bool, space)
		for i := range model {
			model[i] = 0xee
		}
		var ws []write
		for range 1 + rng.Intn(12) {
			off := int64(rng.Intn(12)) * logSector
			w := write{off: off, end: off + logSector}
			if rng.Intn(3) == 0 {
				w.end = off + int64(1+rng.Intn(4))*logSector
			} else {
				w.data = sector(byte(rng.Intn(256)), rng.Int63())
			}
			for i := w.off; i < w.end; i++ {
				touched[i] = true
				model[i] = 0
				if w.data != nil {
					model[i] = w.data[i-w.off]
				}
			}
			ws = append(ws, w)
		}
		ov := paint(ws)
		for i := 1; i < len(ov.ext); i++ {
			if ov.ext[i].off < ov.ext[i-1].end {
				t.Fatalf("round %d: extents %d and %d overlap", round, i-1, i)
			}
		}
		member := bytes.Repeat([]byte{0xee}, space)
		v := &view{r: bytes.NewReader(member), size: space, eff: max(space, ov.end()), ov: ov}
		got := make([]byte, space)
		if _, err := v.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, model) {
			t.Fatalf("round %d: overlay differs from the model at %d", round, firstDiff(got, model))
		}
		for i := range touched {
			in := ov.search(int64(i))
			covered := in < len(ov.ext) && ov.ext[in].off <= int64(i)
			if covered != touched[i] {
				t.Fatalf("round %d: byte %d covered %v, written %v", round, i, covered, touched[i])
			}
		}
	}
}
