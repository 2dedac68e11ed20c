package overlay

import (
	"os"
	"syscall"
)

// allocatedBytes is the host space a file takes (st_blocks), which holes
// punched for freed blocks do not count.
func allocatedBytes(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
