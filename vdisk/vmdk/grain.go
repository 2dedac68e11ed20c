package vmdk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ovfmount/ovfmount/internal/readat"
	"github.com/ovfmount/ovfmount/route"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
	"github.com/ovfmount/ovfmount/vdisk/codec"
)

// grainDecoder inflates the compressed grains of one extent placed at
// virtual offset base. Each extent of a disk has its own, so the shared
// cache's (Dec, ID) key stays unique even when two extents share a file.
type grainDecoder struct {
	sp   *sparse
	base int64
}

// recordPool holds read buffers for compressed records. A record is read
// once per decode and dropped, so pooling removes an allocation of about a
// grain per decode.
var recordPool sync.Pool // *[]byte

// firstRead is how many record bytes are fetched in the first ReadAt. Real
// grains (binaries, file systems) compress to well under half a grain, so
// half a grain holds most records whole; a larger record costs one more
// bounded read. Reading a whole grain's worth every time would copy two to
// three times the record size, which measured as a tenth of the CPU of a
// sequential read.
func (s *sparse) firstRead() int64 {
	return s.recordHeader() + s.grain/2 + 512
}

// grainRecord is a grain's compressed record, read and framing-checked.
type grainRecord struct {
	bp   *[]byte // pooled buffer holding it: return it to recordPool
	z    []byte  // the zlib stream
	rel  int64   // the grain's offset in the extent
	fail func(format string, args ...any) error
}

// record reads the record of grain u, for a decode into n bytes, and checks
// its framing: the marker's LBA must be the grain's, and its size must fit
// in the member and in qemu's two-grain bound.
func (d *grainDecoder) record(ctx context.Context, u blockmap.Unit, n int) (grainRecord, error) {
	s := d.sp
	rel := u.Off - d.base
	if int64(n) != s.grain || rel < 0 || rel >= s.size || rel%s.grain != 0 || u.Phys <= 0 || u.Phys >= s.rsize {
		return grainRecord{}, fmt.Errorf("vmdk: %s: unit at %d (record at %d, %d bytes) is not a grain of this extent: %w",
			s.name, u.Off, u.Phys, n, blockmap.ErrCorrupt)
	}
	gi, lba, phys := rel/s.grain, rel/sectorSize, u.Phys
	fail := func(format string, args ...any) error {
		return fmt.Errorf("vmdk: %s: grain %d (LBA %d) at offset %d: %s: %w",
			s.name, gi, lba, phys, fmt.Sprintf(format, args...), blockmap.ErrCorrupt)
	}

	hl := s.recordHeader()
	avail := s.rsize - phys
	if avail < hl {
		return grainRecord{}, fail("record header runs past the end of the member (%d bytes)", s.rsize)
	}
	src := blockmap.WithContext(ctx, s.r)
	bp := getRecordBuf(int(min(avail, s.firstRead())))
	buf := *bp
	framing := fail
	fail = func(format string, args ...any) error {
		recordPool.Put(bp)
		return framing(format, args...)
	}
	if err := readat.Full(src, buf, phys); err != nil {
		recordPool.Put(bp)
		return grainRecord{}, fmt.Errorf("vmdk: %s: reading grain %d (LBA %d) at offset %d: %w", s.name, gi, lba, phys, err)
	}

	var size int64
	if s.markers {
		size = int64(binary.LittleEndian.Uint32(buf[8:]))
		if size == 0 && len(buf) >= 16 {
			return grainRecord{}, fail("a %s marker stands where the grain belongs", markerName(binary.LittleEndian.Uint32(buf[12:])))
		}
		if got := binary.LittleEndian.Uint64(buf); got != uint64(lba) {
			return grainRecord{}, fail("grain marker says LBA %d", got)
		}
	} else {
		size = int64(binary.LittleEndian.Uint32(buf))
	}
	switch {
	case size == 0:
		return grainRecord{}, fail("record has no compressed data")
	case size > s.maxRecord():
		return grainRecord{}, fail("record claims %d compressed bytes, more than two grains", size)
	case size > avail-hl:
		return grainRecord{}, fail("record of %d bytes runs past the end of the member (%d bytes)", size, s.rsize)
	}
	if need := int(hl + size); need > len(buf) {
		// Only a record larger than firstRead gets here, and size is
		// bounded above, so this is one more bounded read.
		got := len(buf)
		if cap(buf) < need {
			nb := make([]byte, need)
			copy(nb, buf)
			buf = nb
			*bp = nb
		}
		buf = buf[:need]
		if err := readat.Full(src, buf[got:], phys+int64(got)); err != nil {
			recordPool.Put(bp)
			return grainRecord{}, fmt.Errorf("vmdk: %s: reading grain %d (LBA %d) at offset %d: %w", s.name, gi, lba, phys, err)
		}
	}

	return grainRecord{bp: bp, z: buf[hl : hl+size], rel: rel, fail: framing}, nil
}

// DecodeUnit inflates the grain u into dst (one whole grain). The record's
// framing is checked first: the marker's LBA must be the grain's, and its
// size must fit in the member and in qemu's two-grain bound.
func (d *grainDecoder) DecodeUnit(ctx context.Context, dst []byte, u blockmap.Unit) error {
	rec, err := d.record(ctx, u, len(dst))
	if err != nil {
		return err
	}
	defer recordPool.Put(rec.bp)
	s, rel, fail := d.sp, rec.rel, rec.fail

	n, err := codec.Zlib(dst, rec.z)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, codec.ErrShort):
		// qemu compresses only the part of the last grain inside the
		// disk, and accepts any output that covers the bytes read.
		if covered := s.size - rel; covered < s.grain && int64(n) >= covered {
			clear(dst[n:])
			return nil
		}
		return fail("inflates to only %d of %d bytes", n, s.grain)
	case errors.Is(err, codec.ErrOverflow):
		return fail("inflates to more than the grain size of %d bytes", s.grain)
	default:
		return fail("inflate: %v", err)
	}
}

// DecodePrefix inflates the first len(dst) bytes of grain u without
// checking its Adler-32, only when the extent's source is proven (a member
// checked against the signed manifest before its bytes are returned), so
// that the checksum adds nothing. For any other source every byte waits
// for its grain's checksum, as in DecodeUnit. The framing is checked all
// the same.
// CanPrefix implements blockmap.PrefixDecoder: a grain's head may be
// served before its Adler-32 is checked only from a proven source.
func (d *grainDecoder) CanPrefix() bool { return route.Proven(d.sp.r) }

func (d *grainDecoder) DecodePrefix(ctx context.Context, dst []byte, u blockmap.Unit) (bool, error) {
	if !route.Proven(d.sp.r) || len(dst) >= u.Size {
		return false, nil
	}
	rec, err := d.record(ctx, u, u.Size)
	if err != nil {
		return false, err
	}
	defer recordPool.Put(rec.bp)
	return codec.ZlibPrefix(dst, rec.z), nil
}

// getRecordBuf returns a pooled buffer of length n.
func getRecordBuf(n int) *[]byte {
	bp, _ := recordPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

// markerName names a metadata marker type for errors.
func markerName(t uint32) string {
	switch t {
	case markerEOS:
		return "end-of-stream"
	case markerGT:
		return "grain table"
	case markerGD:
		return "grain directory"
	case markerFooter:
		return "footer"
	}
	return fmt.Sprintf("type %d metadata", t)
}
