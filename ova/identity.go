package ova

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// FileIdentity names an archive file by where it is and what it was when
// it was indexed: its device, inode, size, mtime and ctime. The ctime is
// there because an in-place rewrite can put the mtime back (touch -r), but
// not the ctime: what was verified in an earlier run must never be taken
// for the file as it is now.
func FileIdentity(st os.FileInfo) []byte {
	var b bytes.Buffer
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		binary.Write(&b, binary.LittleEndian, []uint64{uint64(sys.Dev), sys.Ino})
		binary.Write(&b, binary.LittleEndian, []int64{sys.Ctim.Sec, sys.Ctim.Nsec})
	}
	binary.Write(&b, binary.LittleEndian, []int64{st.Size(), st.ModTime().UnixNano()})
	return b.Bytes()
}

// Identity names the archive by its source's identity (FileIdentity of a
// local file, or a URL and its validator) and a digest of its index (every
// member's name, offset and size), so that a replaced or rewritten archive
// never matches what was saved for an old one. It keys what later runs
// reuse: trusted chunk tables, gzip seek indexes. Nil source gives nil:
// nothing can be reused.
func (a *Archive) Identity(source []byte) []byte {
	if source == nil {
		return nil
	}
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, int64(len(source)))
	h.Write(source)
	for _, m := range a.Members() {
		fmt.Fprintf(h, "%q %d %d %d %x\n", m.Name, m.Type, m.HeaderOffset, m.Size, m.hostID)
		for _, f := range m.frags {
			binary.Write(h, binary.LittleEndian, []int64{f.off, f.len, f.phys})
		}
		if z := m.zip; z != nil {
			// A deflated entry's fragment is logical; where its
			// compressed bytes are, and what they decode to, is here.
			binary.Write(h, binary.LittleEndian, []int64{int64(z.method), int64(z.crc), z.csize, z.dataOff})
		}
	}
	return h.Sum(nil)
}
