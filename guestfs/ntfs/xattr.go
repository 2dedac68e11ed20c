package ntfs

import (
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
)

// xattrMax is the largest value Linux lets an extended attribute hold.
const xattrMax = 64 << 10

// Xattrs lists a file's alternate data streams as "ntfs.stream.NAME";
// streams over 64 KiB, those of encrypted files and names holding a NUL
// (which no xattr list can carry) are left out.
func (fs *FS) Xattrs(ino uint64) ([]guestfs.Xattr, error) {
	n, err := fs.node(ino)
	if err != nil {
		return nil, err
	}
	if n.si.attrs&faEncrypted != 0 {
		return nil, nil
	}
	var out []guestfs.Xattr
	for _, ns := range n.named {
		if ns.s.size > xattrMax || ns.s.encrypted() || strings.ContainsRune(ns.name, 0) {
			continue
		}
		v := make([]byte, ns.s.size)
		if err := fs.readStreamFull(ns.s, v, 0); err != nil {
			return nil, err
		}
		out = append(out, guestfs.Xattr{Name: "ntfs.stream." + ns.name, Value: v})
	}
	return out, nil
}
