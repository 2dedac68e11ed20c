package fat

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// The FAT is read in chunks of this size on FAT32, whose table can be
// hundreds of MiB; FAT12 and FAT16 tables (at most 6 KiB and 128 KiB of
// entries the volume can use) are read whole at Open.
const fatChunk = 64 << 10

// entry returns FAT entry c (2 <= c <= fs.maxCluster, which Open made sure
// the table holds).
func (fs *FS) entry(c uint32) (uint32, error) {
	switch fs.bits {
	case 12:
		o := int(c) + int(c)/2
		v := uint32(binary.LittleEndian.Uint16(fs.table[o:]))
		if c&1 != 0 {
			return v >> 4, nil
		}
		return v & 0xFFF, nil
	case 16:
		return uint32(binary.LittleEndian.Uint16(fs.table[2*int(c):])), nil
	}
	off := int64(c) * 4
	ci := off / fatChunk
	chunk, ok := fs.fatCache.Get(ci)
	if !ok {
		n := min(int64(fatChunk), fs.fatBytes-ci*fatChunk)
		chunk = make([]byte, n)
		if err := fs.readAt(chunk, fs.fatOff+ci*fatChunk); err != nil {
			return 0, fmt.Errorf("fat: FAT sector for cluster %d: %w", c, err)
		}
		fs.fatCache.Put(ci, chunk, len(chunk))
	}
	return binary.LittleEndian.Uint32(chunk[off-ci*fatChunk:]) & 0x0FFFFFFF, nil
}

// next follows the chain from cluster c: the next cluster, or end at the
// end-of-chain mark. A free or bad cluster inside a chain, or a pointer
// past the last cluster (into the slack of the FAT's last sector), is
// corruption.
func (fs *FS) next(c uint32) (n uint32, end bool, err error) {
	v, err := fs.entry(c)
	if err != nil {
		return 0, false, err
	}
	if v >= fs.eoc {
		return 0, true, nil
	}
	if v < 2 || v > fs.maxCluster {
		what := "points past the last cluster"
		switch {
		case v == fs.eoc-1:
			what = "is marked bad"
		case v == 0:
			what = "is free"
		}
		return 0, false, fmt.Errorf("fat: cluster %d in a chain: its FAT entry %#x %s: %w", c, v, what, guestfs.ErrCorrupt)
	}
	return v, false, nil
}

// run is consecutive clusters of a chain: most files are one or a few.
type run struct {
	start uint32 // first cluster
	n     uint32 // clusters
	idx   uint32 // the chain position of start (clusters before this run)
}

// chain walks a cluster chain from first, at most limit clusters (0: to its
// end), and returns it as runs. A chain that visits more clusters than the
// volume has, or that returns to a cluster it visited (found with Brent's
// algorithm, in as many steps as the chain has clusters before the loop
// closes), is corrupt.
func (fs *FS) chain(first uint32, limit uint32) ([]run, uint32, error) {
	if first < 2 || first > fs.maxCluster {
		return nil, 0, fmt.Errorf("fat: chain starts at cluster %d, outside 2-%d: %w", first, fs.maxCluster, guestfs.ErrCorrupt)
	}
	var runs []run
	c, total := first, uint32(0)
	tortoise, power, lam := first, uint32(1), uint32(0)
	for {
		if len(runs) > 0 && runs[len(runs)-1].start+runs[len(runs)-1].n == c {
			runs[len(runs)-1].n++
		} else {
			runs = append(runs, run{start: c, n: 1, idx: total})
		}
		total++
		if limit != 0 && total >= limit {
			return runs, total, nil
		}
		n, end, err := fs.next(c)
		if err != nil {
			return runs, total, err
		}
		if end {
			return runs, total, nil
		}
		if total >= fs.clusters {
			return runs, total, fmt.Errorf("fat: chain from cluster %d is longer than the volume's %d clusters: %w", first, fs.clusters, guestfs.ErrCorrupt)
		}
		// Brent: the tortoise jumps to the hare at powers of two; meeting
		// it again means a loop.
		if n == tortoise {
			return runs, total, fmt.Errorf("fat: chain from cluster %d loops back to cluster %d: %w", first, n, guestfs.ErrCorrupt)
		}
		lam++
		if lam == power {
			tortoise, power, lam = n, power*2, 0
		}
		c = n
	}
}

// clusterOff is the volume offset of cluster c's first byte.
func (fs *FS) clusterOff(c uint32) int64 {
	return fs.dataOff + int64(c-2)*fs.clusterSize
}
