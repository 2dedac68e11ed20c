package appliance

import (
	"context"
	"strings"
)

// BlockView is a file under the disks folder that holds a block device's
// bytes: a disk's raw view, a partition of one, or a logical volume. What
// hands out block devices (the NBD server) serves exactly these, under the
// names the mount shows them by, so that a disk is named the same way
// wherever it is used.
type BlockView struct {
	Name    string // its name in the disks folder: "disk1.vmdk.raw", "disk1.vmdk.p1"
	Role    Role   // RoleView, RolePartition or RoleVolume
	Content Content
}

// BlockViews lists the block views in the order the mount lists them. It
// reads the disks' partition tables and volume metadata (see Inside).
func (p *Package) BlockViews(ctx context.Context) ([]BlockView, error) {
	all, err := p.AllEntries(ctx)
	if err != nil {
		return nil, err
	}
	var out []BlockView
	for _, e := range all {
		if e.Role != RoleView && e.Role != RolePartition && e.Role != RoleVolume {
			continue
		}
		name, ok := strings.CutPrefix(e.Path, p.DisksFolder+"/")
		if !ok || e.Content == nil {
			continue
		}
		out = append(out, BlockView{Name: name, Role: e.Role, Content: e.Content})
	}
	return out, nil
}
