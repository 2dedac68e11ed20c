package qcow2

import (
	"fmt"
	"math/bits"

	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

const (
	flagCompressed = 1 << 62
	flagZero       = 1         // standard L2 entry "reads as zero" (v3)
	descMask       = 1<<62 - 1 // compressed descriptor: offset and sector count

	subclusters = 32 // per cluster with extended L2 entries

	// mergeLimit bounds the entries one Map call examines to lengthen a
	// run, so that Map stays cheap however large the tables are. The read
	// path asks again where a run ends.
	mergeLimit = 4096
)

// Map returns the run containing off. Runs never cross an L2 table except
// for whole unallocated tables, which are merged with their unallocated
// neighbours.
func (img *Image) Map(off int64) (blockmap.Run, error) {
	if off < 0 || off >= img.size {
		return blockmap.Run{}, fmt.Errorf("qcow2: %s: offset %d outside the %d-byte virtual disk", img.name, off, img.size)
	}
	c := off >> img.clusterBits
	l1i := c >> img.l2Bits
	l2off := int64(img.l1[l1i] & offsetMask)
	if l2off == 0 {
		return img.unallocatedTables(l1i), nil
	}
	t, err := img.l2Table(l1i, l2off)
	if err != nil {
		return blockmap.Run{}, err
	}
	if img.extL2 {
		return img.mapExtended(t, l2off, c, off)
	}
	return img.mapStandard(t, l2off, c)
}

// unallocatedTables is the hole covered by L1 entry l1i and the
// unallocated entries after it.
func (img *Image) unallocatedTables(l1i int64) blockmap.Run {
	j := l1i + 1
	for lim := min(int64(len(img.l1)), l1i+mergeLimit); j < lim && img.l1[j]&offsetMask == 0; j++ {
	}
	shift := img.clusterBits + img.l2Bits
	start := l1i << shift
	return blockmap.Run{Off: start, Len: min(j<<shift, img.size) - start, Kind: blockmap.Hole}
}

// clusters is the number of clusters the virtual disk spans.
func (img *Image) clusters() int64 {
	return (img.size + img.clusterSize - 1) >> img.clusterBits
}

// tableLimit is the index, in the L2 table holding cluster c at index i,
// past the last entry worth examining for a run starting at i: the table
// end, the disk end or the merge limit, whichever comes first.
func (img *Image) tableLimit(c, i int64) int64 {
	return min(int64(1)<<img.l2Bits, i+mergeLimit, img.clusters()-(c-i))
}

func (img *Image) mapStandard(t l2table, l2off, c int64) (blockmap.Run, error) {
	i := c & (int64(1)<<img.l2Bits - 1)
	kind, host, err := img.classify(t.at(i), l2off, i, c)
	if err != nil {
		return blockmap.Run{}, err
	}
	cb := img.clusterBits
	start := c << cb
	if kind == blockmap.Compressed {
		return img.compressedRun(host, start), nil
	}
	// Lengthen the run over the entries that follow and map the same way.
	// An entry that fails its checks only ends the run: its error belongs
	// to a read that reaches it.
	j := i + 1
	for lim := img.tableLimit(c, i); j < lim; j++ {
		k, h, err := img.classify(t.at(j), l2off, j, c-i+j)
		if err != nil || k != kind || (k == blockmap.Stored && h != host+(j-i)<<cb) {
			break
		}
	}
	run := blockmap.Run{Off: start, Len: min((c-i+j)<<cb, img.size) - start, Kind: kind}
	if kind == blockmap.Stored {
		run.Src, run.Phys = img.src, host
	}
	return run, nil
}

// classify decodes a standard L2 entry. For a stored cluster the second
// result is its host offset; for a compressed one, its descriptor.
func (img *Image) classify(e uint64, l2off, i, c int64) (blockmap.Kind, int64, error) {
	if e&flagCompressed != 0 {
		return blockmap.Compressed, int64(e & descMask), img.checkCompressed(e, l2off, i, c)
	}
	host := int64(e & offsetMask)
	if e&flagZero != 0 {
		if img.version == 2 {
			return 0, 0, img.entryErr(l2off, i, c, "zero flag set in a version 2 image")
		}
		// qemu checks the alignment of a preallocated zero cluster too.
		if host&(img.clusterSize-1) != 0 {
			return 0, 0, img.entryErr(l2off, i, c, fmt.Sprintf("zero cluster offset %#x is unaligned", host))
		}
		return blockmap.Zero, 0, nil
	}
	if host == 0 {
		return blockmap.Hole, 0, nil
	}
	return blockmap.Stored, host, img.checkData(host, 0, l2off, i, c)
}

// checkData validates the host cluster of stored data. Only the start of
// the data must lie inside the member: qemu may write just the first
// sectors of the last cluster, and the read path zero-fills the rest.
func (img *Image) checkData(host, dataOff, l2off, i, c int64) error {
	cs := img.clusterSize
	switch {
	case host&(cs-1) != 0:
		return img.entryErr(l2off, i, c, fmt.Sprintf("data offset %#x is unaligned to the %d-byte cluster size", host, cs))
	case host+dataOff >= img.fileSize:
		return img.entryErr(l2off, i, c, fmt.Sprintf("data at %d is past the end of the file (%d)", host+dataOff, img.fileSize))
	case host == l2off:
		return img.entryErr(l2off, i, c, "data cluster is the L2 table itself")
	}
	if what := img.metadataAt(host, cs); what != "" {
		return img.entryErr(l2off, i, c, fmt.Sprintf("data cluster at %d overlaps the %s", host, what))
	}
	return nil
}

// checkCompressed validates where a compressed record starts. Its end is
// clipped to the member, as qemu reads zeros past the end of the file.
func (img *Image) checkCompressed(e uint64, l2off, i, c int64) error {
	coff := int64(e & (uint64(1)<<img.csizeShift - 1))
	switch {
	case coff >= img.fileSize:
		return img.entryErr(l2off, i, c, fmt.Sprintf("compressed data at %d is past the end of the file (%d)", coff, img.fileSize))
	case coff >= l2off && coff < l2off+img.clusterSize:
		return img.entryErr(l2off, i, c, fmt.Sprintf("compressed data at %d lies in the L2 table itself", coff))
	}
	if what := img.metadataAt(coff, 1); what != "" {
		return img.entryErr(l2off, i, c, fmt.Sprintf("compressed data at %d lies in the %s", coff, what))
	}
	return nil
}

func (img *Image) entryErr(l2off, i, c int64, msg string) error {
	return errCorrupt(img.name, "L2 entry %d of the table at %d (cluster %d, virtual offset %d): %s",
		i, l2off, c, c<<img.clusterBits, msg)
}

// compressedRun is the run of one compressed cluster. The record spans
// whole 512-byte sectors from its (unaligned) start, clipped to the member.
func (img *Image) compressedRun(desc, start int64) blockmap.Run {
	coff := desc & (int64(1)<<img.csizeShift - 1)
	nsec := (uint64(desc) >> img.csizeShift) & img.csizeMask
	span := min(int64(nsec+1)*512-coff&511, img.fileSize-coff)
	return blockmap.Run{
		Off:  start,
		Len:  min(img.clusterSize, img.size-start),
		Kind: blockmap.Compressed,
		Unit: blockmap.Unit{
			Dec: img.dec,
			// The whole descriptor, not just the offset: two entries
			// naming one offset with different lengths decode
			// differently and must not share a cache slot.
			ID:   desc,
			Off:  start,
			Size: int(img.clusterSize),
			Phys: coff,
			Span: span,
		},
	}
}

// extCluster is a cluster described by an extended L2 entry.
type extCluster struct {
	compressed bool
	desc       int64 // compressed descriptor
	host       int64 // host cluster offset, 0 if none
	alloc      uint32
	zero       uint32
}

func (img *Image) classifyExt(e, bitmap uint64, l2off, i, c int64) (extCluster, error) {
	if e&flagCompressed != 0 {
		// The bitmap of a compressed cluster is reserved; qemu ignores it.
		return extCluster{compressed: true, desc: int64(e & descMask)}, img.checkCompressed(e, l2off, i, c)
	}
	x := extCluster{host: int64(e & offsetMask), alloc: uint32(bitmap), zero: uint32(bitmap >> 32)}
	if x.host == 0 {
		if x.alloc != 0 {
			return x, img.entryErr(l2off, i, c, fmt.Sprintf("unallocated cluster has allocated subclusters (bitmap %#016x)", bitmap))
		}
		return x, nil
	}
	if both := x.alloc & x.zero; both != 0 {
		return x, img.entryErr(l2off, i, c, fmt.Sprintf("subclusters %#08x are marked both allocated and zero", both))
	}
	if x.alloc == 0 {
		if x.host&(img.clusterSize-1) != 0 {
			return x, img.entryErr(l2off, i, c, fmt.Sprintf("cluster offset %#x is unaligned", x.host))
		}
		return x, nil
	}
	last := int64(31 - bits.LeadingZeros32(x.alloc))
	return x, img.checkData(x.host, last<<(img.clusterBits-5), l2off, i, c)
}

// at is how subcluster s reads.
func (x *extCluster) at(s int64, scBits uint) (blockmap.Kind, int64) {
	bit := uint32(1) << s
	switch {
	case x.zero&bit != 0:
		return blockmap.Zero, 0
	case x.alloc&bit != 0:
		return blockmap.Stored, x.host + s<<scBits
	}
	return blockmap.Hole, 0
}

// uniform reports whether all subclusters read the same way, and how.
func (x *extCluster) uniform() (blockmap.Kind, bool) {
	switch {
	case x.compressed:
		return 0, false
	case x.zero == ^uint32(0):
		return blockmap.Zero, true
	case x.alloc == ^uint32(0):
		return blockmap.Stored, true
	case x.alloc|x.zero == 0:
		return blockmap.Hole, true
	}
	return 0, false
}

// mapExtended maps off at subcluster granularity and merges the
// subclusters, and then the clusters, that follow and read the same way.
func (img *Image) mapExtended(t l2table, l2off, c, off int64) (blockmap.Run, error) {
	i := c & (int64(1)<<img.l2Bits - 1)
	x, err := img.classifyExt(t.at(2*i), t.at(2*i+1), l2off, i, c)
	if err != nil {
		return blockmap.Run{}, err
	}
	cb := img.clusterBits
	if x.compressed {
		return img.compressedRun(x.desc, c<<cb), nil
	}
	scBits := cb - 5
	scSize := int64(1) << scBits
	s := (off - c<<cb) >> scBits
	kind, host := x.at(s, scBits)
	start := c<<cb + s<<scBits
	end := start + scSize
	next := host + scSize // where a stored continuation must sit

	lim := img.tableLimit(c, i)
merge:
	for j := i; ; {
		for s++; s < subclusters; s++ {
			k, h := x.at(s, scBits)
			if k != kind || (k == blockmap.Stored && h != next) {
				break merge
			}
			end += scSize
			next += scSize
		}
		if j++; j >= lim {
			break
		}
		if x, err = img.classifyExt(t.at(2*j), t.at(2*j+1), l2off, j, c-i+j); err != nil || x.compressed {
			break
		}
		if k, ok := x.uniform(); ok && k == kind && (k != blockmap.Stored || x.host == next) {
			end += img.clusterSize
			next += img.clusterSize
			s = subclusters - 1 // the whole cluster is taken
			continue
		}
		s = -1
	}
	run := blockmap.Run{Off: start, Len: min(end, img.size) - start, Kind: kind}
	if kind == blockmap.Stored {
		run.Src, run.Phys = img.src, host
	}
	return run, nil
}
