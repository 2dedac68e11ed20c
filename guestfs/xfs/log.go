package xfs

import (
	"encoding/binary"
	"fmt"
)

// Log record constants.
const (
	logRecMagic     = 0xfeedbabe
	logUnmountTrans = 0x20 // op header flag of the record an unmount writes last
	logMaxRecBBs    = 1024 // a record and its headers span fewer 512-byte blocks
)

// checkLog says whether the internal log needs recovery, as the kernel
// decides at mount: find the head (where the cycle number stamped in
// every 512-byte log block drops), then the last record before it; a log
// is clean when that record is the unmount record and ends at the head.
// The reader never replays a log, so a dirty one means the volume is read
// as it stands, missing what the log holds. It returns a warning, or "".
func (f *FS) checkLog() string {
	sb := f.sb
	if sb.logStart == 0 {
		return "" // an external log: nothing here to check
	}
	lin, ok := f.fsbToLinear(sb.logStart, uint64(sb.logBlocks))
	if !ok || sb.logBlocks == 0 {
		return "the log is outside the volume: not checked"
	}
	base := int64(lin) << sb.blockLog
	nbb := int64(sb.logBlocks) << (sb.blockLog - 9)
	var buf [512]byte
	read := func(bb int64) bool {
		_, err := f.r.ReadAt(buf[:], base+bb*512)
		return err == nil
	}
	cycle := func(bb int64) (uint32, bool) {
		if !read(bb) {
			return 0, false
		}
		if binary.BigEndian.Uint32(buf[:]) == logRecMagic {
			return binary.BigEndian.Uint32(buf[4:]), true
		}
		return binary.BigEndian.Uint32(buf[:]), true
	}
	unreadable := "the log could not be read: whether it needs recovery is unknown"
	first, ok1 := cycle(0)
	last, ok2 := cycle(nbb - 1)
	if !ok1 || !ok2 {
		return unreadable
	}
	if first == 0 {
		return "" // a zeroed log holds nothing to replay
	}
	head := int64(0) // the log wrapped exactly: the head is at its start
	if first != last {
		lo, hi := int64(0), nbb-1
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			c, ok := cycle(mid)
			if !ok {
				return unreadable
			}
			if c == first {
				lo = mid
			} else {
				hi = mid
			}
		}
		head = hi
	}
	dirty := "the log needs recovery (the filesystem was not cleanly unmounted): read as it stands, without the changes the log holds"
	// The last record header before the head.
	for i := int64(1); i <= logMaxRecBBs && i <= nbb; i++ {
		bb := (head - i + nbb) % nbb
		if !read(bb) {
			return unreadable
		}
		be := binary.BigEndian
		if be.Uint32(buf[:]) != logRecMagic {
			continue
		}
		version, size, length := be.Uint32(buf[8:]), be.Uint32(buf[320:]), int64(be.Uint32(buf[12:]))
		hdrBBs := int64(1)
		if version&2 != 0 && size > 32768 {
			hdrBBs = int64((size + 32767) / 32768)
		}
		end := (bb + hdrBBs + (length+511)/512) % nbb
		if be.Uint32(buf[40:]) != 1 || end != head {
			return dirty
		}
		if !read((bb + hdrBBs) % nbb) {
			return unreadable
		}
		if buf[9]&logUnmountTrans == 0 {
			return dirty
		}
		return ""
	}
	return fmt.Sprintf("no log record found before the log head at block %d: whether the log needs recovery is unknown", head)
}
