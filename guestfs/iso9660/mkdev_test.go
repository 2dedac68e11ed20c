package iso9660

import "golang.org/x/sys/unix"

func mkdev(major, minor uint32) uint64 { return unix.Mkdev(major, minor) }
