package qcow2

import (
	"context"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ovfmount/ovfmount/route"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
	"github.com/ovfmount/ovfmount/vdisk/codec"
)

// decoder decodes the compressed clusters of one image. It is a separate
// pointer, rather than the Image itself, so that the Image does not export
// a DecodeUnit method; the shared cache keys decoded clusters by it.
type decoder struct{ img *Image }

// spanPool holds read buffers for compressed records. A record spans at
// most two clusters (4 MiB), so buffers are bounded and reused.
var spanPool sync.Pool // *[]byte

func getSpan(n int) *[]byte {
	if p, ok := spanPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// span checks where cluster u's record lies and reads it with one bounded
// read, into a buffer to return to spanPool.
func (d *decoder) span(ctx context.Context, u blockmap.Unit) (*[]byte, error) {
	img := d.img
	cs, c := img.clusterSize, u.Off>>img.clusterBits
	if u.Phys < 0 || u.Span <= 0 || u.Span > 2*cs || u.Phys > img.fileSize-u.Span {
		return nil, errCorrupt(img.name, "compressed cluster %d (virtual offset %d): record at %d (%d bytes) is outside the file (%d)",
			c, u.Off, u.Phys, u.Span, img.fileSize)
	}
	bp := getSpan(int(u.Span))
	if _, err := route.ReadAt(ctx, img.src, *bp, u.Phys); err != nil {
		spanPool.Put(bp)
		return nil, fmt.Errorf("qcow2: %s: reading compressed cluster %d (virtual offset %d) at host offset %d (%d bytes): %w",
			img.name, c, u.Off, u.Phys, u.Span, err)
	}
	return bp, nil
}

// CanPrefix implements blockmap.PrefixDecoder: a zlib cluster's head may
// be decoded alone when the image's bytes are proven (route.Proven), as a
// VMDK grain's may. Raw deflate carries no checksum, but a whole decode is
// still a check: it fails a stream that runs past its record, where
// libdeflate, which cannot be told to stop at the end of its input, may
// have decoded a head's last bytes from the zeros it reads past it. From
// an unverified image such a cluster must fail, as in qemu, not return
// those bytes. zstd's decoder cannot stop early.
func (d *decoder) CanPrefix() bool { return !d.img.zstd && route.Proven(d.img.src) }

// DecodePrefix inflates the first len(dst) bytes of a zlib cluster of a
// proven image (see CanPrefix); the rest of the stream is decoded, and
// its record's framing checked, when the cluster is decoded whole. zstd
// clusters are always decoded whole (ok=false).
func (d *decoder) DecodePrefix(ctx context.Context, dst []byte, u blockmap.Unit) (bool, error) {
	img := d.img
	if !d.CanPrefix() || int64(u.Size) != img.clusterSize || len(dst) >= u.Size {
		return false, nil
	}
	bp, err := d.span(ctx, u)
	if err != nil {
		return false, err
	}
	defer spanPool.Put(bp)
	return codec.DeflatePrefix(dst, *bp), nil
}

// DecodeUnit reads the record with one bounded read and decodes exactly
// one cluster. Like qemu, it accepts a deflate stream that still holds data
// once the cluster is full (records are sector-granular, so the span
// carries the next record's head), but fails on short output and on a zstd
// frame that declares more than a cluster.
func (d *decoder) DecodeUnit(ctx context.Context, dst []byte, u blockmap.Unit) error {
	img := d.img
	cs := img.clusterSize
	if int64(len(dst)) != cs || int64(u.Size) != cs {
		return fmt.Errorf("qcow2: %s: decode buffer of %d bytes for a %d-byte cluster", img.name, len(dst), cs)
	}
	c := u.Off >> img.clusterBits
	bp, err := d.span(ctx, u)
	if err != nil {
		return err
	}
	defer spanPool.Put(bp)
	src := *bp
	var n int
	if img.zstd {
		if err := checkZstdFrame(src, cs); err != nil {
			return fmt.Errorf("qcow2: %s: compressed cluster %d (virtual offset %d, host offset %d): %v: %w",
				img.name, c, u.Off, u.Phys, err, blockmap.ErrCorrupt)
		}
		n, err = codec.Zstd(dst, src)
	} else {
		n, err = codec.Deflate(dst, src)
	}
	if n == len(dst) {
		// A full cluster is success, as in qemu; what follows it in the
		// span (codec.ErrOverflow or undecodable bytes) is not this
		// cluster's data.
		return nil
	}
	if err == nil {
		err = codec.ErrShort
	}
	return fmt.Errorf("qcow2: %s: compressed cluster %d (virtual offset %d, host offset %d, %d bytes): decoded %d of %d bytes: %w: %w",
		img.name, c, u.Off, u.Phys, u.Span, n, len(dst), err, blockmap.ErrCorrupt)
}

// checkZstdFrame refuses a first frame that declares more content than a
// cluster. qemu fails such a cluster (the frame cannot be fully flushed
// into it), and the codec, which stops at a full cluster, would not notice.
func checkZstdFrame(src []byte, cs int64) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil // not a frame header: the decoder reports it
	}
	if h.HasFCS && h.FrameContentSize > uint64(cs) {
		return fmt.Errorf("zstd frame declares %d bytes, more than the %d-byte cluster", h.FrameContentSize, cs)
	}
	return nil
}
