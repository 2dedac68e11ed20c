package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
	"github.com/ovfmount/ovfmount/vdisk/codec"
)

// layout reads and patches the structures of a valid image in memory.
type layout struct {
	t testing.TB
	b []byte
}

var be = binary.BigEndian

func (l *layout) u32(off int64) uint32      { return be.Uint32(l.b[off:]) }
func (l *layout) u64(off int64) uint64      { return be.Uint64(l.b[off:]) }
func (l *layout) put32(off int64, v uint32) { be.PutUint32(l.b[off:], v) }
func (l *layout) put64(off int64, v uint64) { be.PutUint64(l.b[off:], v) }
func (l *layout) cs() int64                 { return 1 << l.u32(20) }
func (l *layout) l1Off() int64              { return int64(l.u64(40)) }
func (l *layout) refOff() int64             { return int64(l.u64(48)) }
func (l *layout) l2Off() int64              { return int64(l.u64(l.l1Off()) & offsetMask) }
func (l *layout) extL2() bool               { return l.u32(4) == 3 && l.u64(72)&incExtL2 != 0 }

// end is the first cluster boundary at or past the end of the file.
func (l *layout) end() int64 { return (int64(len(l.b)) + l.cs() - 1) &^ (l.cs() - 1) }

// entry finds the first entry of the first L2 table for which pred holds,
// and returns its file offset and the virtual offset of its cluster.
func (l *layout) entry(pred func(e, bitmap uint64) bool) (int64, int64) {
	step := int64(8)
	if l.extL2() {
		step = 16
	}
	t := l.l2Off()
	for i := int64(0); i < l.cs()/step; i++ {
		off := t + i*step
		var bm uint64
		if step == 16 {
			bm = l.u64(off + 8)
		}
		if pred(l.u64(off), bm) {
			return off, i * l.cs()
		}
	}
	l.t.Fatal("no L2 entry matches")
	return 0, 0
}

func isStored(e, _ uint64) bool     { return e&flagCompressed == 0 && e&offsetMask != 0 }
func isCompressed(e, _ uint64) bool { return e&flagCompressed != 0 }
func isHole(e, bm uint64) bool      { return e == 0 && bm == 0 }

// lastStored finds the stored cluster with the highest host offset.
func (l *layout) lastStored() (entOff, host, virt int64) {
	t := l.l2Off()
	for i := int64(0); i < l.cs()/8; i++ {
		e := l.u64(t + i*8)
		if isStored(e, 0) && int64(e&offsetMask) > host {
			entOff, host, virt = t+i*8, int64(e&offsetMask), i*l.cs()
		}
	}
	return entOff, host, virt
}

// record decodes a compressed descriptor into the record's offset and the
// number of its 512-byte sectors.
func (l *layout) record(entOff int64) (off, sectors int64) {
	shift := 62 - (l.u32(20) - 8)
	e := l.u64(entOff)
	return int64(e & (1<<shift - 1)), int64((e&descMask)>>shift) + 1
}

// setRecord writes data as the compressed record of entry entOff and
// updates the sector count to cover it.
func (l *layout) setRecord(entOff int64, data []byte) {
	off, _ := l.record(entOff)
	shift := 62 - (l.u32(20) - 8)
	sectors := (off&511 + int64(len(data)) + 511) / 512
	if need := off + int64(len(data)); need > int64(len(l.b)) {
		l.b = append(l.b, make([]byte, need-int64(len(l.b)))...)
	}
	copy(l.b[off:], data)
	l.put64(entOff, flagCompressed|uint64(sectors-1)<<shift|uint64(off))
}

// featureTable is the offset of the feature-name table extension's header.
func (l *layout) featureTable() int64 {
	for off := int64(l.u32(100)); off+8 <= l.cs(); {
		typ, ln := l.u32(off), int64(l.u32(off+4))
		if typ == extFeatureNames {
			return off
		}
		if typ == extEnd {
			break
		}
		off += 8 + (ln+7)&^7
	}
	l.t.Fatal("no feature-name table")
	return 0
}

func deflateOf(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

func zstdOf(t testing.TB, data []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// setFCS rewrites the content size a zstd frame header declares, keeping
// the width of the field.
func setFCS(t testing.TB, frame []byte, v uint64) {
	fhd := frame[4]
	pos := 5
	if fhd&0x20 == 0 {
		pos++ // window descriptor
	}
	pos += []int{0, 1, 2, 4}[fhd&3]
	switch fhd >> 6 {
	case 0:
		if fhd&0x20 == 0 {
			t.Fatal("frame has no content size")
		}
		frame[pos] = byte(v)
	case 1:
		binary.LittleEndian.PutUint16(frame[pos:], uint16(v-256))
	case 2:
		binary.LittleEndian.PutUint32(frame[pos:], uint32(v))
	case 3:
		binary.LittleEndian.PutUint64(frame[pos:], v)
	}
}

// pattern is compressible, non-zero content for hand-made records.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

type corruptCase struct {
	name string
	base string
	// mutate damages the image and, for damage that Open cannot see,
	// returns a virtual offset whose read must fail (else -1).
	mutate    func(l *layout) int64
	want      error
	contains  string
	qemuFails bool // qemu-img convert must refuse the damaged image too
}

func atOpen(f func(l *layout)) func(l *layout) int64 {
	return func(l *layout) int64 { f(l); return -1 }
}

var corruptCases = []corruptCase{
	// Header.
	{"bad magic", "std", atOpen(func(l *layout) { l.put32(0, 0x51464900) }), blockmap.ErrCorrupt, "bad magic", true},
	{"version 1", "std", atOpen(func(l *layout) { l.put32(4, 1) }), blockmap.ErrUnsupported, "old qcow", true},
	{"version 4", "std", atOpen(func(l *layout) { l.put32(4, 4) }), blockmap.ErrUnsupported, "version 4", true},
	{"cluster_bits 8", "std", atOpen(func(l *layout) { l.put32(20, 8) }), blockmap.ErrCorrupt, "cluster_bits 8", true},
	{"cluster_bits 22", "std", atOpen(func(l *layout) { l.put32(20, 22) }), blockmap.ErrUnsupported, "cluster_bits 22", true},
	{"virtual size 2^63", "std", atOpen(func(l *layout) { l.put64(24, 1<<63) }), blockmap.ErrCorrupt, "virtual size", true},
	{"header_length 100", "std", atOpen(func(l *layout) { l.put32(100, 100) }), blockmap.ErrCorrupt, "header_length 100", true},
	{"header_length past the cluster", "std", atOpen(func(l *layout) { l.put32(100, uint32(l.cs())+8) }), blockmap.ErrCorrupt, "exceeds the cluster size", true},
	{"truncated header", "std", atOpen(func(l *layout) { l.b = l.b[:50] }), blockmap.ErrCorrupt, "header truncated", true},
	{"refcount_order 7", "std", atOpen(func(l *layout) { l.put32(96, 7) }), blockmap.ErrCorrupt, "refcount_order", true},
	{"refcount table unaligned", "std", atOpen(func(l *layout) { l.put64(48, uint64(l.refOff())+8) }), blockmap.ErrCorrupt, "refcount table offset", true},
	{"refcount table too large", "std", atOpen(func(l *layout) { l.put32(56, 1<<20) }), blockmap.ErrCorrupt, "refcount table of", true},
	{"no refcount table", "std", atOpen(func(l *layout) { l.put32(56, 0) }), blockmap.ErrCorrupt, "no refcount table", true},
	{"too many snapshots", "std", atOpen(func(l *layout) { l.put32(60, 70000) }), blockmap.ErrCorrupt, "snapshots", true},
	{"extension past the area", "std", atOpen(func(l *layout) { l.put32(l.featureTable()+4, 0xffff0000) }), blockmap.ErrCorrupt, "header extension", true},
	{"crypto extension without LUKS", "std", atOpen(func(l *layout) { l.put32(l.featureTable(), extCrypto) }), blockmap.ErrCorrupt, "not LUKS", true},
	{"backing name too long", "std", atOpen(func(l *layout) { l.put64(8, 512); l.put32(16, 2000) }), blockmap.ErrCorrupt, "too long", true},
	{"backing name outside the first cluster", "std", atOpen(func(l *layout) { l.put64(8, uint64(l.cs())+8); l.put32(16, 4) }), blockmap.ErrCorrupt, "outside the first cluster", true},

	// Features.
	{"unknown incompatible bit", "std", atOpen(func(l *layout) { l.put64(72, l.u64(72)|1<<5) }), blockmap.ErrUnsupported, "bit 5", true},
	{"unknown bit named by the feature table", "std", atOpen(func(l *layout) {
		e := l.featureTable() + 8 // first entry: incompatible bit 0, "dirty bit"
		l.b[e+1] = 5
		copy(l.b[e+2:e+48], append([]byte("frobnication"), make([]byte, 34)...))
		l.put64(72, l.u64(72)|1<<5)
	}), blockmap.ErrUnsupported, `bit 5 "frobnication"`, true},
	{"AES encryption", "std", atOpen(func(l *layout) { l.put32(32, 1) }), blockmap.ErrUnsupported, "AES", true},
	// What qemu-img writes for LUKS (making one needs a slow key
	// derivation that fails under load): method 2 and a crypto header
	// extension.
	{"LUKS encryption", "std", atOpen(func(l *layout) { l.put32(32, 2); l.put32(l.featureTable(), extCrypto) }), blockmap.ErrUnsupported, "encrypted image (LUKS)", true},
	{"external data file bit without a name", "std", atOpen(func(l *layout) { l.put64(72, l.u64(72)|incDataFile) }), blockmap.ErrUnsupported, "external data file", true},
	{"compression type 2", "std", atOpen(func(l *layout) { l.b[104] = 2; l.put64(72, l.u64(72)|incCompression) }), blockmap.ErrUnsupported, "compression type 2", true},
	{"zstd without the feature bit", "zstd", atOpen(func(l *layout) { l.put64(72, l.u64(72)&^incCompression) }), blockmap.ErrCorrupt, "without the compression type feature bit", true},
	{"zlib with the feature bit", "std", atOpen(func(l *layout) { l.put64(72, l.u64(72)|incCompression) }), blockmap.ErrCorrupt, "feature bit set for zlib", true},
	{"extended L2 with 8 KiB clusters", "ext", atOpen(func(l *layout) { l.put32(20, 13) }), blockmap.ErrUnsupported, "extended L2 entries with 8192-byte clusters", true},

	// L1 table.
	{"huge l1_size", "std", atOpen(func(l *layout) { l.put32(36, 0x7fffffff) }), blockmap.ErrCorrupt, "exceeds qemu's 32 MiB limit", true},
	{"32 MiB L1 past the end", "std", atOpen(func(l *layout) { l.put32(36, 4<<20) }), blockmap.ErrCorrupt, "runs past the end", false},
	{"L1 too small", "std", atOpen(func(l *layout) { l.put32(36, 0) }), blockmap.ErrCorrupt, "less than the virtual size", true},
	{"L1 unaligned", "std", atOpen(func(l *layout) { l.put64(40, uint64(l.l1Off())+8) }), blockmap.ErrCorrupt, "not aligned", true},
	{"L1 past the end", "std", atOpen(func(l *layout) { l.put64(40, uint64(l.end())+uint64(l.cs())) }), blockmap.ErrCorrupt, "runs past the end", false},
	{"L1 on the header", "std", atOpen(func(l *layout) { l.put64(40, 0) }), blockmap.ErrCorrupt, "overlaps the header", false},
	{"truncated in the L1 table", "std", atOpen(func(l *layout) { l.b = l.b[:l.l1Off()+4] }), blockmap.ErrCorrupt, "runs past the end", false},

	// L1 entries.
	{"L1 entry past the end", "std", func(l *layout) int64 {
		l.put64(l.l1Off(), 1<<63|uint64(l.end()+16*l.cs()))
		return 0
	}, blockmap.ErrCorrupt, "L1 entry 0: L2 table at", false},
	{"L1 entry unaligned", "std", func(l *layout) int64 { l.put64(l.l1Off(), uint64(l.l2Off()+512)); return 0 }, blockmap.ErrCorrupt, "unaligned", true},
	{"L2 table is the L1 table", "std", func(l *layout) int64 { l.put64(l.l1Off(), uint64(l.l1Off())); return 0 }, blockmap.ErrCorrupt, "overlaps the L1 table", false},
	{"L2 table is the refcount table", "std", func(l *layout) int64 { l.put64(l.l1Off(), uint64(l.refOff())); return 0 }, blockmap.ErrCorrupt, "overlaps the refcount table", false},
	{"truncated before the L2 table", "std", func(l *layout) int64 { l.b = l.b[:l.l2Off()]; return 0 }, blockmap.ErrCorrupt, "L2 table at 262144 is past the end", false},
	// The rest of a table cut short reads as unallocated, as in qemu,
	// but its first entry now points past the end.
	{"truncated in the L2 table", "std", func(l *layout) int64 { l.b = l.b[:l.l2Off()+100]; return 0 }, blockmap.ErrCorrupt, "L2 entry 0 of the table at 262144", false},

	// L2 entries.
	{"L2 entry past the end", "std", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e, 1<<63|uint64(l.end()+4*l.cs()))
		return v
	}, blockmap.ErrCorrupt, "past the end of the file", false},
	{"L2 entry unaligned", "std", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e, l.u64(e)+512)
		return v
	}, blockmap.ErrCorrupt, "unaligned", true},
	{"data cluster is its L2 table", "std", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e, 1<<63|uint64(l.l2Off()))
		return v
	}, blockmap.ErrCorrupt, "L2 table itself", false},
	{"data cluster is the L1 table", "std", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e, 1<<63|uint64(l.l1Off()))
		return v
	}, blockmap.ErrCorrupt, "overlaps the L1 table", false},
	{"truncated in the data", "std", func(l *layout) int64 {
		_, host, v := l.lastStored()
		l.b = l.b[:host]
		return v
	}, blockmap.ErrCorrupt, "past the end of the file", false},
	{"zero flag in a v2 image", "v2", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e, l.u64(e)|flagZero)
		return v
	}, blockmap.ErrCorrupt, "zero flag set in a version 2 image", true},
	{"subcluster allocated and zero", "ext", func(l *layout) int64 {
		e, v := l.entry(isStored)
		l.put64(e+8, 1<<32|1)
		return v
	}, blockmap.ErrCorrupt, "both allocated and zero", true},
	{"unallocated cluster with allocated subclusters", "ext", func(l *layout) int64 {
		e, v := l.entry(isHole)
		l.put64(e+8, 1<<3)
		return v
	}, blockmap.ErrCorrupt, "unallocated cluster has allocated subclusters", true},

	// Compressed clusters.
	{"compressed record in the header", "zlib", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		l.put64(e, flagCompressed|100)
		return v
	}, blockmap.ErrCorrupt, "lies in the header cluster", false},
	{"compressed record past the end", "zlib", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		l.put64(e, flagCompressed|uint64(len(l.b)+1000))
		return v
	}, blockmap.ErrCorrupt, "past the end of the file", false},
	{"compressed record truncated", "zlib", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		off, _ := l.record(e)
		l.b = l.b[:off+100]
		return v
	}, blockmap.ErrCorrupt, "decoded", false},
	{"compressed cluster inflates short", "zlib", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		l.setRecord(e, deflateOf(l.t, pattern(1000)))
		return v
	}, codec.ErrShort, "decoded 1000 of 65536 bytes", true},
	{"compressed garbage", "zlib", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		off, n := l.record(e)
		copy(l.b[off:], bytes.Repeat([]byte{0xff}, int(n*512-off&511)))
		return v
	}, blockmap.ErrCorrupt, "decoded 0 of 65536", true},
	{"zstd content size below the content", "zstd", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		frame := zstdOf(l.t, pattern(1<<16))
		setFCS(l.t, frame, 1<<15)
		l.setRecord(e, frame)
		return v
	}, blockmap.ErrCorrupt, "decoded", true},
	{"zstd content size above the cluster", "zstd", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		frame := zstdOf(l.t, pattern(1<<16))
		setFCS(l.t, frame, 1<<16+100)
		l.setRecord(e, frame)
		return v
	}, blockmap.ErrCorrupt, "declares 65636 bytes", true},
	{"zstd bomb", "zstd", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		l.setRecord(e, zstdOf(l.t, make([]byte, 16<<20)))
		return v
	}, blockmap.ErrCorrupt, "declares 16777216 bytes", true},
	{"zstd frame short", "zstd", func(l *layout) int64 {
		e, v := l.entry(isCompressed)
		l.setRecord(e, zstdOf(l.t, pattern(4000)))
		return v
	}, blockmap.ErrCorrupt, "decoded 4000 of 65536 bytes", true},
}

var (
	basesMu    sync.Mutex
	baseImages map[string][]byte
)

// corruptBases returns the images the corrupt cases start from, made once
// per test process: 2 MiB of the partitioned disk's files followed by 2
// MiB of zeros, so each has data clusters and unallocated ones in its
// first L2 table. Callers must not modify them.
func corruptBases(t *testing.T) map[string][]byte {
	testutil.RequireTool(t, "qemu-img")
	basesMu.Lock()
	defer basesMu.Unlock()
	if baseImages != nil {
		return baseImages
	}
	dir := t.TempDir()
	disk := testutil.PartitionedDisk(t, diskSize, diskContent)
	raw := filepath.Join(dir, "base.raw")
	copyRange(t, disk, raw, 9<<20, 2<<20)
	if err := os.Truncate(raw, 4<<20); err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for name, args := range map[string][]string{
		"std":  {"-o", "compat=1.1"},
		"v2":   {"-o", "compat=0.10"},
		"zlib": {"-c"},
		"zstd": {"-c", "-o", "compression_type=zstd"},
		"ext":  {"-o", "extended_l2=on,cluster_size=64k"},
	} {
		b, err := os.ReadFile(qemuImage(t, dir, raw, name, args...))
		if err != nil {
			t.Fatal(err)
		}
		m[name] = b
	}
	baseImages = m
	return m
}

// TestCorrupt damages valid images one way at a time. Each must fail with
// the right sentinel and message, at Open or when the damaged cluster is
// read, without panicking or allocating more than a few clusters' worth.
// Where qemu refuses the same damage, qemu-img convert must fail too.
func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	bases := corruptBases(t)
	const allocLimit = 16 << 20
	var maxAlloc uint64
	for i, c := range corruptCases {
		t.Run(c.name, func(t *testing.T) {
			l := &layout{t: t, b: bytes.Clone(bases[c.base])}
			at := c.mutate(l)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := openAndRead(l.b, at)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.contains) {
				t.Fatalf("got %v; want %v containing %q", err, c.want, c.contains)
			}
			if !errors.Is(err, blockmap.ErrCorrupt) && !errors.Is(err, blockmap.ErrUnsupported) {
				t.Fatalf("%v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			if at >= 0 && !strings.Contains(err.Error(), "cluster") && !strings.Contains(err.Error(), "L1 entry") {
				t.Errorf("a read error should name the entry or cluster: %v", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			maxAlloc = max(maxAlloc, alloc)
			if alloc > allocLimit {
				t.Errorf("allocated %d bytes for a %d-byte image", alloc, len(l.b))
			}
			if c.qemuFails {
				path := filepath.Join(dir, "case.qcow2")
				if err := os.WriteFile(path, l.b, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, filepath.Join(dir, "case.raw")).CombinedOutput()
				if err == nil {
					t.Errorf("qemu-img convert accepts the image (case %d)", i)
				} else {
					t.Logf("qemu-img: %s", bytes.TrimSpace(out))
				}
			}
			t.Logf("%v (allocated %d bytes)", err, alloc)
		})
	}
	t.Logf("%d corrupt images, at most %d bytes allocated by one", len(corruptCases), maxAlloc)
}

// openAndRead opens b and, when at >= 0, reads the cluster at that
// virtual offset; it returns the first error.
func openAndRead(b []byte, at int64) error {
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "corrupt.qcow2"})
	if err != nil || at < 0 {
		if err == nil {
			return errors.New("Open succeeded")
		}
		return err
	}
	buf := make([]byte, img.clusterSize)
	if _, err := blockmap.ReadAt(img, buf, at); err != nil {
		return err
	}
	return errors.New("read succeeded")
}
