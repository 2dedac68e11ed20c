package testutil

import (
	"bytes"
	"os"
	"testing"
)

func TestPartitionedDisk(t *testing.T) {
	img := PartitionedDisk(t, 32<<20, 8<<20)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != 32<<20 || b[510] != 0x55 || b[511] != 0xaa {
		t.Fatalf("bad MBR or size %d", len(b))
	}
	// ext4 superblock magic 0xEF53 at partition offset + 1024 + 56
	if !bytes.Equal(b[1<<20+1024+56:1<<20+1024+58], []byte{0x53, 0xef}) {
		t.Fatal("no ext4 superblock in the partition")
	}
	if bytes.Count(b, []byte{0}) > len(b)*9/10 {
		t.Fatal("disk is almost empty; expected about 8 MiB of files")
	}
}
