package blockmap

// Parent is what a child image (a VMDK delta, a QCOW2 overlay, a VHD, VHDX
// or VDI differencing disk) says about the image beneath it.
//
// A child's Hole runs are the ranges its parent supplies; its Zero runs
// read as zeros whatever the parent holds; its Stored and Compressed runs
// are its own. So a format needs no code to read through a chain: package
// vdisk resolves the parent, checks it with Check, and walks the layers'
// maps. A format opened as a child must therefore return Hole only where
// the parent shows through (an unallocated grain, cluster or block, or a
// sector whose bit in a differencing disk's sector bitmap is clear), and
// Zero where the child itself says zeros.
type Parent struct {
	// Names are the names the child gives its parent, most trusted first
	// (VMDK parentFileNameHint; QCOW2 backing_file; VHD and VHDX parent
	// locators and the VHD's Unicode parent name; VDI has none), exactly
	// as stored. The caller matches them by base name, with either slash,
	// against the package's own files; it never opens a host path.
	Names []string
	// Format is the parent's format when the child names it (QCOW2
	// backing_fmt, e.g. "raw" or "vmdk"), "" otherwise.
	Format string
	// Check verifies that an opened candidate is the image the child was
	// written against (VMDK parentCID against the parent's CID, VHD parent
	// UUID against the parent's footer, VHDX parent_linkage against the
	// parent's DataWriteGuid, VDI parent UUIDs), and returns an error
	// naming both values when it is not. parent is the candidate's own
	// format image (a *vmdk.Image, a *vhd.Image, ...), not a chain. Nil
	// means the format has nothing to check (QCOW2).
	Check func(parent Mapper) error
}

// Child is implemented by format images that may have a parent. Parent
// returns nil for an image that stands alone.
type Child interface {
	Parent() *Parent
}
