package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errBadIndex marks an htree index that does not hold together; Lookup
// then scans the directory, as the kernel's ext4_find_entry does.
var errBadIndex = errors.New("bad htree index")

func badIndex(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errBadIndex)
}

// dxFrame is one level of a descent: the node's entries and where it went.
type dxFrame struct {
	node    []byte // the node's (count, limit) header and entries
	count   int
	at      int
	csumOff int // where the entries start in the block, for the checksum
}

func (f *dxFrame) hash(i int) uint32 {
	if i == 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(f.node[8*i:])
}

func (f *dxFrame) block(i int) uint64 {
	return uint64(binary.LittleEndian.Uint32(f.node[8*i+4:]) & 0x0fffffff)
}

// htreeLookup finds name through the directory's hash index: hash the
// name, descend from the root to the leaf block whose hash range holds
// it, scan that leaf, and go on to the next leaves while they continue
// the same hash (collisions spill over with the low hash bit set). Errors
// wrapping errBadIndex mean the index itself is unusable.
func (fs *FS) htreeLookup(in *inode, name string) (dirent, bool, error) {
	le := binary.LittleEndian
	bs := int(fs.bs)
	nblocks := (uint64(in.size) + uint64(bs) - 1) / uint64(bs)
	read := func(lb uint64) ([]byte, error) {
		if lb >= nblocks {
			return nil, badIndex("block %d past the directory's %d", lb, nblocks)
		}
		phys, _, kind, err := fs.mapBlocks(in, lb, 1)
		if err != nil {
			return nil, err
		}
		if kind != runData {
			return nil, badIndex("block %d is a hole", lb)
		}
		cb, err := fs.block(phys)
		if err != nil {
			return nil, err
		}
		return cb.data, nil
	}
	root, err := read(0)
	if err != nil {
		return dirent{}, false, err
	}
	// dx_root: "." (12 bytes), ".." spanning the rest, then dx_root_info.
	if le.Uint32(root[0x18:]) != 0 || root[0x1D] != 8 || root[0x1F]&1 != 0 {
		return dirent{}, false, badIndex("root info")
	}
	version := root[0x1C]
	if version <= hashTea {
		version += fs.hashUnsigned
	}
	levels := int(root[0x1E])
	maxLevels := 2
	if fs.sb.incompat&incompatLargeDir != 0 {
		maxLevels = 3
	}
	if levels >= maxLevels {
		return dirent{}, false, badIndex("%d index levels", levels+1)
	}
	hash, _, ok := dirHash([]byte(name), version, fs.sb.hashSeed)
	if !ok {
		return dirent{}, false, badIndex("hash version %d", root[0x1C])
	}
	frames := make([]dxFrame, 0, 4)
	block, off := root, 0x20
	for level := 0; ; level++ {
		f, err := fs.dxNode(in, block, off)
		if err != nil {
			return dirent{}, false, err
		}
		// The last entry whose hash is at or below ours.
		lo, hi := 1, f.count
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if f.hash(m) <= hash {
				lo = m + 1
			} else {
				hi = m
			}
		}
		f.at = lo - 1
		frames = append(frames, f)
		if level == levels {
			break
		}
		if block, err = read(f.block(f.at)); err != nil {
			return dirent{}, false, err
		}
		if !fs.isDxNode(in, block) {
			return dirent{}, false, badIndex("level %d node is not an index node", level+1)
		}
		off = 8
	}
	// Scan leaves: the one found, then any that continue the hash.
	for leaves := 0; ; leaves++ {
		last := &frames[len(frames)-1]
		lb := last.block(last.at)
		if lb == 0 {
			return dirent{}, false, badIndex("leaf is the root")
		}
		phys, _, kind, err := fs.mapBlocks(in, lb, 1)
		if err != nil {
			return dirent{}, false, err
		}
		if lb >= nblocks || kind != runData {
			return dirent{}, false, badIndex("leaf block %d", lb)
		}
		b, err := fs.dirBlock(in, lb, phys)
		if err != nil {
			return dirent{}, false, err
		}
		var got dirent
		err = fs.parseDirents(in, b, lb, func(d dirent) error {
			if string(d.name) == name {
				got = d
				return errStop
			}
			return nil
		})
		if err == errStop {
			return got, true, nil
		}
		if err != nil {
			return dirent{}, false, err
		}
		// Advance to the next leaf; stop unless its hash continues ours.
		i := len(frames) - 1
		for i >= 0 && frames[i].at+1 >= frames[i].count {
			i--
		}
		if i < 0 || leaves >= int(nblocks) {
			return dirent{}, false, nil
		}
		frames[i].at++
		if next := frames[i].hash(frames[i].at); next&^1 != hash {
			return dirent{}, false, nil
		}
		for j := i + 1; j < len(frames); j++ {
			block, err := read(frames[j-1].block(frames[j-1].at))
			if err != nil {
				return dirent{}, false, err
			}
			if !fs.isDxNode(in, block) {
				return dirent{}, false, badIndex("level %d node is not an index node", j)
			}
			f, err := fs.dxNode(in, block, 8)
			if err != nil {
				return dirent{}, false, err
			}
			frames[j] = f
		}
	}
}

// dxNode checks an index node whose (limit, count) header is at off in
// block: the limit exactly what the block holds (less the checksum tail
// with metadata_csum), the count within it, and the tail's checksum.
func (fs *FS) dxNode(in *inode, block []byte, off int) (dxFrame, error) {
	le := binary.LittleEndian
	limit, count := int(le.Uint16(block[off:])), int(le.Uint16(block[off+2:]))
	want := (len(block) - off) / 8
	if fs.sb.hasMetadataCsum {
		want--
	}
	if limit != want || count < 1 || count > limit {
		return dxFrame{}, badIndex("index node: count %d, limit %d (want %d)", count, limit, want)
	}
	if fs.sb.hasMetadataCsum {
		t := block[off+8*limit:]
		// Over the entries in use and the tail, its checksum as zero.
		c := crc32c(in.seed, block[:off+8*count])
		c = crc32cSkip(c, t[:8], 4, 4)
		if c != le.Uint32(t[4:]) {
			return dxFrame{}, badIndex("index node checksum mismatch")
		}
	}
	return dxFrame{node: block[off : off+8*limit], count: count, csumOff: off}, nil
}
