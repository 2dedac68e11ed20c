package vhd

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	hBS     = 4096
	hHeader = 512  // dynamic header offset in built images
	hBAT    = 1536 // BAT offset in built images
)

// hostileData is the content of hostileBase: 8 blocks of 4 KiB, of which
// 0, 1, 3 and 6 hold data.
func hostileData() []byte {
	data := make([]byte, 8*hBS)
	for _, b := range []int{0, 1, 3, 6} {
		for i := range hBS {
			data[b*hBS+i] = byte(b*7 + i%251 + 1)
		}
	}
	return data
}

// hostileBase is a small valid dynamic disk whose blocks are stored in
// virtual order.
func hostileBase() []byte {
	return build(spec{data: hostileData(), diskType: diskDynamic, blockSize: hBS})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func setU32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { be.PutUint32(b[off:], v); return b }
}

func setU64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte { be.PutUint64(b[off:], v); return b }
}

func both32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { setBoth(b, off, func(p []byte) { be.PutUint32(p, v) }); return b }
}

func both64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte { setBoth(b, off, func(p []byte) { be.PutUint64(p, v) }); return b }
}

func fixed(f func([]byte) []byte) func([]byte) []byte {
	return func(b []byte) []byte { b = f(b); fixSums(b); return b }
}

// openMeasured opens b and reports the bytes Open allocated.
func openMeasured(b []byte) (*Image, error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, err := openBytes(b)
	runtime.ReadMemStats(&after)
	return img, err, after.TotalAlloc - before.TotalAlloc
}

// TestHostileOpen: images Open must refuse, with the right sentinel and
// without allocating more than the few KiB of metadata.
func TestHostileOpen(t *testing.T) {
	base := hostileBase()
	fixedDisk := build(spec{data: bytes.Repeat([]byte{0x5a}, 3*hBS), diskType: diskFixed})
	for _, tc := range []struct {
		name   string
		img    func() []byte
		target error
		msg    string
	}{
		{"empty", func() []byte { return nil }, blockmap.ErrCorrupt, "too small"},
		{"100 bytes", func() []byte { return base[:100] }, blockmap.ErrCorrupt, "too small"},
		{"no cookie anywhere", mutate(base, func(b []byte) []byte {
			copy(b, "XXXXXXXX")
			copy(b[len(b)-footerSize:], "XXXXXXXX")
			return b
		}), blockmap.ErrCorrupt, `no "conectix" footer`},
		{"huge max_table_entries", mutate(base, fixed(setU32(hHeader+28, 0xFFFFFFFF))), blockmap.ErrCorrupt, "BAT of 4294967295 entries"},
		{"max_table_entries too small", mutate(base, fixed(setU32(hHeader+28, 1))), blockmap.ErrCorrupt, "less than the virtual size"},
		{"max_table_entries zero", mutate(base, fixed(setU32(hHeader+28, 0))), blockmap.ErrCorrupt, "less than the virtual size"},
		{"block size 3 KiB", mutate(base, fixed(setU32(hHeader+32, 3072))), blockmap.ErrCorrupt, "not a power of two"},
		{"block size 256", mutate(base, fixed(setU32(hHeader+32, 256))), blockmap.ErrCorrupt, "not a power of two"},
		{"block size 0", mutate(base, fixed(setU32(hHeader+32, 0))), blockmap.ErrCorrupt, "not a power of two"},
		{"BAT offset past the end", mutate(base, fixed(setU64(hHeader+16, 1<<62))), blockmap.ErrCorrupt, "runs past the end"},
		{"BAT offset 2^64-1", mutate(base, fixed(setU64(hHeader+16, ^uint64(0)))), blockmap.ErrCorrupt, "runs past the end"},
		{"dynamic header offset 2^64-1", mutate(base, fixed(both64(16, ^uint64(0)))), blockmap.ErrCorrupt, "dynamic header at"},
		{"dynamic header overlapping the end", mutate(base, fixed(both64(16, uint64(len(base)-100)))), blockmap.ErrCorrupt, "dynamic header at"},
		{"dynamic header cookie", mutate(base, fixed(func(b []byte) []byte { b[hHeader] = 'X'; return b })), blockmap.ErrCorrupt, `"cxsparse"`},
		{"footer copies disagree", mutate(base, fixed(func(b []byte) []byte { be.PutUint64(b[48:], 1<<20); return b })),
			blockmap.ErrCorrupt, "disagree on current_size"},
		{"footer copies disagree, both damaged", mutate(base, func(b []byte) []byte {
			b[60+3] = diskFixed
			b[len(b)-footerSize+24] ^= 1
			return b
		}), blockmap.ErrCorrupt, "disagree on the disk type"},
		{"footer copies disagree on the geometry", mutate(base, fixed(func(b []byte) []byte { be.PutUint16(b[56:], 7); return b })),
			blockmap.ErrCorrupt, "disagree on the geometry (7/16/255 at offset 0, 65535/16/255 at the end)"},
		{"footer copies disagree on the creator", mutate(base, fixed(func(b []byte) []byte { copy(b[28:], "vpc "); return b })),
			blockmap.ErrCorrupt, `disagree on the creator application ("vpc " at offset 0, "win " at the end)`},
		{"footer copies disagree on the header offset", mutate(base, fixed(func(b []byte) []byte { be.PutUint64(b[16:], 1024); return b })),
			blockmap.ErrCorrupt, "disagree on the dynamic header offset (1024 at offset 0, 512 at the end)"},
		{"disk type 0", mutate(base, fixed(both32(60, 0))), blockmap.ErrUnsupported, "disk type 0"},
		{"disk type 5", mutate(base, fixed(both32(60, 5))), blockmap.ErrUnsupported, "deprecated disk type 5"},
		{"disk type 9", mutate(base, fixed(both32(60, 9))), blockmap.ErrCorrupt, "unknown disk type 9"},
		{"disk type 2^32-1", mutate(base, fixed(both32(60, 0xFFFFFFFF))), blockmap.ErrCorrupt, "unknown disk type 4294967295"},
		{"virtual size over 2040 GiB", mutate(base, fixed(both64(48, 3<<40))), blockmap.ErrCorrupt, "2040 GiB"},
		{"truncated inside the dynamic header", func() []byte { return base[:1000] }, blockmap.ErrCorrupt, "dynamic header at 512"},
		{"truncated inside the BAT", func() []byte { return base[:hBAT+16] }, blockmap.ErrCorrupt, "runs past the end"},
		{"footer alone", func() []byte { return base[:footerSize] }, blockmap.ErrCorrupt, "dynamic header at 512"},
		{"fixed footer only at offset 0", func() []byte {
			return append(append([]byte(nil), fixedDisk[len(fixedDisk)-footerSize:]...), fixedDisk[:len(fixedDisk)-footerSize]...)
		}, blockmap.ErrCorrupt, "says fixed disk"},
		{"differencing", func() []byte {
			return build(spec{data: bytes.Repeat([]byte{1}, hBS), diskType: diskDiffer, blockSize: hBS, parent: "base-disk.vhd",
				locators: []locator{
					{"W2ku", utf16le(`C:\VMs\base-disk.vhd`)},
					{"W2ru", utf16le(`.\base-disk.vhd`)},
					{"MacX", []byte("file://localhost/Users/x/base-disk.vhd")},
				}})
		}, blockmap.ErrUnsupported, `parent "base-disk.vhd" (parent locators: "W2ku" "C:\VMs\base-disk.vhd", "W2ru" ".\base-disk.vhd", "MacX" "file://localhost/Users/x/base-disk.vhd")`},
		{"differencing with hostile locators", func() []byte {
			b := build(spec{data: bytes.Repeat([]byte{1}, hBS), diskType: diskDiffer, blockSize: hBS, parent: "p\u202e.vhd",
				locators: []locator{{"W2ku", utf16le("x")}, {"W2ru", utf16le("y")}, {"MacX", []byte("z")}}})
			loc := b[hHeader+locatorOff:]
			be.PutUint32(loc[8:], 0xFFFFFFFF)                   // absurd length
			be.PutUint64(loc[locatorSize+16:], ^uint64(0)-10)   // offset past the end
			be.PutUint32(loc[2*locatorSize+8:], uint32(len(b))) // runs past the end
			return b
		}, blockmap.ErrUnsupported, `parent "p\u202e.vhd", and parent`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.img()
			img, err, alloc := openMeasured(b)
			if err == nil {
				t.Fatalf("Open succeeded (size %d, warnings %q)", img.Size(), img.Warnings())
			}
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open = %v\nwant %v containing %q", err, tc.target, tc.msg)
			}
			t.Logf("Open: %v", err)
			if !strings.HasPrefix(err.Error(), "vhd: test.vhd: ") {
				t.Errorf("error %q does not name the image", err)
			}
			if alloc > 256<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
		})
	}
}

// TestQuotePath: a parent path is shown as written, backslashes and all,
// while what could garble or disguise a log line is still escaped.

// TestHostileBlocks: BAT entries that put a block outside the image or on
// its metadata. Open succeeds, so the other blocks stay readable, and
// warns; mapping the bad block fails with an error naming it.
func TestHostileBlocks(t *testing.T) {
	base := hostileBase()
	end := len(base) - footerSize
	entry := func(i int) int { return hBAT + 4*i }
	for _, tc := range []struct {
		name  string
		img   func() []byte
		block int64 // a block that must fail
		good  int64 // a block that must still read, or -1
		msg   string
	}{
		{"entry past the end", mutate(base, setU32(entry(1), 0x7FFFFFFF)), 1, 0, "BAT entry 1 (block at sector 2147483647)"},
		{"entry on the end footer", mutate(base, setU32(entry(3), uint32(end/512-1))), 3, 6, "past the end of the image data"},
		{"entry on the BAT", mutate(base, setU32(entry(0), hBAT/512-1)), 0, 1, "on top of the BAT"},
		{"entry on the dynamic header", mutate(base, setU32(entry(6), 0)), 6, 3, "on top of the dynamic header"},
		{"entry for an unallocated block on the header", mutate(base, setU32(entry(7), 1)), 7, 6, "on top of the dynamic header"},
		{"truncated inside the blocks", func() []byte { return base[:end-hBS/2] }, 6, 3, "BAT entry 6"},
		{"block size 2 GiB", mutate(base, fixed(setU32(hHeader+32, 1<<31))), 0, -1, "BAT entry 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.img()
			img, err, alloc := openMeasured(b)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if alloc > 256<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
			if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "cannot be read") {
				t.Errorf("warnings %q do not report the unreadable blocks", w)
			}
			_, err = img.Map(tc.block*img.blockSize + 100)
			t.Logf("Map: %v", err)
			if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Map(block %d) = %v, want ErrCorrupt containing %q", tc.block, err, tc.msg)
			}
			buf := make([]byte, 64<<10)
			if _, err := blockmap.ReadAt(img, buf, 0); !errors.Is(err, blockmap.ErrCorrupt) {
				t.Errorf("reading the whole disk: %v, want ErrCorrupt", err)
			}
			if tc.good >= 0 {
				got := make([]byte, hBS)
				if _, err := blockmap.ReadAt(img, got, tc.good*hBS); err != nil || !bytes.Equal(got, hostileData()[tc.good*hBS:][:hBS]) {
					t.Errorf("block %d, which is intact, does not read back (%v)", tc.good, err)
				}
			}
		})
	}
}

// TestHostileAccepted: hostile images qemu accepts, which must stay cheap.
func TestHostileAccepted(t *testing.T) {
	// A fixed disk whose footer claims 2040 GiB over 4 KiB of data: qemu
	// reads the data, then the footer, then zeros; so does this package.
	data := bytes.Repeat([]byte{0x11}, hBS)
	b := build(spec{data: data, curSize: maxSectors * sectorSize, diskType: diskFixed})
	img, err, alloc := openMeasured(b)
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != maxSectors*sectorSize || alloc > 64<<10 {
		t.Fatalf("Size() = %d, Open allocated %d bytes", img.Size(), alloc)
	}
	if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "runs past the 4096 data bytes") {
		t.Errorf("warnings %q", w)
	}
	buf := make([]byte, 2*hBS)
	if n, err := blockmap.ReadAt(img, buf, 0); n != len(buf) || err != nil {
		t.Fatal(n, err)
	}
	if !bytes.Equal(buf[:hBS], data) || !bytes.Equal(buf[hBS:hBS+footerSize], b[hBS:]) || !allZero(buf[hBS+footerSize:]) {
		t.Error("fixed disk past its data does not read as footer then zeros")
	}
	if n, err := blockmap.ReadAt(img, buf, 1<<40); n != len(buf) || err != nil || !allZero(buf) {
		t.Errorf("reading at 1 TiB: %d, %v", n, err)
	}

	// A dynamic disk of 2040 GiB with 2 GiB blocks and nothing allocated
	// is a 4 KiB file mapping to one hole.
	d := build(spec{data: nil, curSize: maxSectors * sectorSize, diskType: diskDynamic, blockSize: 1 << 31})
	be.PutUint32(d[hHeader+28:], 1020)
	fixSums(d)
	b = append(d[:hBAT], bytes.Repeat([]byte{0xff}, 4096)...)
	b = append(b, d[len(d)-footerSize:]...)
	img, err, alloc = openMeasured(b)
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 64<<10 {
		t.Errorf("Open allocated %d bytes", alloc)
	}
	r, err := img.Map(1 << 40)
	if err != nil || r.Kind != blockmap.Hole || r.Off != 0 || r.Len != img.Size() {
		t.Errorf("Map = %+v, %v; want one hole over the disk", r, err)
	}
}

func mutate(base []byte, f func([]byte) []byte) func() []byte {
	return func() []byte { return f(append([]byte(nil), base...)) }
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

var errFire = errors.New("disk on fire")

// failAt is a source whose read at one offset fails.
type failAt struct {
	data []byte
	bad  int64
}

func (f failAt) ReadAt(p []byte, off int64) (int, error) {
	if off == f.bad {
		return 0, errFire
	}
	return bytes.NewReader(f.data).ReadAt(p, off)
}

// TestReadErrors: a failing source is reported with what was being read,
// and the source's own error stays visible to errors.Is.
func TestReadErrors(t *testing.T) {
	base := hostileBase()
	for _, tc := range []struct {
		bad int64
		msg string
	}{
		{int64(len(base) - footerSize), "reading the footer at the end"},
		{0, "reading the footer copy at offset 0"},
		{hHeader, "reading the dynamic header at 512"},
		{hBAT, "reading the BAT at 1536"},
	} {
		_, err := Open(failAt{base, tc.bad}, int64(len(base)), Options{Name: "x.vhd"})
		if !errors.Is(err, errFire) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "vhd: x.vhd: ") {
			t.Errorf("Open = %v, want %q wrapping the source's error", err, tc.msg)
		}
	}
}

// TestVersionWarning: an unexpected format version is reported, not refused
// (qemu does not check it either).
func TestVersionWarning(t *testing.T) {
	b := mutate(hostileBase(), fixed(both32(12, 0x00020000)))()
	img, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "format version 0x00020000, not 0x00010000") {
		t.Errorf("warnings %q", w)
	}
	got := make([]byte, len(hostileData()))
	if _, err := blockmap.ReadAt(img, got, 0); err != nil || !bytes.Equal(got, hostileData()) {
		t.Errorf("read back: %v", err)
	}
}
