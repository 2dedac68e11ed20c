package gzindex

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

func deflateStd(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func deflateKlaus(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := kflate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rawCheck(data []byte) *RawCheck {
	return &RawCheck{CRC32: crc32.ChecksumIEEE(data), Size: int64(len(data))}
}

// TestRawDeflate indexes raw deflate streams of every encoder and level
// and reads them back at random offsets, also through a persisted index.
func TestRawDeflate(t *testing.T) {
	n := scaled(8 << 20)
	cases := []struct {
		name string
		data []byte
		enc  func(testing.TB, []byte, int) []byte
		lvl  int
	}{
		{"real/std-6", realBytes(t, n), deflateStd, 6},
		{"real/std-0", realBytes(t, n/4), deflateStd, 0},
		{"real/klaus-1", realBytes(t, n), deflateKlaus, 1},
		{"random/std-9", randomBytes(n/2, 1), deflateStd, 9},
		{"text/huffman-only", textBytes(n/2, 2), deflateStd, flate.HuffmanOnly},
		{"empty", nil, deflateStd, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z := c.enc(t, c.data, c.lvl)
			ix := buildIndex(t, z, Options{Span: MinSpan * 4, Raw: rawCheck(c.data)})
			if !ix.Raw() || ix.Size() != int64(len(c.data)) || ix.Members() != 1 {
				t.Fatalf("Raw %v Size %d Members %d", ix.Raw(), ix.Size(), ix.Members())
			}
			if len(c.data) == 0 {
				return
			}
			checkReads(t, NewReader(bytes.NewReader(z), int64(len(z)), ix), c.data, 200, 70000, 3)
			enc, err := ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if enc[len(encMagic)] != encVersionKind || enc[len(encMagic)+1] != kindRaw {
				t.Fatalf("a raw index is encoded as version %d kind %d", enc[len(encMagic)], enc[len(encMagic)+1])
			}
			back, err := Unmarshal(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Raw() || !back.Matches(bytes.NewReader(z), int64(len(z))) {
				t.Fatal("the unmarshalled index lost its mode or identity")
			}
			checkReads(t, NewReader(bytes.NewReader(z), int64(len(z)), back), c.data, 50, 70000, 4)
		})
	}
}

// TestRawGzipEncodingUnchanged checks that gzip indexes keep the version 1
// encoding that earlier releases persisted.
func TestRawGzipEncodingUnchanged(t *testing.T) {
	data := textBytes(300<<10, 5)
	ix := buildIndex(t, gzipStd(t, data, 6), Options{})
	enc, _ := ix.MarshalBinary()
	if enc[len(encMagic)] != encVersion {
		t.Fatalf("gzip index encoded as version %d", enc[len(encMagic)])
	}
	if back, err := Unmarshal(enc); err != nil || back.Raw() {
		t.Fatalf("Unmarshal: raw %v, %v", back != nil && back.Raw(), err)
	}
	// A version 2 encoding of an unknown kind is refused.
	enc = append([]byte(nil), enc[:len(enc)-32]...)
	enc = append(enc[:len(encMagic)], append([]byte{encVersionKind, 7}, enc[len(encMagic)+1:]...)...)
	enc = appendDigest(enc)
	if _, err := Unmarshal(enc); !errors.Is(err, ErrIndex) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func appendDigest(b []byte) []byte {
	h := sha256.Sum256(b)
	return append(b, h[:]...)
}

// TestRawDeflateRefused checks the verification a zip's records allow.
func TestRawDeflateRefused(t *testing.T) {
	data := textBytes(200<<10, 9)
	z := deflateStd(t, data, 6)
	good := rawCheck(data)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		return c
	}
	cases := []struct {
		name string
		z    []byte
		chk  RawCheck
		want error
	}{
		{"wrong CRC", z, RawCheck{good.CRC32 ^ 1, good.Size}, ErrChecksum},
		{"wrong size", z, RawCheck{good.CRC32, good.Size + 1}, ErrChecksum},
		{"size modulo 2^32", z, RawCheck{good.CRC32, good.Size + 1<<32}, ErrChecksum},
		{"truncated", z[:len(z)-10], *good, ErrTruncated},
		{"empty", nil, *good, ErrTruncated},
		{"trailing bytes", concat(z, []byte{0, 0}), *good, ErrTrailingData},
		{"corrupt", flip(z, len(z)/2), *good, nil},
		{"gzip framing", gzipStd(t, data, 6), *good, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildContext(t.Context(), bytes.NewReader(c.z), int64(len(c.z)), Options{Raw: &c.chk})
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTrailingData) {
				t.Fatalf("got %v, want a sentinel", err)
			}
		})
	}
}

// TestRawDeflateFromZip indexes the deflate streams the zip tool writes,
// located by hand in its output (one member, no extra fields assumed).
func TestRawDeflateFromZip(t *testing.T) {
	zipTool := testutil.RequireTool(t, "zip")
	dir := t.TempDir()
	data := realBytes(t, scaled(6<<20))
	if err := os.WriteFile(filepath.Join(dir, "disk.vmdk"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"-1", "-6", "-9"} {
		t.Run(level, func(t *testing.T) {
			out := filepath.Join(dir, "out"+level+".zip")
			cmd := exec.Command(zipTool, "-q", "-X", level, out, "disk.vmdk")
			cmd.Dir = dir
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("zip: %v\n%s", err, b)
			}
			zb, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			le := binary.LittleEndian
			if le.Uint32(zb) != 0x04034b50 || le.Uint16(zb[8:]) != 8 {
				t.Fatal("the zip does not start with a deflated member")
			}
			crc := le.Uint32(zb[14:])
			csize := int64(le.Uint32(zb[18:]))
			start := 30 + int64(le.Uint16(zb[26:])) + int64(le.Uint16(zb[28:]))
			z := zb[start : start+csize]
			ix := buildIndex(t, z, Options{Span: MinSpan * 8, Raw: &RawCheck{crc, int64(len(data))}})
			checkReads(t, NewReader(bytes.NewReader(z), int64(len(z)), ix), data, 200, 70000, 5)
		})
	}
}

// FuzzBuildRaw indexes arbitrary bytes as a raw deflate stream whose
// recorded CRC-32 and size are those of compress/flate's decoding, when it
// decodes: Build must not panic, must fail only with a sentinel, and where
// it succeeds the Reader must return compress/flate's bytes.
func FuzzBuildRaw(f *testing.F) {
	text := textBytes(20<<10, 1)
	f.Add(deflateStd(f, text, 6))
	f.Add(deflateStd(f, text[:3000], 0))
	f.Add(deflateKlaus(f, text, 1))
	f.Add(deflateStd(f, nil, 6))
	f.Fuzz(func(t *testing.T, z []byte) {
		want, ferr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(z)), 4<<20))
		chk := RawCheck{CRC32: crc32.ChecksumIEEE(want), Size: int64(len(want))}
		ix, err := BuildContext(t.Context(), bytes.NewReader(z), int64(len(z)), Options{Span: MinSpan, Raw: &chk})
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("Build: %v", err)
			}
			return
		}
		if ferr != nil || len(want) >= 4<<20 {
			return // compress/flate disagrees or gave up; nothing to compare
		}
		got := make([]byte, ix.Size())
		if n, err := NewReader(bytes.NewReader(z), int64(len(z)), ix).ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) || !bytes.Equal(got, want) {
			t.Fatalf("Reader: %d bytes, %v; differs from compress/flate", n, err)
		}
	})
}
