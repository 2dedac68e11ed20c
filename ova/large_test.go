package ova

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeHugeOVA writes an archive whose middle member is bigger than 8 GiB
// into a sparse host file: only the headers and the small members take disk
// space. The size is stored as GNU base-256 or as a pax record, the two ways
// real producers get past ustar's 8 GiB limit.
func writeHugeOVA(t testing.TB, path string, bigSize int64, pax bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var t1 rawTar
	t1.file("appliance.ovf", []byte("<Envelope/>"))
	if pax {
		t1.pax(typeXHeader, "size", fmt.Sprint(bigSize))
		t1.header(hdr{name: "disk1.vmdk", size: 0})
	} else {
		field := make([]byte, 12)
		field[0] = 0x80
		for i, v := 11, bigSize; i > 0; i, v = i-1, v>>8 {
			field[i] = byte(v)
		}
		t1.header(hdr{name: "disk1.vmdk", magic: "gnu", sizeField: field})
	}
	if _, err := f.Write(t1.Bytes()); err != nil {
		t.Fatal(err)
	}
	dataOff := int64(t1.Len())
	// The member's first and last bytes, so reads at both ends are checkable.
	f.WriteAt([]byte("FIRST"), dataOff)
	f.WriteAt([]byte("LAST!"), dataOff+bigSize-5)
	var t2 rawTar
	t2.file("appliance.mf", []byte("SHA256(disk1.vmdk)= 00\n"))
	t2.end()
	padded, _ := paddedSize(bigSize)
	if _, err := f.WriteAt(t2.Bytes(), dataOff+padded); err != nil {
		t.Fatal(err)
	}
}

func TestHugeMember(t *testing.T) {
	const big = 9<<30 + 12345 // past 8 GiB, and not block-aligned
	for _, pax := range []bool{false, true} {
		t.Run(fmt.Sprintf("pax=%v", pax), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "huge.ova")
			writeHugeOVA(t, path, big, pax)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			start := time.Now()
			a, err := Open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("indexed a %.1f GiB archive in %v", float64(st.Size())/(1<<30), time.Since(start))
			if len(a.Warnings()) > 0 {
				t.Errorf("warnings: %v", a.Warnings())
			}
			m, ok := a.Lookup("disk1.vmdk")
			if !ok || m.Size != big {
				t.Fatalf("disk1.vmdk: found %v, size %d, want %d", ok, m.Size, int64(big))
			}
			buf := make([]byte, 5)
			if m.ReadAt(buf, 0); string(buf) != "FIRST" {
				t.Errorf("first bytes %q", buf)
			}
			if m.ReadAt(buf, big-5); string(buf) != "LAST!" {
				t.Errorf("last bytes %q", buf)
			}
			mf, ok := a.Lookup("appliance.mf")
			if !ok {
				t.Fatal("appliance.mf, after the big member, not found")
			}
			b := make([]byte, mf.Size)
			if _, err := mf.ReadAt(b, 0); err != nil || string(b) != "SHA256(disk1.vmdk)= 00\n" {
				t.Errorf("appliance.mf = %q, %v", b, err)
			}
		})
	}
}

// BenchmarkOpenManyMembers indexes an archive of 100 000 tiny members, the
// worst case for a header scan.
func BenchmarkOpenManyMembers(b *testing.B) {
	var t rawTar
	for i := range 100_000 {
		t.file(fmt.Sprintf("dir%03d/file%06d", i%1000, i), []byte("x"))
	}
	t.end()
	data := t.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := &countingReader{data: data}
		if _, err := Open(r, int64(len(data))); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.reads), "reads/op")
	}
}

type countingReader struct {
	data  []byte
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	n := copy(p, c.data[off:])
	return n, nil
}
