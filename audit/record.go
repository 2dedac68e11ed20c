package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Record is one line of the log. Which fields are set depends on Type;
// the field order is fixed, so a line's bytes are the same however often
// it is encoded.
type Record struct {
	Seq  uint64    `json:"seq"`
	Prev string    `json:"prev"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`

	// start
	Version    int    `json:"version,omitempty"` // of the log's format: 1
	Archive    string `json:"archive,omitempty"`
	Identity   string `json:"identity,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty"`
	Program    string `json:"program,omitempty"`
	DaemonPid  int    `json:"daemonPid,omitempty"`

	// open, read, close
	Open uint64 `json:"open,omitempty"`
	Path string `json:"path,omitempty"`
	// PathHex is the path's bytes in hex when they are not UTF-8 (a guest
	// filesystem's names can be anything): Path then has U+FFFD in place
	// of the bytes JSON cannot hold.
	PathHex string  `json:"pathHex,omitempty"`
	Reader  *Reader `json:"reader,omitempty"` // open: who opened it

	// read
	Ranges  [][2]int64 `json:"ranges,omitempty"` // [offset, length], sorted, merged
	Bytes   int64      `json:"bytes,omitempty"`
	First   *time.Time `json:"first,omitempty"`
	Last    *time.Time `json:"last,omitempty"`
	Readers []Reader   `json:"readers,omitempty"`

	// close
	Unclosed bool `json:"unclosed,omitempty"`
}

// Record types.
const (
	TypeStart = "start"
	TypeOpen  = "open"
	TypeRead  = "read"
	TypeClose = "close"
	TypeStop  = "stop"
)

// formatVersion is the Version of the start lines this package writes.
const formatVersion = 1

// Reader is the process whose FUSE request was served: its pid, uid and
// gid as the kernel gave them (pid 0 for a request the kernel made on its
// own behalf).
type Reader struct {
	Pid uint32 `json:"pid"`
	Uid uint32 `json:"uid"`
	Gid uint32 `json:"gid"`
}

// maxLine bounds a line: what this package writes stays far below it (a
// path of at most 4 KiB, 1,000 ranges, 16 readers), and a reader of a log
// never holds more than it for one line.
const maxLine = 1 << 20

// hashLine is the chain's link to a line: the hex SHA-256 of its bytes,
// without the newline.
func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

func known(typ string) bool {
	switch typ {
	case TypeStart, TypeOpen, TypeRead, TypeClose, TypeStop:
		return true
	}
	return false
}
