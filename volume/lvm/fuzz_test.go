package lvm

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

// fuzzDisk is a disk of size bytes made of a fuzz input: its last
// tailSize bytes are the disk's last bytes, the rest its first bytes, and
// zeros between. Inputs stay a few KiB, which keeps the fuzzer fast (it
// minimises every new input it finds).
type fuzzDisk struct {
	head, tail []byte
	size       int64
}

const (
	tailSize     = 1024
	fuzzDiskSize = 8 << 20 // smallPV's size
)

func newFuzzDisk(data []byte, size int64) fuzzDisk {
	d := fuzzDisk{head: data, size: size}
	if len(data) > tailSize {
		d.head, d.tail = data[:len(data)-tailSize], data[len(data)-tailSize:]
	}
	if int64(len(d.head)) > size-int64(len(d.tail)) {
		d.head = d.head[:size-int64(len(d.tail))]
	}
	return d
}

func (d fuzzDisk) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(b)
	if int64(n) > d.size-off {
		n = int(d.size - off)
	}
	clear(b[:n])
	if off < int64(len(d.head)) {
		copy(b[:n], d.head[off:])
	}
	tailOff := d.size - int64(len(d.tail))
	if end := off + int64(n); end > tailOff {
		from := max(off, tailOff)
		copy(b[from-off:n], d.tail[from-tailOff:])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzInput is the inverse of newFuzzDisk for a seed image.
func fuzzInput(img []byte) []byte {
	head := img[:len(img)-tailSize]
	for len(head) > 0 && head[len(head)-1] == 0 {
		head = head[:len(head)-1]
	}
	return append(bytes.Clone(head), img[len(img)-tailSize:]...)
}

// walkVGs opens every volume the metadata lets open and reads its ends
// and a piece across its first boundary.
func walkVGs(t *testing.T, vgs []*VG) {
	for _, vg := range vgs {
		for _, lv := range vg.LVs {
			rd, err := lv.Open()
			if err != nil {
				continue
			}
			b := make([]byte, 4096)
			for _, off := range []int64{0, rd.Size() - 4096, rd.Size() / 2, rd.Size() - 1} {
				if off < 0 {
					continue
				}
				n, _ := rd.ReadAt(b, off)
				if n < 0 || n > len(b) || int64(n) > rd.Size()-off {
					t.Fatalf("%s: ReadAt(%d) = %d", lv.Name, off, n)
				}
			}
		}
	}
}

func FuzzReadPV(f *testing.F) {
	img, _ := smallPV(f)
	if len(img) != fuzzDiskSize {
		f.Fatalf("seed of %d bytes", len(img))
	}
	f.Add(fuzzInput(img))
	f.Fuzz(func(t *testing.T, data []byte) {
		readAndWalk(t, data)
		// The same with the CRCs made right, so that mutations reach
		// the checks behind them.
		readAndWalk(t, fixCRCs(data))
	})
}

func readAndWalk(t *testing.T, data []byte) {
	pv, err := ReadPV(newFuzzDisk(data, fuzzDiskSize), fuzzDiskSize)
	if err != nil {
		return
	}
	vgs, _ := Assemble([]*PV{pv})
	walkVGs(t, vgs)
}

// fixCRCs returns a copy of a fuzz input whose label, first metadata area
// header and metadata text (where they lie in its head, as in the seed)
// carry the CRCs they should.
func fixCRCs(data []byte) []byte {
	b := bytes.Clone(data)
	head := b
	if len(b) > tailSize {
		head = b[:len(b)-tailSize]
	}
	le := binary.LittleEndian
	for s := 0; (s+1)*512 <= len(head) && s < labelScan; s++ {
		if sec := head[s*512 : (s+1)*512]; string(sec[:8]) == labelID {
			le.PutUint32(sec[16:], lvmCRC(initialCRC, sec[20:]))
		}
	}
	const area = 4096
	if len(head) < area+mdaHeaderSize {
		return b
	}
	h := head[area : area+mdaHeaderSize]
	off, size := le.Uint64(h[40:]), le.Uint64(h[48:])
	if off < uint64(len(head)) && size <= uint64(len(head)) && area+off+size <= uint64(len(head)) {
		le.PutUint32(h[56:], lvmCRC(initialCRC, head[area+off:area+off+size]))
	}
	le.PutUint32(h[0:], lvmCRC(initialCRC, h[4:]))
	return b
}

// zeroDisk is a PV's bytes for fuzzing the text alone.
type zeroDisk struct{}

func (zeroDisk) ReadAt(b []byte, off int64) (int, error) {
	clear(b)
	return len(b), nil
}

func FuzzParseConfig(f *testing.F) {
	img, e := smallPV(f)
	f.Add(mdaText(f, img))
	backup := e.dir + "/backup.txt"
	e.lvm("vgcfgbackup", "-f", backup, "vgs")
	b, err := os.ReadFile(backup)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, text string) {
		root, err := parseConfig(text)
		if err != nil {
			return
		}
		vg, err := parseVG(root)
		if err != nil {
			return
		}
		pvs := map[string]*PV{}
		for _, p := range vg.pvs {
			pvs[p.uuid] = &PV{UUID: p.uuid, Size: 64 << 20, r: zeroDisk{}}
		}
		walkVGs(t, []*VG{build(vg, pvs)})
	})
}

// TestMutatedPVs runs the fuzz checks over mutations of a real PV, so that
// `make test` exercises hostile metadata too.
func TestMutatedPVs(t *testing.T) {
	img, _ := smallPV(t)
	in := fuzzInput(img)
	text := mdaText(t, img)
	seed := uint64(16)
	next := func(n int) int {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return int(seed % uint64(n))
	}
	for i := 0; i < 2000; i++ {
		b := bytes.Clone(in)
		for j := next(6) + 1; j > 0; j-- {
			b[next(len(b))] = byte(next(256))
		}
		readAndWalk(t, b)
		readAndWalk(t, fixCRCs(b))
		tb := []byte(text)
		for j := next(4) + 1; j > 0; j-- {
			tb[next(len(tb))] = byte(next(256))
		}
		if root, err := parseConfig(string(tb)); err == nil {
			if vg, err := parseVG(root); err == nil {
				pvs := map[string]*PV{}
				for _, p := range vg.pvs {
					pvs[p.uuid] = &PV{UUID: p.uuid, Size: 64 << 20, r: zeroDisk{}}
				}
				walkVGs(t, []*VG{build(vg, pvs)})
			}
		}
	}
}
