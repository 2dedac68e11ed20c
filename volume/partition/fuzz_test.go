package partition

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"testing"
)

// seedImages makes small (16 KiB) disks with the real tools: a GPT, an MBR
// with logical partitions, and a hybrid MBR.
func seedImages(t testing.TB) [][]byte {
	t.Helper()
	// Small inputs keep the fuzzer fast: it minimises every new input.
	gpt := newImage(t, 16<<10)
	sfdisk(t, gpt, `label: gpt
table-length: 4
first-lba: 3
start=3, size=8, type=U, name=esp
start=11, size=10, type=L, name=root, attrs=LegacyBIOSBootable
start=21, size=8, type=S
`)
	mbr := newImage(t, 16<<10)
	sfdisk(t, mbr, `label: dos
start=1, size=4, type=83, bootable
start=5, size=26, type=5
start=6, size=1, type=83
start=8, size=1, type=82
start=10, size=8, type=8e
`)
	hybrid := newImage(t, 16<<10)
	sfdisk(t, hybrid, "label: gpt\ntable-length: 4\nfirst-lba: 3\nstart=3, size=8, type=U\nstart=11, size=10, type=L\n")
	run(t, "", "sgdisk", "--hybrid=1:2", hybrid)
	var seeds [][]byte
	for _, p := range []string{gpt, mbr, hybrid} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// fuzzDisk is a disk of size bytes made of a fuzz input: its last
// tailSize bytes are the disk's last bytes (where a backup GPT lies), the
// rest its first bytes, and zeros between. Inputs stay a few KiB, which
// keeps the fuzzer fast (it minimises every new input it finds).
type fuzzDisk struct {
	head, tail []byte
	size       int64
}

const tailSize = 1024

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

// fuzzInput is the inverse of newFuzzDisk for a seed image: its first
// bytes without their trailing zeros, then its last tailSize bytes.
func fuzzInput(img []byte) []byte {
	head := img[:len(img)-tailSize]
	for len(head) > 0 && head[len(head)-1] == 0 {
		head = head[:len(head)-1]
	}
	return append(bytes.Clone(head), img[len(img)-tailSize:]...)
}

// checkRead reads a table and checks what any table must satisfy.
func checkRead(t *testing.T, r io.ReaderAt, size int64) {
	tab, err := Read(r, size)
	if err != nil {
		if tab != nil {
			t.Fatal("a table with an error")
		}
		return
	}
	seen := map[int]bool{}
	for _, p := range tab.Partitions {
		if p.Number < 1 || p.Number > maxPartNumber || seen[p.Number] {
			t.Fatalf("bad or repeated number %d", p.Number)
		}
		seen[p.Number] = true
		if p.Start < 0 || p.Size <= 0 || p.Start >= size || p.Size > size-p.Start {
			t.Fatalf("p%d [%d,+%d) outside a disk of %d", p.Number, p.Start, p.Size, size)
		}
	}
	if len(tab.Warnings) > 2*maxOverlapWarnings+300 {
		t.Fatalf("%d warnings", len(tab.Warnings))
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(fuzzInput(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The seeds' disk size, and a larger one where a GPT with
		// 4096-byte sectors can lie.
		checkRead(t, newFuzzDisk(data, 16<<10), 16<<10)
		checkRead(t, newFuzzDisk(data, 1<<20), 1<<20)
		// The same with the GPT CRCs made right, so that mutations
		// reach the checks behind them.
		checkRead(t, fixGPT(newFuzzDisk(data, 16<<10)), 16<<10)
	})
}

// fixGPT returns a copy of a 16 KiB fuzz disk whose primary and backup
// GPT headers (512-byte sectors) carry the CRCs they should.
func fixGPT(d fuzzDisk) io.ReaderAt {
	b := make([]byte, d.size)
	d.ReadAt(b, 0)
	le := binary.LittleEndian
	for _, lba := range []int64{1, d.size/512 - 1} {
		h := b[lba*512 : lba*512+512]
		hsize := le.Uint32(h[12:])
		if string(h[:8]) != gptSignature || hsize < gptHeaderSize || hsize > 512 {
			continue
		}
		start, n := le.Uint64(h[72:]), uint64(le.Uint32(h[80:]))
		if start < uint64(d.size/512) && n <= uint64(d.size)/gptEntrySize && start*512+n*gptEntrySize <= uint64(d.size) {
			le.PutUint32(h[88:], crc32.ChecksumIEEE(b[start*512:start*512+n*gptEntrySize]))
		}
		le.PutUint32(h[16:], 0)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
	}
	return bytes.NewReader(b)
}

// TestMutatedTables runs the fuzz checks over a few thousand mutations of
// the seed images, so that `make test` exercises hostile tables too.
func TestMutatedTables(t *testing.T) {
	seeds := seedImages(t)
	rng := rand.New(rand.NewSource(16))
	for i := 0; i < 3000; i++ {
		b := fuzzInput(seeds[i%len(seeds)])
		for j := rng.Intn(8) + 1; j > 0; j-- {
			// Mostly the first sectors, where the tables are.
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		checkRead(t, newFuzzDisk(b, 16<<10), 16<<10)
		checkRead(t, fixGPT(newFuzzDisk(b, 16<<10)), 16<<10)
	}
}
