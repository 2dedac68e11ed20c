package fs

import (
	"context"
	"sort"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// The extended attributes that show verification from the mount:
//
//	user.ovfmount.verify     pending, verified, mismatch, unlisted, off,
//	                         or damaged (a disk view whose verified image
//	                         held a corrupt grain)
//	user.ovfmount.digest     ALG:hex, from the manifest
//	user.ovfmount.signature  on the root: ok, bad, absent, or
//	                         "ok-untrusted <signer subject>"
//
// on each archive's folder of a library mount (see appliance.Library):
//
//	user.ovfmount.source     the archive: a path, or a URL without secrets
//	user.ovfmount.state      closed (not looked into yet), open or failed
//	user.ovfmount.error      why it failed to open, when it did
//	user.ovfmount.signature  as on the root, once open
//
// and on the files of guest filesystems (under files/):
//
//	user.ovfmount.verify     that of the disk (or ISO member) the volume
//	                         is read from
//	user.guest.NAME          each extended attribute the guest stores, under
//	                         its own name: user.guest.security.selinux,
//	                         user.guest.user.comment; NTFS alternate data
//	                         streams as user.guest.ntfs.stream.NAME
//	user.guest.flags         the guest's file flags, comma-separated, as
//	                         lsattr names them: immutable, append, nodump,
//	                         compressed, sparse, hidden, system, archive,
//	                         encrypted
//
// The guest's attributes are shown under user. so that any user can read
// them: the kernel lets no one but root read trusted.*, and would apply a
// security.* or system.posix_acl_* attribute to the mount itself.
const (
	xattrVerify    = "user.ovfmount.verify"
	xattrDigest    = "user.ovfmount.digest"
	xattrSignature = "user.ovfmount.signature"
	xattrGuest     = "user.guest."
	xattrFlags     = "user.guest.flags"
)

func (n *guestNode) xattrs() (map[string]string, error) {
	attrs := map[string]string{xattrVerify: n.g.t.Status()}
	a, err := n.g.t.FS.Stat(n.gino)
	if err != nil {
		return nil, err
	}
	if a.Flags != 0 {
		attrs[xattrFlags] = a.Flags.String()
	}
	xs, err := n.g.t.FS.Xattrs(n.gino)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		attrs[xattrGuest+x.Name] = string(x.Value)
	}
	return attrs, nil
}

func (n *guestNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	attrs, err := n.xattrs()
	if err != nil {
		return 0, n.errno(0, err)
	}
	return getxattr(attrs, attr, dest)
}

func (n *guestNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	attrs, err := n.xattrs()
	if err != nil {
		return 0, n.errno(0, err)
	}
	return listxattr(attrs, dest)
}

func (n *fileNode) xattrs() map[string]string {
	status, digest := n.c.Status()
	attrs := map[string]string{xattrVerify: status}
	if digest != "" {
		attrs[xattrDigest] = digest
	}
	return attrs
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(n.xattrs(), attr, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(n.xattrs(), dest)
}

func (n *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if n.attrs == nil {
		return 0, gofs.ENOATTR
	}
	return getxattr(n.attrs(), attr, dest)
}

func (n *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if n.attrs == nil {
		return 0, 0
	}
	return listxattr(n.attrs(), dest)
}

func (r *Root) xattrs() map[string]string {
	if r.opts.Signature == "" {
		return nil
	}
	return map[string]string{xattrSignature: r.opts.Signature}
}

func (r *Root) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(r.xattrs(), attr, dest)
}

func (r *Root) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(r.xattrs(), dest)
}

// getxattr answers one attribute; a size probe (empty dest) learns the
// length through ERANGE, which go-fuse turns into success.
func getxattr(attrs map[string]string, name string, dest []byte) (uint32, syscall.Errno) {
	val, ok := attrs[name]
	if !ok {
		return 0, gofs.ENOATTR
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

func listxattr(attrs map[string]string, dest []byte) (uint32, syscall.Errno) {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	list := ""
	if len(names) > 0 {
		list = strings.Join(names, "\x00") + "\x00"
	}
	if len(dest) < len(list) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(copy(dest, list)), 0
}
