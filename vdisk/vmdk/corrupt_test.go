package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/vmdkwriter"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const testGrain = 4096

// bases are small valid images (qemu-img reads each of these layouts, see
// TestBuiltImages) that the corruption cases mutate.
func bases() map[string]built {
	data := pattern(12*testGrain+1024, testGrain, 3)
	return map[string]built{
		"stream": spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, data: data}.build(),
		"atEnd":  spec{version: 3, grainSectors: 8, gtes: 4, compressed: true, markers: true, atEnd: true, data: data}.build(),
		"sparse": spec{grainSectors: 8, gtes: 4, data: data}.build(),
	}
}

var le = binary.LittleEndian

func put32(f []byte, off int64, v uint32) []byte { le.PutUint32(f[off:], v); return f }
func put64(f []byte, off int64, v uint64) []byte { le.PutUint64(f[off:], v); return f }

// zlibOf compresses b.
func zlibOf(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// replaceGrain appends a new record for grain i (marker with lba, then
// data) at the end of the file and points the grain's table entry at it.
func replaceGrain(b built, i int, lba uint64, data []byte) []byte {
	f := b.file
	at := len(f)
	rec := le.AppendUint64(nil, lba)
	rec = le.AppendUint32(rec, uint32(len(data)))
	f = append(f, pad(append(rec, data...))...)
	gtes := 4
	return put32(f, b.gtAt[i/gtes]+int64(4*(i%gtes)), uint32(at/512))
}

func TestCorrupt(t *testing.T) {
	bs := bases()
	ae := bs["atEnd"]
	for _, tc := range []struct {
		name   string
		base   string
		mutate func(b built) []byte
		atRead bool   // Open succeeds and reading the disk fails
		want   error  // sentinel
		text   string // part of the message
	}{
		// Headers.
		{"bad magic", "stream", func(b built) []byte { copy(b.file, "KDMX"); return b.file }, false, blockmap.ErrCorrupt, "not a VMDK"},
		{"version 0", "stream", func(b built) []byte { return put32(b.file, 4, 0) }, false, blockmap.ErrCorrupt, "version 0"},
		{"version 4", "stream", func(b built) []byte { return put32(b.file, 4, 4) }, false, blockmap.ErrUnsupported, "version 4"},
		{"text-mode newlines", "sparse", func(b built) []byte { copy(b.file[73:], "\n \n\n"); return b.file }, false, blockmap.ErrCorrupt, "text mode"},
		{"unknown compression", "stream", func(b built) []byte { le.PutUint16(b.file[77:], 7); return b.file }, false, blockmap.ErrUnsupported, "compression algorithm 7"},
		{"no GTEs per GT", "sparse", func(b built) []byte { return put32(b.file, 44, 0) }, false, blockmap.ErrCorrupt, "entries per grain table"},
		{"513 GTEs per GT", "sparse", func(b built) []byte { return put32(b.file, 44, 513) }, false, blockmap.ErrCorrupt, "entries per grain table"},
		{"grain size 0", "sparse", func(b built) []byte { return put64(b.file, 20, 0) }, false, blockmap.ErrCorrupt, "grain size"},
		{"grain size 3", "sparse", func(b built) []byte { return put64(b.file, 20, 3) }, false, blockmap.ErrCorrupt, "grain size"},
		{"grain size 2^22", "sparse", func(b built) []byte { return put64(b.file, 20, 1<<22) }, false, blockmap.ErrCorrupt, "grain size"},
		{"compressed 4 MiB grains", "stream", func(b built) []byte { return put64(b.file, 20, 8192) }, false, blockmap.ErrUnsupported, "compressed grains"},
		{"huge capacity", "sparse", func(b built) []byte { return put64(b.file, 12, 1<<60) }, false, blockmap.ErrCorrupt, "capacity"},
		{"GD of 2^39 entries", "sparse", func(b built) []byte { return put64(b.file, 12, 1<<44) }, false, blockmap.ErrCorrupt, "grain directory of"},
		{"GD of 4 Mi entries past the end", "sparse", func(b built) []byte { return put64(b.file, 12, 1<<27) }, false, blockmap.ErrCorrupt, "runs past the end"},
		{"GD offset past the end", "sparse", func(b built) []byte { return put64(b.file, 56, 1<<40) }, false, blockmap.ErrCorrupt, "runs past the end"},
		{"GD offset 0", "sparse", func(b built) []byte { return put64(b.file, 56, 0) }, false, blockmap.ErrCorrupt, "overlaps the header"},
		{"overhead past the end", "sparse", func(b built) []byte { return put64(b.file, 64, 1<<30) }, false, blockmap.ErrCorrupt, "truncated"},
		{"descriptor past the end", "sparse", func(b built) []byte { return put64(b.file, 28, 1<<40) }, false, blockmap.ErrCorrupt, "descriptor at sector"},
		{"tiny file", "sparse", func(b built) []byte { return b.file[:3] }, false, blockmap.ErrCorrupt, "too small"},

		// Footers.
		{"footer magic", "atEnd", func(b built) []byte { copy(b.file[b.footerAt:], "XXXX"); return b.file }, false, blockmap.ErrCorrupt, "footer"},
		{"footer marker type", "atEnd", func(b built) []byte { return put32(b.file, b.footerAt-512+12, markerGD) }, false, blockmap.ErrCorrupt, "no footer marker"},
		{"footer defers again", "atEnd", func(b built) []byte { return put64(b.file, b.footerAt+56, gdAtEnd) }, false, blockmap.ErrCorrupt, "also says"},
		{"EOS marker not zero", "atEnd", func(b built) []byte { return put32(b.file, b.footerAt+512, 9) }, false, blockmap.ErrCorrupt, "end-of-stream"},
		{"no room for a footer", "atEnd", func(b built) []byte { return b.file[:1024] }, false, blockmap.ErrCorrupt, "cannot hold"},
		{"stream cut short", "atEnd", func(b built) []byte { return b.file[:b.grainAt[6]+700] }, false, blockmap.ErrCorrupt,
			"truncated: a streamOptimized image whose grain directory is at the end must end with a footer marker"},
		{"end-of-stream marker cut off", "atEnd", func(b built) []byte { return b.file[:len(b.file)-512] }, false, blockmap.ErrCorrupt,
			"truncated: a streamOptimized image whose grain directory is at the end must end with a footer marker, the footer and an end-of-stream marker, " +
				"but the last 1536 bytes (from offset " + fmt.Sprint(ae.footerAt-1024) + "; the file is " + fmt.Sprint(ae.footerAt+512) + " bytes) hold grain or table data, then a footer marker, then a KDMV header"},
		{"footer version 9", "atEnd", func(b built) []byte { return put32(b.file, b.footerAt+4, 9) }, false, blockmap.ErrUnsupported, "version 9"},

		// Grain directory and tables.
		{"GD entry past the end", "sparse", func(b built) []byte { return put32(b.file, b.gdAt+4, 1<<30) }, false, blockmap.ErrCorrupt, "grain directory entry 1"},
		{"GD entry at the GD", "sparse", func(b built) []byte { return put32(b.file, b.gdAt, uint32(b.gdAt/512)) }, false, blockmap.ErrCorrupt, "inside the grain directory"},
		{"GD entry at the descriptor", "stream", func(b built) []byte { return put32(b.file, b.gdAt, 1) }, false, blockmap.ErrCorrupt, "inside the embedded descriptor"},
		{"GT entry past the end", "sparse", func(b built) []byte { return put32(b.file, b.gtAt[1]+4, 1<<30) }, true, blockmap.ErrCorrupt, "grain table 1 entry 1 (grain 5, LBA 40)"},
		{"compressed GT entry past the end", "stream", func(b built) []byte { return put32(b.file, b.gtAt[0], 1<<30) }, true, blockmap.ErrCorrupt, "past the end"},
		{"GT entry at a grain table", "stream", func(b built) []byte { return put32(b.file, b.gtAt[0], uint32(b.gtAt[1]/512)) }, true, blockmap.ErrCorrupt, "grain marker says LBA"},

		// Grains.
		{"marker LBA", "stream", func(b built) []byte { return put64(b.file, b.grainAt[2], 999) }, true, blockmap.ErrCorrupt, "grain 2 (LBA 16) at offset"},
		{"marker size 0", "stream", func(b built) []byte { return put32(b.file, b.grainAt[2]+8, 0) }, true, blockmap.ErrCorrupt, "marker stands where the grain belongs"},
		{"GT entry at a GT marker", "atEnd", func(b built) []byte { return put32(b.file, b.gtAt[0], uint32(b.gtAt[0]/512-1)) }, true, blockmap.ErrCorrupt, "a grain table marker stands where"},
		{"marker size beyond two grains", "stream", func(b built) []byte { return put32(b.file, b.grainAt[2]+8, 3*testGrain) }, true, blockmap.ErrCorrupt, "more than two grains"},
		{"marker size past the member", "atEnd", func(b built) []byte { return put32(b.file, b.grainAt[11]+8, 2*testGrain) }, true, blockmap.ErrCorrupt, "runs past the end of the member"},
		{"truncated grain", "stream", func(b built) []byte { return b.file[:b.grainAt[12]+20] }, true, blockmap.ErrCorrupt, "grain 12"},
		{"damaged deflate data", "stream", func(b built) []byte {
			for i := int64(14); i < 40; i++ {
				b.file[b.grainAt[4]+i] ^= 0x5a
			}
			return b.file
		}, true, blockmap.ErrCorrupt, "grain 4"},
		{"decompression bomb", "stream", func(b built) []byte {
			// 4 MiB of zeros deflate to about 4 KiB, within qemu's
			// two-grain bound for a 4 KiB grain.
			return replaceGrain(b, 5, 5*8, zlibOf(make([]byte, 4<<20)))
		}, true, blockmap.ErrCorrupt, "inflates to more than the grain size"},
		{"short grain", "stream", func(b built) []byte {
			return replaceGrain(b, 5, 5*8, zlibOf(make([]byte, testGrain-512)))
		}, true, blockmap.ErrCorrupt, "inflates to only 3584 of 4096"},
		{"last grain shorter than the disk's end", "stream", func(b built) []byte {
			return replaceGrain(b, 12, 12*8, zlibOf(make([]byte, 512)))
		}, true, blockmap.ErrCorrupt, "inflates to only 512"},

		// Embedded descriptors.
		{"embedded parent", "stream", func(b built) []byte {
			d := "# Disk DescriptorFile\nparentCID=0badf00d\nparentFileNameHint=\"base.vmdk\"\ncreateType=\"streamOptimized\"\n"
			clear(b.file[512:1024])
			copy(b.file[512:], d)
			return b.file
		}, false, blockmap.ErrUnsupported, `delta disk; parent "base.vmdk"`},
		{"no embedded descriptor", "sparse", func(b built) []byte { return put64(b.file, 28, 0) }, false, blockmap.ErrUnsupported, "no embedded descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bs[tc.base]
			b.file = append([]byte(nil), b.file...)
			f := tc.mutate(b)

			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			im, err := Open(bytes.NewReader(f), int64(len(f)), Options{Name: "bad.vmdk"})
			if err == nil {
				if !tc.atRead {
					t.Fatalf("Open succeeded (%s); want an error", im.Format())
				}
				buf := make([]byte, im.Size())
				_, err = blockmap.ReadAt(im, buf, 0)
			} else if tc.atRead {
				t.Fatalf("Open: %v; want it to succeed and the read to fail", err)
			}
			runtime.ReadMemStats(&ms)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), "bad.vmdk") {
				t.Fatalf("error %q; want %v mentioning %q and the disk's name", err, tc.want, tc.text)
			}
			if alloc := ms.TotalAlloc - before; alloc > 8<<20 {
				t.Fatalf("allocated %d bytes on a corrupt image", alloc)
			}
		})
	}
}

// TestTruncatedStream cuts short a stream in the ovftool layout (grain
// directory at the end), as an interrupted download or export leaves it:
// the error says the image is truncated and what its end holds instead.
func TestTruncatedStream(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(3)).Read(data[:len(data)/2]) // the second half is a hole
	var file bytes.Buffer
	if err := vmdkwriter.Write(&file, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	whole := file.Bytes()
	if _, err := Open(bytes.NewReader(whole), int64(len(whole)), Options{Name: "disk1.vmdk"}); err != nil {
		t.Fatalf("the whole stream: %v", err)
	}
	const want = "vmdk: disk1.vmdk: truncated: a streamOptimized image whose grain directory is at the end must end with " +
		"a footer marker, the footer and an end-of-stream marker, but the last 1536 bytes"
	for _, tc := range []struct {
		name string
		size int
		hold string
	}{
		{"inside the grains", len(whole)/3/512*512 + 77, "(from offset %d; the file is %d bytes, padded with zeros to a whole sector as qemu reads it) hold grain or table data"},
		{"on a sector boundary", len(whole) / 3 / 512 * 512, "(from offset %d; the file is %d bytes) hold grain or table data"},
		// The end of the last grain table (entries of the hole), the
		// directory's marker and the directory.
		{"before the footer marker", len(whole) - 1536, "(from offset %d; the file is %d bytes) hold zeros, then a grain directory marker, then grain or table data"},
		{"before the end-of-stream marker", len(whole) - 512, "(from offset %d; the file is %d bytes) hold grain or table data, then a footer marker, then a KDMV header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := whole[:tc.size]
			_, err := Open(bytes.NewReader(cut), int64(len(cut)), Options{Name: "disk1.vmdk"})
			at := (len(cut)+511)/512*512 - 1536
			if full := want + " " + fmt.Sprintf(tc.hold, at, len(cut)) + ": "; err == nil || !errors.Is(err, blockmap.ErrCorrupt) || !strings.HasPrefix(err.Error(), full) {
				t.Fatalf("Open = %v\nwant ErrCorrupt starting %q", err, full)
			}
			t.Logf("Open: %v", err)
		})
	}
}

// TestMemberBounds checks that nothing reads outside [0, size) of the
// member, with a reader that fails such reads loudly, on every layout.
func TestMemberBounds(t *testing.T) {
	for name, b := range bases() {
		t.Run(name, func(t *testing.T) {
			r := &boundedReader{t: t, b: b.file}
			im, err := Open(r, int64(len(b.file)), Options{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, im.Size())
			if _, err := blockmap.ReadAt(im, buf, 0); err != nil {
				t.Fatal(err)
			}
			want := pattern(12*testGrain+1024, testGrain, 3)
			if !bytes.Equal(buf, want) {
				t.Fatal("decoded disk differs from the one built")
			}
		})
	}
}

type boundedReader struct {
	t *testing.T
	b []byte
}

func (r *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(r.b)) {
		r.t.Errorf("read of %d bytes at %d outside the %d-byte member", len(p), off, len(r.b))
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}
