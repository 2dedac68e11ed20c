package logical

import (
	"bytes"
	"compress/gzip"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestDecompressArchive reads a whole gzip-compressed file at random
// offsets, saves its index, and loads it on the next open.
func TestDecompressArchive(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	plain := make([]byte, 5<<20) // more than two checkpoints' span
	for i := range plain {
		plain[i] = byte(rng.Intn(16)) // compressible, not trivially
	}
	gz := gzipped(t, plain)
	cache := t.TempDir()
	opts := ArchiveOptions{CacheDir: cache, Identity: []byte("id-1")}
	for round := range 2 {
		a, err := Decompress(context.Background(), bytes.NewReader(gz), int64(len(gz)), opts)
		if err != nil {
			t.Fatal(err)
		}
		if a.FromCache != (round == 1) || a.Size != int64(len(plain)) || a.Compression != CompressionGzip {
			t.Fatalf("round %d: FromCache %v, size %d, compression %q", round, a.FromCache, a.Size, a.Compression)
		}
		for range 40 {
			off := rng.Int63n(int64(len(plain)))
			n := rng.Intn(70000)
			got := make([]byte, n)
			k, err := a.ReadAt(got, off)
			want := plain[off:min(off+int64(n), int64(len(plain)))]
			if !bytes.Equal(got[:k], want) || (k < n && err == nil) {
				t.Fatalf("round %d: ReadAt(%d, %d) = %d, %v: wrong bytes", round, n, off, k, err)
			}
		}
	}
	// Another identity (the file changed) builds its own.
	a, err := Decompress(context.Background(), bytes.NewReader(gz), int64(len(gz)), ArchiveOptions{CacheDir: cache, Identity: []byte("id-2")})
	if err != nil || a.FromCache {
		t.Fatalf("another identity: FromCache %v, %v", a != nil && a.FromCache, err)
	}
	// A damaged saved index is removed and rebuilt.
	files, _ := filepath.Glob(filepath.Join(cache, "gzarchive-*"))
	for _, f := range files {
		os.WriteFile(f, []byte("garbage"), 0o600)
	}
	a, err = Decompress(context.Background(), bytes.NewReader(gz), int64(len(gz)), opts)
	if err != nil || a.FromCache {
		t.Fatalf("damaged index: FromCache %v, %v", a != nil && a.FromCache, err)
	}
}

func TestDecompressRefuses(t *testing.T) {
	gz := gzipped(t, bytes.Repeat([]byte("ovfmount"), 10000))
	for name, b := range map[string][]byte{
		"truncated":      gz[:len(gz)/2],
		"flipped CRC":    append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, gz[len(gz)-4], gz[len(gz)-3], gz[len(gz)-2], gz[len(gz)-1]),
		"only the magic": {0x1f, 0x8b},
		"not gzip":       []byte("plain text"),
	} {
		if _, err := Decompress(context.Background(), bytes.NewReader(b), int64(len(b)), ArchiveOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Decompress(ctx, bytes.NewReader(gz), int64(len(gz)), ArchiveOptions{}); err == nil {
		t.Errorf("a cancelled build succeeded")
	}
}

// TestDecompressXZAndZstd opens whole xz and zstd streams by their first
// bytes and reads them back.
func TestDecompressXZAndZstd(t *testing.T) {
	plain := bytes.Repeat([]byte("an appliance, compressed whole\n"), 40000)
	var xzBuf bytes.Buffer
	xw, err := xz.NewWriter(&xzBuf)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(plain)
	xw.Close()
	enc, _ := zstd.NewWriter(nil)
	zst := enc.EncodeAll(plain, nil)
	for want, b := range map[Compression][]byte{CompressionXZ: xzBuf.Bytes(), CompressionZstd: zst} {
		a, err := Decompress(context.Background(), bytes.NewReader(b), int64(len(b)), ArchiveOptions{Identity: []byte("id")})
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if a.Compression != want || a.Size != int64(len(plain)) || a.Units < 1 || a.Identity == nil {
			t.Errorf("%s: compression %q, size %d, units %d", want, a.Compression, a.Size, a.Units)
		}
		got := make([]byte, 5000)
		if n, err := a.ReadAt(got, 700000); n != len(got) || err != nil || !bytes.Equal(got, plain[700000:705000]) {
			t.Errorf("%s: ReadAt = %d, %v", want, n, err)
		}
		// Damage is an error, never other bytes.
		bad := append([]byte{}, b...)
		bad[len(bad)/2] ^= 0xff
		if a, err := Decompress(context.Background(), bytes.NewReader(bad), int64(len(bad)), ArchiveOptions{}); err == nil {
			if _, err := a.ReadAt(make([]byte, len(plain)), 0); err == nil {
				t.Errorf("%s: a damaged stream read whole without an error", want)
			}
		}
	}
}
