package manifest

import (
	"bytes"
	"fmt"
	"io"
)

// Bounds on hostile input. Real manifests are a few hundred bytes and list
// a handful of files (a disk split into 1 GiB chunks adds one line per
// chunk); real certificate files hold one to three certificates. The
// bounds are far above that and far below what would hurt the process.
const (
	// MaxManifestSize is the largest .mf Parse reads (16 MiB).
	MaxManifestSize = 16 << 20
	// MaxEntries is the most digest lines Parse keeps; a 100 TiB
	// disk in 1 GiB chunks needs about 100 000.
	MaxEntries = 1 << 17
	// MaxWarnings is the most warnings kept per manifest or certificate
	// file; the rest are counted in a final summary warning.
	MaxWarnings = 100
	// MaxCertSize is the largest .cert ParseCert reads (4 MiB).
	MaxCertSize = 4 << 20
	// MaxCertificates is the most certificates ParseCert parses from one
	// .cert: the signer and its intermediates.
	MaxCertificates = 32
	// MaxSignatureSize is the longest signature accepted, in bytes: that of
	// a 16384-bit RSA key. Every ECDSA signature is far shorter.
	MaxSignatureSize = 2048
)

// readBounded reads all of r, failing with ErrTooLarge as soon as more than
// limit bytes arrive, so a hostile stream costs at most limit+1 bytes.
// Readers that know their length (an archive member's io.SectionReader, a
// bytes.Reader) are read into one buffer of that size, without regrowing.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	var hint int64
	switch s := r.(type) {
	case interface{ Len() int }:
		hint = int64(s.Len())
	case interface{ Size() int64 }:
		hint = s.Size()
	}
	var buf bytes.Buffer
	buf.Grow(int(min(max(hint, 0), limit) + bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, fmt.Errorf("manifest: reading the %s: %w", what, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("manifest: %w: the %s has more than %d bytes", ErrTooLarge, what, limit)
	}
	return buf.Bytes(), nil
}
