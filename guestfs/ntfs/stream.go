package ntfs

import (
	"fmt"
	"sort"

	"github.com/ovfmount/ovfmount/guestfs"
)

// stream is one attribute's value as a byte stream: resident bytes, or
// runs of clusters with the sizes the attribute's first extent records.
type stream struct {
	resident []byte // a resident value; nil when runs is used
	nonRes   bool
	size     int64 // the data size
	initSize int64 // bytes past this read as zeros
	alloc    int64 // bytes on the volume: allocated, or for sparse and compressed streams the compressed size
	flags    uint16
	cuShift  uint8 // log2 of clusters per compression unit
	runs     []run
	vcns     int64 // VCNs the runs map
	clusters int64 // clusters the runs allocate (not sparse)
}

func (s *stream) compressed() bool { return s.nonRes && s.flags&attrCompressedMask != 0 }
func (s *stream) encrypted() bool  { return s.flags&attrEncrypted != 0 }

// cost is an estimate of the bytes the stream holds, for the caches.
func (s *stream) cost() int { return 64 + len(s.resident) + 24*len(s.runs) }

// extents is the pieces of one non-resident attribute, which a long
// runlist spreads over several MFT records.
type extents []*attr

// buildStream joins an attribute's pieces: one resident value, or
// non-resident extents that must tile the VCNs from 0 without gaps.
func (fs *FS) buildStream(pieces extents) (*stream, error) {
	if len(pieces) == 0 {
		return nil, fmt.Errorf("no extents: %w", guestfs.ErrCorrupt)
	}
	first := pieces[0]
	if !first.nonRes {
		if len(pieces) > 1 {
			return nil, fmt.Errorf("resident attribute with %d extents: %w", len(pieces), guestfs.ErrCorrupt)
		}
		return &stream{resident: first.value, size: int64(len(first.value)), initSize: int64(len(first.value)), flags: first.flags}, nil
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].lowVCN < pieces[j].lowVCN })
	first = pieces[0]
	s := &stream{nonRes: true, size: first.dataSize, initSize: first.initSize, alloc: first.allocSize, flags: first.flags, cuShift: first.cuShift}
	if first.lowVCN != 0 {
		return nil, fmt.Errorf("first extent starts at VCN %d: %w", first.lowVCN, guestfs.ErrCorrupt)
	}
	if s.flags&(attrCompressedMask|attrSparse) != 0 {
		s.alloc = first.compSize
	}
	var vcn int64
	for _, p := range pieces {
		if !p.nonRes || p.lowVCN != vcn {
			return nil, fmt.Errorf("extent at VCN %d, want %d: %w", p.lowVCN, vcn, guestfs.ErrCorrupt)
		}
		var err error
		s.runs, vcn, err = decodeRuns(s.runs, p.mapping, vcn, fs.g.clusters, fs.g.clusterShift)
		if err != nil {
			return nil, err
		}
		// An extent's runs end where its header says (an empty
		// runlist of an empty stream ends at VCN -1).
		if vcn != p.highVCN+1 && !(vcn == 0 && p.highVCN <= 0) {
			return nil, fmt.Errorf("extent's runs end at VCN %d, header says %d: %w", vcn-1, p.highVCN, guestfs.ErrCorrupt)
		}
	}
	s.vcns = vcn
	for _, r := range s.runs {
		if r.lcn >= 0 {
			s.clusters += r.length
		}
	}
	if s.size > maxStreamBytes {
		return nil, fmt.Errorf("data size %d: %w", s.size, guestfs.ErrCorrupt)
	}
	if s.initSize > s.size {
		s.initSize = s.size
	}
	if s.size > vcn<<fs.g.clusterShift {
		return nil, fmt.Errorf("data size %d past the %d clusters mapped: %w", s.size, vcn, guestfs.ErrCorrupt)
	}
	if s.compressed() {
		if s.cuShift == 0 || s.cuShift > 8 || int64(1)<<(fs.g.clusterShift+uint(s.cuShift)) > maxUnitBytes {
			return nil, fmt.Errorf("compression unit of 2^%d clusters: %w", s.cuShift, guestfs.ErrUnsupported)
		}
	}
	return s, nil
}

// findRun returns the index of the run holding VCN vcn, or -1.
func (s *stream) findRun(vcn int64) int {
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn+s.runs[i].length > vcn })
	if i < len(s.runs) && s.runs[i].vcn <= vcn {
		return i
	}
	return -1
}
