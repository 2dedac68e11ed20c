package fs

import "hash/fnv"

// inodes hands out inode numbers derived from paths, so that a file keeps
// its number across mounts of the same archive (tools like rsync and tar
// --listed-incremental rely on that). Collisions are resolved by probing;
// since nodes are created in a fixed order, the probing is deterministic
// too.
type inodes map[uint64]bool

func (used inodes) forPath(kind byte, path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte{kind})
	h.Write([]byte(path))
	ino := h.Sum64()
	for ino <= 1 || used[ino] { // 1 is the root
		ino++
	}
	used[ino] = true
	return ino
}
