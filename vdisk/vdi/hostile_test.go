package vdi

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	hBS = 4096
	// Header fields, from the start of the file (1.x).
	hCbHeader  = preHeaderSize + 0x00
	hType      = preHeaderSize + 0x04
	hFlags     = preHeaderSize + 0x08
	hOffBlocks = preHeaderSize + 0x10c
	hOffData   = preHeaderSize + 0x110
	hDiskSize  = preHeaderSize + 0x128
	hBlockSize = preHeaderSize + 0x130
	hExtra     = preHeaderSize + 0x134
	hBlocks    = preHeaderSize + 0x138
	hAllocated = preHeaderSize + 0x13c
	hCreate    = preHeaderSize + 0x140
	hLCHSSect  = preHeaderSize + 0x18c
	hMap       = 512 // the block map in built images
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

// hostileBase is a small valid dynamic image whose blocks are stored in
// virtual order: block b's entry is at hMap+4b, its data (if stored) at
// hostileOffData + k*hBS for the k-th stored block.
func hostileBase() []byte {
	return build(spec{data: hostileData(), blockSize: hBS})
}

func mutate(base []byte, f func([]byte) []byte) func() []byte {
	return func() []byte { return f(bytes.Clone(base)) }
}

func setU32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
}

func setU64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
}

func both(fs ...func([]byte) []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		for _, f := range fs {
			b = f(b)
		}
		return b
	}
}

// openMeasured opens b and reports the bytes Open allocated.
func openMeasured(b []byte, allowParent bool) (*Image, error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "test.vdi", AllowParent: allowParent})
	runtime.ReadMemStats(&after)
	return img, err, after.TotalAlloc - before.TotalAlloc
}

// TestHostileOpen: images Open must refuse, with the right sentinel and
// without allocating more than the few KiB of metadata.
func TestHostileOpen(t *testing.T) {
	base := hostileBase()
	for _, tc := range []struct {
		name   string
		img    func() []byte
		target error
		msg    string
	}{
		{"empty", func() []byte { return nil }, blockmap.ErrCorrupt, "too small"},
		{"100 bytes", func() []byte { return base[:100] }, blockmap.ErrCorrupt, "too small"},
		{"truncated inside the 1.1 header", func() []byte { return base[:0x1b0] }, blockmap.ErrCorrupt, "too small for a version 1 VDI header"},
		{"truncated inside the 1.1+ header", func() []byte { return base[:0x1d0] }, blockmap.ErrCorrupt, "header size field says 400 bytes, past the end"},
		{"no signature", mutate(base, setU32(signatureOff, 0xbeda1070)), blockmap.ErrCorrupt, "no VDI signature"},
		{"version 2.0", mutate(base, setU32(versionOff, 0x00020000)), blockmap.ErrUnsupported, "VDI version 2.0"},
		{"version 0.0", mutate(base, setU32(versionOff, 0)), blockmap.ErrUnsupported, "VDI version 0.0"},
		{"header size 0x100", mutate(base, setU32(hCbHeader, 0x100)), blockmap.ErrCorrupt, "less than the 384 of a version 1.1 header"},
		{"header size 0", mutate(base, setU32(hCbHeader, 0)), blockmap.ErrCorrupt, "header size field says 0 bytes"},
		{"block map on the header", mutate(base, setU32(hOffBlocks, 0x100)), blockmap.ErrCorrupt, "overlaps the header"},
		{"block map at 2^32-1", mutate(base, setU32(hOffBlocks, 0xFFFFFFFF)), blockmap.ErrCorrupt, "starts inside the block map"},
		{"data inside the block map", mutate(base, setU32(hOffData, hMap+8)), blockmap.ErrCorrupt, "starts inside the block map of 8 entries"},
		{"block map past the end", mutate(base, both(setU32(hOffBlocks, uint32(len(base))), setU32(hOffData, uint32(len(base)+512)))),
			blockmap.ErrCorrupt, "block map of 8 entries at"},
		{"truncated inside the block map", func() []byte { return base[:hMap+12] }, blockmap.ErrCorrupt, "runs past the end of the image (524 bytes)"},
		{"undo image", mutate(base, setU32(hType, typeUndo)), blockmap.ErrUnsupported, "image type 3 (undo)"},
		{"image type 0", mutate(base, setU32(hType, 0)), blockmap.ErrCorrupt, "unknown image type 0"},
		{"image type 2^32-1", mutate(base, setU32(hType, 0xFFFFFFFF)), blockmap.ErrCorrupt, "unknown image type 4294967295"},
		{"block size 0", mutate(base, setU32(hBlockSize, 0)), blockmap.ErrCorrupt, "block size 0 is not a power of two"},
		{"block size 3 MiB", mutate(base, setU32(hBlockSize, 3<<20)), blockmap.ErrCorrupt, "not a power of two"},
		{"block size 256", mutate(base, setU32(hBlockSize, 256)), blockmap.ErrCorrupt, "of at least 512"},
		{"block size 2^32-1", mutate(base, setU32(hBlockSize, 0xFFFFFFFF)), blockmap.ErrCorrupt, "not a power of two"},
		{"extra data 3", mutate(base, setU32(hExtra, 3)), blockmap.ErrCorrupt, "extra data size 3"},
		{"disk larger than its blocks", mutate(base, setU64(hDiskSize, 9*hBS)), blockmap.ErrCorrupt, "less than the disk size"},
		{"disk size 2^64-1", mutate(base, setU64(hDiskSize, ^uint64(0))), blockmap.ErrCorrupt, "less than the disk size 18446744073709551615"},
		{"huge block count", mutate(base, both(setU32(hBlocks, 0xFFFFFFFF), setU64(hDiskSize, 1<<40), setU32(hOffData, 0xFFFFFFFF))),
			blockmap.ErrCorrupt, "starts inside the block map of 4294967295 entries"},
		{"huge disk over 2 GiB blocks", mutate(base, both(setU32(hBlocks, 1<<20), setU32(hBlockSize, 1<<31), setU64(hDiskSize, 1<<51), setU32(hOffData, 1<<23))),
			blockmap.ErrCorrupt, "block map of 1048576 entries at 512 runs past the end"},
		{"largest disk", mutate(base, both(setU32(hBlocks, 0xFFFFFFFF), setU32(hBlockSize, 1<<31), setU64(hDiskSize, 0xFFFFFFFF<<31), setU32(hOffData, 0xFFFFFFFF))),
			blockmap.ErrCorrupt, "starts inside the block map"},
		{"largest disk of version 0.2", mutate(build(spec{version: v0Version, data: hostileData(), blockSize: hBS}),
			both(setU32(preHeaderSize+0x124, 0xFFFFFFFF), setU32(preHeaderSize+0x120, 1<<31), setU64(preHeaderSize+0x118, 0xFFFFFFFF<<31))),
			blockmap.ErrCorrupt, "block map of 4294967295 entries at 420 runs past the end"},
		{"differencing", func() []byte {
			return build(spec{imageType: typeDiff, data: hostileData(), blockSize: hBS, linkage: UUID{1}})
		},
			blockmap.ErrUnsupported, "parent image with creation UUID {00000001-0000-0000-0000-000000000000}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.img()
			img, err, alloc := openMeasured(b, false)
			if err == nil {
				t.Fatalf("Open succeeded (size %d, warnings %q)", img.Size(), img.Warnings())
			}
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open = %v\nwant %v containing %q", err, tc.target, tc.msg)
			}
			t.Logf("Open: %v", err)
			if !strings.HasPrefix(err.Error(), "vdi: test.vdi: ") {
				t.Errorf("error %q does not name the image", err)
			}
			if alloc > 64<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
		})
	}
}

// TestHostileBlocks: entries that put a block past the end of the file.
// Open succeeds, so the other blocks stay readable, and warns; mapping the
// bad block fails with an error naming it.
func TestHostileBlocks(t *testing.T) {
	base := hostileBase()
	entry := func(i int) int { return hMap + 4*i }
	for _, tc := range []struct {
		name  string
		img   func() []byte
		block int64 // a block that must fail
		good  int64 // a block that must still read, or -1
		msg   string
	}{
		{"entry past the end", mutate(base, setU32(entry(1), 0x7FFFFFFF)), 1, 0, "block map entry 1 (stored block 2147483647)"},
		{"entry just below the zero marker", mutate(base, setU32(entry(3), 0xFFFFFFFD)), 3, 6, "block map entry 3 (stored block 4294967293)"},
		{"truncated inside the last block", func() []byte { return base[:len(base)-hBS/2] }, 6, 3, "block map entry 6 (stored block 3)"},
		{"data offset past the end", mutate(base, setU32(hOffData, 0xFFFFFE00)), 0, -1, "block map entry 0"},
		{"2 GiB blocks and extra data", mutate(base, both(setU32(hBlockSize, 1<<31), setU32(hExtra, 1<<31), setU32(entry(0), 0xFFFFFFF0))), 0, -1, "block map entry 0 (stored block 4294967280)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err, alloc := openMeasured(tc.img(), false)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if alloc > 64<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
			if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, "cannot be read") {
				t.Errorf("warnings %q do not report the unreadable blocks", w)
			}
			_, err = img.Map(tc.block*img.blockSize + 100)
			t.Logf("Map: %v", err)
			if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "vdi: test.vdi: ") {
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

// TestHostileAccepted: damage VirtualBox or qemu reads past, which must
// warn, read as they read, and stay cheap.
func TestHostileAccepted(t *testing.T) {
	base := hostileBase()
	data := hostileData()
	entry := func(i int) int { return hMap + 4*i }
	for _, tc := range []struct {
		name string
		img  func() []byte
		want func() []byte // the disk's bytes
		warn string
	}{
		{"two entries share a block", mutate(base, setU32(entry(7), 1)), func() []byte {
			d := bytes.Clone(data)
			copy(d[7*hBS:], data[1*hBS:2*hBS])
			return d
		}, "1 blocks share their stored block with an earlier one (the first: block 7, entry 1)"},
		{"entry past the allocated count", mutate(base, setU32(hAllocated, 2)), nil, "2 blocks are stored past the header's count of 2 allocated blocks"},
		{"allocated count over the block count", mutate(base, setU32(hAllocated, 9)), nil, "counts 9 allocated blocks, more than its 8 blocks"},
		{"header size 2^32-1", mutate(base, setU32(hCbHeader, 0xFFFFFFFF)), nil, "header size field says 4294967295 bytes, running into the block map at 512"},
		{"unknown flags", mutate(base, setU32(hFlags, 0x80000000)), nil, "unknown image flags 0x80000000"},
		{"null UUIDs", mutate(base, func(b []byte) []byte { clear(b[hCreate : hCreate+32]); return b }), nil, "null creation or modification UUID"},
		{"LCHS sector size 4096", mutate(base, setU32(hLCHSSect, 4096)), nil, "LCHS geometry's sector size is 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err, alloc := openMeasured(tc.img(), false)
			if err != nil {
				t.Fatal(err)
			}
			if alloc > 64<<10 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
			if w := strings.Join(img.Warnings(), "\n"); !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
			want := data
			if tc.want != nil {
				want = tc.want()
			}
			compareBytes(t, img, want)
		})
	}

	// A 2 TiB disk of 2 GiB blocks with nothing allocated is a 5 KiB file
	// mapping to one hole.
	b := build(spec{diskSize: 1 << 41, blockSize: 1 << 31, kinds: []byte{}})
	img, err, alloc := openMeasured(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 64<<10 || len(b) > 5<<10 {
		t.Errorf("Open allocated %d bytes for a %d-byte file", alloc, len(b))
	}
	r, err := img.Map(1 << 40)
	if err != nil || r.Kind != blockmap.Hole || r.Off != 0 || r.Len != img.Size() || img.Size() != 1<<41 {
		t.Errorf("Map = %+v, %v; want one hole over the disk", r, err)
	}
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
		{0, "reading the header at 0"},
		{hMap, "reading the block map at 512"},
	} {
		_, err := Open(failAt{base, tc.bad}, int64(len(base)), Options{Name: "x.vdi"})
		if !errors.Is(err, errFire) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "vdi: x.vdi: ") {
			t.Errorf("Open = %v, want %q wrapping the source's error", err, tc.msg)
		}
	}
}

// TestDetect: the signature and the pre-header text, and nothing else.
func TestDetect(t *testing.T) {
	base := hostileBase()
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"VirtualBox", base, true},
		{"qemu text", mutate(base, func(b []byte) []byte { clear(b[:64]); copy(b, "<<< QEMU VM Virtual Disk Image >>>\n"); return b })(), true},
		{"pre-header alone", base[:preHeaderSize], true},
		{"no text", mutate(base, func(b []byte) []byte { clear(b[:64]); return b })(), false},
		{"no signature", mutate(base, setU32(signatureOff, 0))(), false},
		{"short", base[:preHeaderSize-1], false},
		{"empty", nil, false},
	} {
		if got := Detect(bytes.NewReader(tc.b), int64(len(tc.b))); got != tc.want {
			t.Errorf("%s: Detect = %v, want %v", tc.name, got, tc.want)
		}
	}
}
