package codec

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"math/rand"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func sample(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b[:n/2]) // half random, half zeros
	return b
}

func zlibOf(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestZlib(t *testing.T) {
	want := sample(65536)
	enc := zlibOf(t, want)
	for name, tc := range map[string]struct {
		src     []byte
		dstLen  int
		wantErr error
	}{
		"exact":    {enc, len(want), nil},
		"overflow": {enc, len(want) - 1, ErrOverflow},
		"short":    {enc, len(want) + 1, ErrShort},
	} {
		t.Run(name, func(t *testing.T) {
			dst := make([]byte, tc.dstLen)
			n, err := Zlib(dst, tc.src)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			m := min(n, len(want))
			if !bytes.Equal(dst[:m], want[:m]) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
	t.Run("bad checksum", func(t *testing.T) {
		bad := bytes.Clone(enc)
		bad[len(bad)-1] ^= 1
		if _, err := Zlib(make([]byte, len(want)), bad); err == nil {
			t.Fatal("corrupt Adler-32 accepted")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if _, err := Zlib(make([]byte, 512), []byte("not zlib at all")); err == nil {
			t.Fatal("garbage accepted")
		}
	})
}

func TestDeflateIgnoresTrailingBytes(t *testing.T) {
	want := sample(65536)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 6)
	w.Write(want)
	w.Close()
	span := append(buf.Bytes(), []byte("next cluster's bytes")...)
	dst := make([]byte, len(want))
	if _, err := Deflate(dst, span); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, want) {
		t.Fatal("decoded bytes differ")
	}
}

func TestZstdStopsAtUnit(t *testing.T) {
	want := sample(65536)
	enc, _ := zstd.NewWriter(nil)
	frame := enc.EncodeAll(want, nil)
	span := append(frame, 0xde, 0xad, 0xbe, 0xef)
	dst := make([]byte, len(want))
	if _, err := Zstd(dst, span); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, want) {
		t.Fatal("decoded bytes differ")
	}
	if _, err := Zstd(make([]byte, len(want)+1), frame); !errors.Is(err, ErrShort) {
		t.Fatalf("short output: err = %v", err)
	}
}

// The pools must be safe when many units are decoded at once.
func TestConcurrentPools(t *testing.T) {
	want := sample(65536)
	enc := zlibOf(t, want)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]byte, len(want))
			for range 50 {
				if _, err := Zlib(dst, enc); err != nil || !bytes.Equal(dst, want) {
					t.Error("concurrent decode failed", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzZlib feeds arbitrary bytes to every decoder. Zlib and Deflate must
// also agree with their pure Go paths (see checkAgainstGo): under the
// libdeflate tag that is the C inflater against Go, otherwise a tautology.
func FuzzZlib(f *testing.F) {
	f.Add(zlibOf(nil, sample(4096)))
	f.Add(deflateOf(sample(4096)))
	f.Add(fixedBlock('a', 257, 0, 256)) // "aaaa" in a fixed-Huffman block
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, size := range []int{64, 4096} {
			checkAgainstGo(t, "Zlib", Zlib, goZlib, size, src)
			checkAgainstGo(t, "Deflate", Deflate, goDeflate, size, src)
		}
		Zstd(make([]byte, 4096), src)
	})
}
