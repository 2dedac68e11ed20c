package appliance

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/internal/testpkg"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// TestStrictViewReadInterrupted: on a strict mount a raw view's first read
// waits until the file under it is verified; an interrupted read (its
// context cancelled) returns with the context's error while the file is
// still being verified, and a later read gets the verified bytes.
func TestStrictViewReadInterrupted(t *testing.T) {
	dir := t.TempDir()
	desc := testpkg.File{Name: "app.ovf", Data: testpkg.Descriptor("disk1.img")}
	// A 1 GiB sparse raw disk: hashing it takes far longer than the
	// read below waits before it is cancelled.
	f, _ := os.Create(filepath.Join(dir, "disk1.img"))
	f.Truncate(1 << 30)
	f.Close()
	h, zeros := sha256.New(), make([]byte, 1<<20)
	for range 1024 {
		h.Write(zeros)
	}
	digest := fmt.Sprintf("SHA256(disk1.img)= %x\n", h.Sum(nil))
	testpkg.WriteFolder(t, dir, desc, testpkg.F("app.mf", string(testpkg.Manifest("SHA256", desc).Data)+digest))
	p := openAt(t, filepath.Join(dir, "app.ovf"), integrity.Options{Mode: integrity.Strict})
	view := p.Lookup("disks/disk1.img.raw")
	if view == nil {
		t.Fatalf("no view: %v", paths(p))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := view.Content.Read(ctx, make([]byte, 4096), 0, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("an interrupted strict read: %v, want context.Canceled", err)
	}
	if st, _ := view.Content.Status(); st != "pending" {
		t.Fatalf("the read returned only after verification (%s)", st)
	}
	r, err := view.Content.Read(context.Background(), make([]byte, 4096), 1<<20, false)
	if err != nil || r.Len() != 4096 {
		t.Fatalf("a later read: %v", err)
	}
	if st, _ := view.Content.Status(); st != "verified" {
		t.Errorf("after the read: %s", st)
	}
}
