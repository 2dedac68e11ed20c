package ntfs

import (
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// run maps length clusters of a stream, from VCN vcn, to the volume's
// clusters from lcn; lcn is -1 for a sparse run (a hole).
type run struct {
	vcn, lcn, length int64
}

// Limits on what a stream's runlist may claim: a stream of at most 2^56
// bytes (far beyond NTFS's 16 TiB files), and at most maxRuns runs so that
// one file's map stays a few MiB however it was forged.
const (
	maxStreamBytes = 1 << 56
	maxRuns        = 1 << 20
)

// decodeRuns appends the runs of one attribute extent's mapping pairs,
// which start at VCN vcn, and returns them with the VCN after the last.
// Every allocated run must lie inside the volume's clusters.
func decodeRuns(runs []run, m []byte, vcn, clusters int64, clusterShift uint) ([]run, int64, error) {
	lcn := int64(0)
	maxVCN := int64(maxStreamBytes) >> clusterShift
	for i := 0; i < len(m); {
		h := m[i]
		if h == 0 {
			return runs, vcn, nil
		}
		nl, no := int(h&0x0f), int(h>>4)
		if nl == 0 || nl > 8 || no > 8 || i+1+nl+no > len(m) {
			return nil, 0, fmt.Errorf("mapping pair header %#x at %d: %w", h, i, guestfs.ErrCorrupt)
		}
		length := int64(leUint(m[i+1 : i+1+nl]))
		if length <= 0 || length > maxVCN-vcn {
			return nil, 0, fmt.Errorf("run of %d clusters at VCN %d: %w", length, vcn, guestfs.ErrCorrupt)
		}
		r := run{vcn: vcn, lcn: -1, length: length}
		if no > 0 {
			delta := leInt(m[i+1+nl : i+1+nl+no])
			lcn += delta
			if lcn < 0 || lcn >= clusters || length > clusters-lcn {
				return nil, 0, fmt.Errorf("run of %d clusters at cluster %d, past the volume's %d: %w", length, lcn, clusters, guestfs.ErrCorrupt)
			}
			r.lcn = lcn
		}
		if len(runs) >= maxRuns {
			return nil, 0, fmt.Errorf("more than %d runs: %w", maxRuns, guestfs.ErrCorrupt)
		}
		// Adjacent runs of the same kind merge, so that reads span them.
		if k := len(runs) - 1; k >= 0 && runs[k].vcn+runs[k].length == vcn &&
			(r.lcn < 0 && runs[k].lcn < 0 || r.lcn >= 0 && runs[k].lcn >= 0 && runs[k].lcn+runs[k].length == r.lcn) {
			runs[k].length += length
		} else {
			runs = append(runs, r)
		}
		vcn += length
		i += 1 + nl + no
	}
	return nil, 0, fmt.Errorf("mapping pairs without an end mark: %w", guestfs.ErrCorrupt)
}

// leUint reads an unsigned little-endian integer of up to 8 bytes.
func leUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// leInt reads a signed little-endian integer of 1 to 8 bytes.
func leInt(b []byte) int64 {
	v := leUint(b)
	if n := uint(len(b)) * 8; n < 64 && v&(1<<(n-1)) != 0 {
		v |= ^uint64(0) << n
	}
	return int64(v)
}
