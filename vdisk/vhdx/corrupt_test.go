package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// firstPresent is the index of the first present payload block.
func firstPresent(t testing.TB, l layout) int {
	t.Helper()
	for i, e := range l.blocks {
		if e&batStateMask == blockFullyPresent {
			return i
		}
	}
	t.Fatal("no present block")
	return 0
}

// setBAT rewrites the BAT entry of payload block i (the small image has no
// sector bitmap entries before its eight blocks).
func setBAT(b []byte, l layout, i int, e uint64) {
	binary.LittleEndian.PutUint64(b[l.batOff+8*int64(i):], e)
}

// addRegion appends an entry to both region tables.
func addRegion(t testing.TB, b []byte, id guid, off uint64, length, flags uint32) {
	t.Helper()
	for _, rt := range []int64{regionTable1, regionTable2} {
		n := binary.LittleEndian.Uint32(b[rt+8:])
		e := rt + 16 + 32*int64(n)
		copy(b[e:], id[:])
		binary.LittleEndian.PutUint64(b[e+16:], off)
		binary.LittleEndian.PutUint32(b[e+24:], length)
		binary.LittleEndian.PutUint32(b[e+28:], flags)
		binary.LittleEndian.PutUint32(b[rt+8:], n+1)
		fixRegionTable(b, rt)
	}
}

// setRegion rewrites a region's offset and length in both tables.
func setRegion(t testing.TB, b []byte, id guid, off uint64, length uint32) {
	t.Helper()
	_, _, e1 := regionOf(t, b, id)
	for _, e := range []int64{e1, e1 - regionTable1 + regionTable2} {
		binary.LittleEndian.PutUint64(b[e+16:], off)
		binary.LittleEndian.PutUint32(b[e+24:], length)
	}
	fixAll(b)
}

// setItem rewrites the value of a metadata item.
func setItem32(t testing.TB, b []byte, id guid, v uint32) {
	t.Helper()
	binary.LittleEndian.PutUint32(b[itemFileOffset(t, b, id):], v)
}

var unknownGUID = mustGUID("DEADBEEF-0000-4000-8000-0123456789AB")

// TestCorrupt opens hand-damaged copies of a small qemu-img image. Each
// must fail with the right sentinel (or, where qemu reads the image, read
// like the original), without a panic and without allocating more than a
// few MiB.
func TestCorrupt(t *testing.T) {
	type edit func(t *testing.T, b []byte, l layout) []byte
	base := oracle(t, smallImagePath(t))
	cases := []struct {
		name string
		edit edit
		want error // nil: opens and reads like the original
		warn string
	}{
		{"bad file identifier", func(t *testing.T, b []byte, l layout) []byte {
			copy(b, "vhdxfilf")
			return b
		}, blockmap.ErrCorrupt, ""},
		{"active header CRC", func(t *testing.T, b []byte, l layout) []byte {
			b[l.hdr+100] ^= 1
			return b
		}, nil, "is invalid (bad CRC-32C)"},
		{"both header CRCs", func(t *testing.T, b []byte, l layout) []byte {
			b[header1Offset+100] ^= 1
			b[header2Offset+100] ^= 1
			return b
		}, blockmap.ErrCorrupt, ""},
		{"header signatures", func(t *testing.T, b []byte, l layout) []byte {
			copy(b[header1Offset:], "HEAD")
			copy(b[header2Offset:], "HEAD")
			fixAll(b)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"header version 2", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint16(b[header1Offset+66:], 2)
			binary.LittleEndian.PutUint16(b[header2Offset+66:], 2)
			fixAll(b)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"twin headers that differ", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint64(b[header1Offset+8:], 7)
			binary.LittleEndian.PutUint64(b[header2Offset+8:], 7)
			b[header1Offset+200] ^= 1
			fixAll(b)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"identical twin headers", func(t *testing.T, b []byte, l layout) []byte {
			copy(b[header1Offset:header1Offset+headerSize], b[l.hdr:l.hdr+headerSize])
			copy(b[header2Offset:header2Offset+headerSize], b[l.hdr:l.hdr+headerSize])
			return b
		}, nil, ""},
		{"log offset not MiB-aligned", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint64(b[l.hdr+72:], uint64(l.logOff)+logSector)
			fixHeader(b, l.hdr)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"log version 1", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint16(b[l.hdr+64:], 1)
			fixHeader(b, l.hdr)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"region table 1 CRC", func(t *testing.T, b []byte, l layout) []byte {
			b[regionTable1+40000] ^= 1
			return b
		}, nil, "using region table 2"},
		{"both region table CRCs", func(t *testing.T, b []byte, l layout) []byte {
			b[regionTable1+40000] ^= 1
			b[regionTable2+40000] ^= 1
			return b
		}, blockmap.ErrCorrupt, ""},
		{"region table truncated away", func(t *testing.T, b []byte, l layout) []byte {
			return b[:regionTable1+100]
		}, blockmap.ErrCorrupt, ""},
		{"region entry count 5000", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint32(b[regionTable1+8:], 5000)
			binary.LittleEndian.PutUint32(b[regionTable2+8:], 5000)
			fixAll(b)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"unknown required region", func(t *testing.T, b []byte, l layout) []byte {
			addRegion(t, b, unknownGUID, 200*mib, mib, 1)
			return b
		}, blockmap.ErrUnsupported, ""},
		{"unknown optional region", func(t *testing.T, b []byte, l layout) []byte {
			addRegion(t, b, unknownGUID, 200*mib, mib, 0)
			return b
		}, nil, ""},
		{"2047 regions", func(t *testing.T, b []byte, l layout) []byte {
			for i := binary.LittleEndian.Uint32(b[regionTable1+8:]); i < 2047; i++ {
				id := unknownGUID
				binary.LittleEndian.PutUint32(id[:], i)
				addRegion(t, b, id, uint64(100+2047-i)*mib, mib, 0) // added in descending order
			}
			return b
		}, nil, ""},
		{"second BAT region", func(t *testing.T, b []byte, l layout) []byte {
			addRegion(t, b, regionBAT, 200*mib, mib, 1)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"no metadata region", func(t *testing.T, b []byte, l layout) []byte {
			_, _, e := regionOf(t, b, regionMetadata)
			copy(b[e:], unknownGUID[:])
			copy(b[e-regionTable1+regionTable2:], unknownGUID[:])
			fixAll(b)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region over the metadata", func(t *testing.T, b []byte, l layout) []byte {
			md, _, _ := regionOf(t, b, regionMetadata)
			setRegion(t, b, regionBAT, uint64(md), mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region over the log", func(t *testing.T, b []byte, l layout) []byte {
			setRegion(t, b, regionBAT, uint64(l.logOff), mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region in the header section", func(t *testing.T, b []byte, l layout) []byte {
			setRegion(t, b, regionBAT, 0, mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region too small", func(t *testing.T, b []byte, l layout) []byte {
			setRegion(t, b, regionBAT, uint64(l.batOff), 16)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region past the end", func(t *testing.T, b []byte, l layout) []byte {
			setRegion(t, b, regionBAT, 1<<40, mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT region at an absurd offset", func(t *testing.T, b []byte, l layout) []byte {
			setRegion(t, b, regionBAT, 1<<63, mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT entry past the end", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), 10000<<20|blockFullyPresent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT entry with an absurd offset", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), 0xFFFFFFFFFFF00000|blockFullyPresent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT entry into the metadata", func(t *testing.T, b []byte, l layout) []byte {
			md, _, _ := regionOf(t, b, regionMetadata)
			setBAT(b, l, firstPresent(t, l), uint64(md)|blockFullyPresent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT entry into the BAT", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), uint64(l.batOff)|blockFullyPresent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"BAT entry into the headers", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), blockFullyPresent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"block size 512 MiB", func(t *testing.T, b []byte, l layout) []byte {
			setItem32(t, b, itemFileParameters, 512*mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"block size 2 GiB", func(t *testing.T, b []byte, l layout) []byte {
			setItem32(t, b, itemFileParameters, 1<<31)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"block size 3 MiB", func(t *testing.T, b []byte, l layout) []byte {
			setItem32(t, b, itemFileParameters, 3*mib)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"block size 0", func(t *testing.T, b []byte, l layout) []byte {
			setItem32(t, b, itemFileParameters, 0)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"logical sector 1024", func(t *testing.T, b []byte, l layout) []byte {
			setItem32(t, b, itemLogicalSector, 1024)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"virtual size 1 EiB", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint64(b[itemFileOffset(t, b, itemVirtualDiskSize):], 1<<60)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"virtual size not a sector multiple", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint64(b[itemFileOffset(t, b, itemVirtualDiskSize):], 4*mib+1)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"virtual size beyond the BAT", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint64(b[itemFileOffset(t, b, itemVirtualDiskSize):], 60<<40)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata signature", func(t *testing.T, b []byte, l layout) []byte {
			md, _, _ := regionOf(t, b, regionMetadata)
			copy(b[md:], "METADATA")
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata entry count 65535", func(t *testing.T, b []byte, l layout) []byte {
			md, _, _ := regionOf(t, b, regionMetadata)
			binary.LittleEndian.PutUint16(b[md+10:], 65535)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata item outside its region", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint32(b[itemEntry(t, b, itemVirtualDiskSize)+16:], 0xFFFFFFF0)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata item too short", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint32(b[itemEntry(t, b, itemVirtualDiskSize)+20:], 4)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata item missing", func(t *testing.T, b []byte, l layout) []byte {
			e := itemEntry(t, b, itemVirtualDiskSize)
			copy(b[e:], unknownGUID[:])
			binary.LittleEndian.PutUint32(b[e+24:], 0) // not required: simply unknown
			return b
		}, blockmap.ErrCorrupt, ""},
		{"metadata item twice", func(t *testing.T, b []byte, l layout) []byte {
			copy(b[itemEntry(t, b, itemPage83Data):], itemFileParameters[:])
			return b
		}, blockmap.ErrCorrupt, ""},
		{"unknown required metadata item", func(t *testing.T, b []byte, l layout) []byte {
			md, _, _ := regionOf(t, b, regionMetadata)
			n := int64(binary.LittleEndian.Uint16(b[md+10:]))
			e := md + 32 + 32*n
			copy(b[e:], unknownGUID[:])
			binary.LittleEndian.PutUint32(b[e+16:], 512*1024)
			binary.LittleEndian.PutUint32(b[e+20:], 8)
			binary.LittleEndian.PutUint32(b[e+24:], itemRequired)
			binary.LittleEndian.PutUint16(b[md+10:], uint16(n+1))
			return b
		}, blockmap.ErrUnsupported, ""},
		{"differencing disk without a parent locator", func(t *testing.T, b []byte, l layout) []byte {
			binary.LittleEndian.PutUint32(b[itemFileOffset(t, b, itemFileParameters)+4:], flagHasParent)
			return b
		}, blockmap.ErrCorrupt, ""},
		{"partially present block", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), l.blocks[firstPresent(t, l)]&^batStateMask|blockPartiallyPresent)
			return b
		}, nil, "map:PARTIALLY_PRESENT"},
		{"undefined block state 4", func(t *testing.T, b []byte, l layout) []byte {
			setBAT(b, l, firstPresent(t, l), 4)
			return b
		}, nil, "map:undefined state 4"},
		{"truncated to nothing", func(t *testing.T, b []byte, l layout) []byte { return b[:0] }, blockmap.ErrCorrupt, ""},
		{"truncated to the identifier", func(t *testing.T, b []byte, l layout) []byte { return b[:8] }, blockmap.ErrCorrupt, ""},
		{"truncated in header 1", func(t *testing.T, b []byte, l layout) []byte { return b[:header1Offset+100] }, blockmap.ErrCorrupt, ""},
		{"truncated in the header section", func(t *testing.T, b []byte, l layout) []byte { return b[:300*1024] }, blockmap.ErrCorrupt, ""},
		{"truncated after the header section", func(t *testing.T, b []byte, l layout) []byte { return b[:mib] }, blockmap.ErrCorrupt, ""},
		{"truncated in the BAT", func(t *testing.T, b []byte, l layout) []byte { return b[:l.batOff+4] }, blockmap.ErrCorrupt, ""},
		{"truncated in the last block", func(t *testing.T, b []byte, l layout) []byte { return b[:len(b)-mib/2] }, blockmap.ErrCorrupt, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := smallImage(t)
			b = tc.edit(t, b, smallLayout(t))
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			img, err := Open(strictReader{t, b}, int64(len(b)), Options{Name: "bad.vhdx"})
			runtime.ReadMemStats(&ms)
			if alloc := ms.TotalAlloc - before; alloc > 4<<20 {
				t.Errorf("Open allocated %d bytes", alloc)
			}
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Open: %v, want %v", err, tc.want)
				}
				if !strings.HasPrefix(err.Error(), "vhdx: bad.vhdx: ") {
					t.Errorf("error %q does not name the image", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if mapErr, ok := strings.CutPrefix(tc.warn, "map:"); ok {
				bad := int64(firstPresent(t, smallLayout(t)))
				_, err := img.Map(bad*img.blockSize + 5)
				if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), mapErr) {
					t.Fatalf("Map of the damaged block: %v", err)
				}
				t.Log(err)
				// The rest of the disk still reads.
				for blk := range img.blocks {
					if blk != bad {
						compareAt(t, img, base, blk*img.blockSize, img.blockSize)
					}
				}
				return
			}
			if w := strings.Join(img.Warnings(), "; "); !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
			compareAll(t, img, base)
		})
	}
}

// TestParentLocator builds a differencing disk: its parent locator names
// the parent, and the error must carry that name.
func TestParentLocator(t *testing.T) {
	b := smallImage(t)
	md, mdLen, _ := regionOf(t, b, regionMetadata)
	binary.LittleEndian.PutUint32(b[itemFileOffset(t, b, itemFileParameters)+4:], flagHasParent)

	// A locator with three key-value pairs, placed in the free half of the
	// metadata region.
	loc := make([]byte, 20+3*12)
	copy(loc, mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").String())
	binary.LittleEndian.PutUint16(loc[18:], 3)
	var strs []byte
	add := func(i int, k, v string) {
		ko := len(loc) + len(strs)
		strs = append(strs, utf16Bytes(k)...)
		vo := len(loc) + len(strs)
		strs = append(strs, utf16Bytes(v)...)
		e := loc[20+12*i:]
		binary.LittleEndian.PutUint32(e[0:], uint32(ko))
		binary.LittleEndian.PutUint32(e[4:], uint32(vo))
		binary.LittleEndian.PutUint16(e[8:], uint16(2*len(k)))
		binary.LittleEndian.PutUint16(e[10:], uint16(2*len(v)))
	}
	add(0, "parent_linkage", "{83ABA5B2-ECB6-4A42-9A48-5F7E1C1E3AC6}")
	add(1, "relative_path", `.\base-disk.vhdx`)
	add(2, "absolute_win32_path", `C:\VMs\base-disk.vhdx`)
	loc = append(loc, strs...)
	locOff := mdLen / 2
	copy(b[md+locOff:], loc)

	n := int64(binary.LittleEndian.Uint16(b[md+10:]))
	e := md + 32 + 32*n
	copy(b[e:], itemParentLocator[:])
	binary.LittleEndian.PutUint32(b[e+16:], uint32(locOff))
	binary.LittleEndian.PutUint32(b[e+20:], uint32(len(loc)))
	binary.LittleEndian.PutUint32(b[e+24:], itemRequired)
	binary.LittleEndian.PutUint16(b[md+10:], uint16(n+1))

	_, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "child.vhdx"})
	if !errors.Is(err, blockmap.ErrUnsupported) {
		t.Fatalf("Open: %v, want ErrUnsupported", err)
	}
	for _, want := range []string{`relative_path ".\\base-disk.vhdx"`, "83ABA5B2-ECB6-4A42-9A48-5F7E1C1E3AC6"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %s", err, want)
		}
	}
	t.Log(err)

	// A locator pointing outside itself still yields the refusal.
	binary.LittleEndian.PutUint32(b[md+locOff+20+12:], 1<<30)
	binary.LittleEndian.PutUint16(b[md+locOff+18:], 0xFFFF)
	if _, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "child.vhdx"}); !errors.Is(err, blockmap.ErrUnsupported) {
		t.Fatalf("Open with a damaged locator: %v", err)
	}
}

func utf16Bytes(s string) []byte {
	var b []byte
	for _, r := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(r))
	}
	return b
}

// strictReader fails the test on any read outside [0, len(b)): the package
// must check bounds before it touches the member, which in the archive is
// followed by other members.
type strictReader struct {
	t testing.TB
	b []byte
}

func (s strictReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s.b)) {
		s.t.Errorf("read of %d bytes at %d outside the %d-byte member", len(p), off, len(s.b))
		return 0, io.EOF
	}
	return copy(p, s.b[off:]), nil
}

var errBoom = errors.New("boom")

// failingReader fails every read that reaches past limit.
type failingReader struct {
	b     []byte
	limit int64
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errBoom
	}
	return copy(p, f.b[off:]), nil
}

// TestReaderErrors makes the member fail from various offsets on: a
// failing read of a structure is passed on (not called corruption), a
// failing read of data fails the read, and nothing panics.
func TestReaderErrors(t *testing.T) {
	b := smallImage(t)
	l := smallLayout(t)
	md, _, _ := regionOf(t, b, regionMetadata)
	for _, limit := range []int64{0, header1Offset, header2Offset, regionTable1 + 10, regionTable2 + 10, md + 10, md + 65536 + 10, l.batOff + 4} {
		_, err := Open(failingReader{b, limit}, int64(len(b)), Options{Name: "flaky.vhdx"})
		if !errors.Is(err, errBoom) || errors.Is(err, blockmap.ErrCorrupt) {
			t.Errorf("limit %d: Open returned %v, want the reader's error", limit, err)
		}
	}
	p := int64(l.blockOff(t, firstPresent(t, l)))
	img, err := Open(failingReader{b, p + 100}, int64(len(b)), Options{Name: "flaky.vhdx"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := blockmap.ReadAt(img, buf, int64(firstPresent(t, l))*img.blockSize); !errors.Is(err, errBoom) {
		t.Fatalf("data read returned %v, want the reader's error", err)
	}
}

// TestMapAllocs checks that Map, the hot path, allocates nothing, with the
// BAT loaded whole and paged.
func TestMapAllocs(t *testing.T) {
	b := smallImage(t)
	for _, paged := range []bool{false, true} {
		saved := batLimits
		if paged {
			batLimits.whole, batLimits.pageSize, batLimits.pageCount = 1, 2, 4
		}
		img, err := Open(bytes.NewReader(b), int64(len(b)), Options{Name: "allocs.vhdx"})
		batLimits = saved
		if err != nil {
			t.Fatal(err)
		}
		if paged == (img.bat.whole != nil) {
			t.Fatalf("paged %v but whole BAT %v", paged, img.bat.whole != nil)
		}
		for off := int64(0); off < img.Size(); off += img.blockSize {
			img.Map(off) // warm the page cache
		}
		var off int64
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := img.Map(off); err != nil {
				t.Fatal(err)
			}
			off = (off + 300007) % img.Size()
		})
		if allocs != 0 {
			t.Errorf("paged %v: Map allocates %.1f times per call", paged, allocs)
		}
	}
}
