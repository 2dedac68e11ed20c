package fs

import gofs "github.com/hanwen/go-fuse/v2/fs"

// The interfaces each node implements; everything else gets go-fuse's
// defaults, which for a read-only tree means EROFS or ENOTSUP.
var (
	_ gofs.NodeOnAdder     = (*Root)(nil)
	_ gofs.NodeStatfser    = (*Root)(nil)
	_ gofs.NodeGetxattrer  = (*Root)(nil)
	_ gofs.NodeListxattrer = (*Root)(nil)
	_ gofs.NodeGetxattrer  = (*fileNode)(nil)
	_ gofs.NodeListxattrer = (*fileNode)(nil)

	_ gofs.NodeGetattrer = (*dirNode)(nil)
	_ gofs.NodeReaddirer = (*dirNode)(nil)
	_ gofs.NodeFsyncer   = (*dirNode)(nil)

	_ gofs.NodeGetattrer = (*fileNode)(nil)
	_ gofs.NodeOpener    = (*fileNode)(nil)
	_ gofs.NodeReader    = (*fileNode)(nil)
	_ gofs.NodeLseeker   = (*fileNode)(nil)
	_ gofs.NodeFsyncer   = (*fileNode)(nil)

	_ gofs.NodeGetattrer  = (*symlinkNode)(nil)
	_ gofs.NodeReadlinker = (*symlinkNode)(nil)
)
