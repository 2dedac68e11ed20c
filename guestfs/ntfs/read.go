package ntfs

import (
	"fmt"
	"io"
	"sync"

	"github.com/ovfmount/ovfmount/guestfs"
)

// maxUnitBytes bounds a compression unit: 16 clusters of 64 KiB.
const maxUnitBytes = 1 << 20

// readVol reads len(p) bytes of the volume at off, refusing any byte
// outside [0, size).
func (fs *FS) readVol(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("ntfs: read of %d bytes at %d, past the volume's %d: %w", len(p), off, fs.size, guestfs.ErrCorrupt)
	}
	n, err := fs.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("ntfs: read of %d bytes at %d: %w", len(p), off, err)
}

// readStreamFull reads exactly len(p) bytes of s at off.
func (fs *FS) readStreamFull(s *stream, p []byte, off int64) error {
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return fmt.Errorf("read of %d bytes at %d of a %d-byte stream: %w", len(p), off, s.size, guestfs.ErrCorrupt)
	}
	return fs.readStream(s, p, off)
}

// readStream fills p, which lies inside the stream, from s at off.
func (fs *FS) readStream(s *stream, p []byte, off int64) error {
	if !s.nonRes {
		copy(p, s.resident[off:])
		return nil
	}
	if s.encrypted() {
		return fmt.Errorf("ntfs: encrypted stream: %w", guestfs.ErrUnsupported)
	}
	// Bytes past the initialized size were never written: zeros.
	if end := off + int64(len(p)); end > s.initSize {
		z := s.initSize - off
		if z < 0 {
			z = 0
		}
		clear(p[z:])
		p = p[:z]
	}
	if len(p) == 0 {
		return nil
	}
	if s.compressed() {
		return fs.readCompressed(s, p, off)
	}
	return fs.readRuns(s, p, off)
}

// readRuns reads mapped bytes of s straight from its runs, in one read
// of the volume per run.
func (fs *FS) readRuns(s *stream, p []byte, off int64) error {
	shift := fs.g.clusterShift
	for len(p) > 0 {
		i := s.findRun(off >> shift)
		if i < 0 {
			return fmt.Errorf("ntfs: stream offset %d is not mapped: %w", off, guestfs.ErrCorrupt)
		}
		r := s.runs[i]
		n := (r.vcn+r.length)<<shift - off
		if n > int64(len(p)) {
			n = int64(len(p))
		}
		if r.lcn < 0 {
			clear(p[:n])
		} else if err := fs.readVol(p[:n], r.lcn<<shift+off-r.vcn<<shift); err != nil {
			return err
		}
		p = p[n:]
		off += n
	}
	return nil
}

// unitKey names a decompressed compression unit in the cache: the
// stream (streams are immutable, and live as long as a node or an open
// file refers to them) and the unit's number.
type unitKey struct {
	s    *stream
	unit int64
}

// unitCacheBytes bounds the decompressed units kept, so that reads
// smaller than a unit (and files read by several readers at once)
// decompress each unit once.
const unitCacheBytes = 1 << 20

var unitPool = sync.Pool{New: func() any { return new([]byte) }}

func getBuf(n int) *[]byte {
	b := unitPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

// readCompressed reads a compressed stream, unit by unit. A unit whose
// clusters are all sparse reads as zeros; one whose clusters are all
// allocated is stored as it is; one with fewer holds LZNT1 data in its
// allocated clusters.
func (fs *FS) readCompressed(s *stream, p []byte, off int64) error {
	shift := fs.g.clusterShift
	unitClusters := int64(1) << s.cuShift
	unitBytes := unitClusters << shift
	for len(p) > 0 {
		u := off / unitBytes
		within := off - u*unitBytes
		n := unitBytes - within
		if n > int64(len(p)) {
			n = int64(len(p))
		}
		allocated, mapped, err := s.unitAllocated(u*unitClusters, unitClusters)
		if err != nil {
			return err
		}
		switch {
		case allocated == 0:
			clear(p[:n])
		case allocated == mapped:
			if err := fs.readRuns(s, p[:n], off); err != nil {
				return err
			}
		default:
			if err := fs.readUnit(s, u, allocated, p[:n], within); err != nil {
				return err
			}
		}
		p = p[n:]
		off += n
	}
	return nil
}

// unitAllocated counts the allocated clusters among the count from vcn,
// and those of them the runs map (fewer than count only in a last unit cut
// short); every one must be mapped.
func (s *stream) unitAllocated(vcn, count int64) (allocated, mapped int64, err error) {
	end := vcn + count
	if end > s.vcns {
		end = s.vcns
	}
	if end <= vcn {
		return 0, 0, fmt.Errorf("ntfs: compressed stream VCN %d is not mapped: %w", vcn, guestfs.ErrCorrupt)
	}
	for v := vcn; v < end; {
		i := s.findRun(v)
		if i < 0 {
			return 0, 0, fmt.Errorf("ntfs: compressed stream VCN %d is not mapped: %w", v, guestfs.ErrCorrupt)
		}
		r := s.runs[i]
		n := r.vcn + r.length - v
		if n > end-v {
			n = end - v
		}
		if r.lcn >= 0 {
			allocated += n
		}
		v += n
	}
	return allocated, end - vcn, nil
}

// readUnit decompresses unit u, whose first allocated clusters hold its
// LZNT1 data, and copies the bytes from within into p.
func (fs *FS) readUnit(s *stream, u, allocated int64, p []byte, within int64) error {
	if fs.units.With(unitKey{s, u}, func(b *[]byte) { copy(p, (*b)[within:]) }) {
		return nil
	}
	shift := fs.g.clusterShift
	unitClusters := int64(1) << s.cuShift
	unitBytes := unitClusters << shift
	src := getBuf(int(allocated << shift))
	defer unitPool.Put(src)
	// The compressed bytes are the unit's allocated clusters in VCN order.
	unitVCN := u * unitClusters
	got := int64(0)
	for v := unitVCN; got < allocated<<shift; {
		i := s.findRun(v)
		if i < 0 || v >= unitVCN+unitClusters {
			return fmt.Errorf("ntfs: compressed unit %d: VCN %d is not mapped: %w", u, v, guestfs.ErrCorrupt)
		}
		r := s.runs[i]
		n := min(r.vcn+r.length, unitVCN+unitClusters) - v
		if r.lcn >= 0 {
			n = min(n, allocated-got>>shift)
			if err := fs.readVol((*src)[got:got+n<<shift], (r.lcn+v-r.vcn)<<shift); err != nil {
				return err
			}
			got += n << shift
		}
		v += n
	}
	dst := getBuf(int(unitBytes))
	if err := lznt1Decompress(*dst, *src); err != nil {
		unitPool.Put(dst)
		return fmt.Errorf("ntfs: compressed unit %d: %w", u, err)
	}
	copy(p, (*dst)[within:])
	fs.units.Put(unitKey{s, u}, dst, int(unitBytes))
	return nil
}
