package appliance

import "github.com/ovfmount/ovfmount/guestfs"

// GuestTree is a guest filesystem the mount shows under files/: read in
// the daemon from a volume's bytes, which come through the checked path
// of the disk (or ISO member) the volume lies in.
type GuestTree struct {
	// Volume names the volume, as under disks/ ("disk1.vmdk.p1").
	Volume string
	FS     guestfs.FS
	// Status is the verification state of what the volume is read from:
	// every guest file shows it.
	Status func() string
}
