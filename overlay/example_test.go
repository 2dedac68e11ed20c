package overlay_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/ovfmount/ovfmount/overlay"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "overlay-example")
	defer os.RemoveAll(dir)

	// The archive's identity: a digest of it, and what messages show.
	s, err := overlay.Open(dir, overlay.Identity{Key: "sha256:0f1e", Name: "app.ova", Describe: "app.ova (sha256 0f1e…)"})
	if err != nil {
		log.Fatal(err)
	}
	// The base: here a disk of zeros; in the daemon, the decoded view.
	zeros := overlay.BaseFunc(func(ctx context.Context, p []byte, off int64) error {
		clear(p)
		return nil
	})
	d, err := s.Disk("disk1.vmdk", 1<<20, zeros)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.WriteAt(ctx, []byte("hello"), 4096); err != nil {
		log.Fatal(err)
	}
	if err := d.Sync(); err != nil { // fsync
		log.Fatal(err)
	}
	p := make([]byte, 5)
	d.ReadAt(ctx, p, 4096)
	fmt.Printf("%s modified=%v written=%d\n", p, d.Modified(), d.Written())
	if err := d.WriteAt(ctx, p, 1<<20-2); err != nil {
		fmt.Println(err)
	}
	s.Close()

	st, _ := overlay.ReadStatus(dir)
	fmt.Println(st.Describe, st.Disks[0].Name, st.Disks[0].DataBlocks)
	// Output:
	// hello modified=true written=4096
	// overlay: past the end of the disk: disk1.vmdk: 5 bytes at 1048574, size 1048576
	// app.ova (sha256 0f1e…) disk1.vmdk 1
}
