package vdi

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
	"github.com/ovfmount/ovfmount/vdisk/blockmap"
)

// readChain reads [off, off+len(p)) of a chain, top layer first, as
// VirtualBox does: each layer's Hole runs from the layers below it (zeros
// past a layer's end or below the last), the rest from the layer itself.
// It is the test's stand-in for package vdisk's walk.
func readChain(t *testing.T, layers []blockmap.Mapper, p []byte, off int64) {
	t.Helper()
	if len(layers) == 0 || off >= layers[0].Size() {
		clear(p)
		return
	}
	top := layers[0]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		if pos >= top.Size() {
			clear(p[done:])
			return
		}
		r, err := top.Map(pos)
		if err != nil {
			t.Fatalf("Map(%d): %v", pos, err)
		}
		n := int(min(r.End()-pos, int64(len(p)-done)))
		dst := p[done : done+n]
		if r.Kind == blockmap.Hole {
			readChain(t, layers[1:], dst, pos)
		} else if _, err := blockmap.ReadAt(top, dst, pos); err != nil {
			t.Fatalf("ReadAt(%d): %v", pos, err)
		}
		done += n
	}
}

// flatChain is the chain's content computed from the specs alone: the
// child's stored blocks, zeros for its zero blocks, the parent's bytes
// (zeros past them) for its free blocks.
func flatChain(child *spec, parent []byte) []byte {
	bs := int(child.blockSize)
	flat := make([]byte, child.diskSize)
	for b, k := range child.kinds {
		start := b * bs
		if start >= len(flat) {
			break
		}
		dst := flat[start:min(len(flat), start+bs)]
		switch k {
		case 'S':
			copy(dst, child.block(b))
		case 'F':
			if start < len(parent) {
				copy(dst, parent[start:])
			}
		}
	}
	return flat
}

// checkChildMap checks that the child's Map gives each block the kind its
// spec says, at both ends and the middle of the block.
func checkChildMap(t *testing.T, img *Image, s *spec) {
	t.Helper()
	want := map[byte]blockmap.Kind{'F': blockmap.Hole, 'Z': blockmap.Zero, 'S': blockmap.Stored}
	bs := int64(s.blockSize)
	for b, k := range s.kinds {
		start := int64(b) * bs
		if start >= img.Size() {
			break
		}
		end := min(start+bs, img.Size())
		for _, off := range []int64{start, start + (end-start)/2, end - 1} {
			r, err := img.Map(off)
			if err != nil {
				t.Fatalf("Map(%d): %v", off, err)
			}
			if r.Kind != want[k] {
				t.Fatalf("Map(%d) (block %d, %q) = %v, want %v", off, b, k, r.Kind, want[k])
			}
			if err := r.Check(off, img.Size()); err != nil {
				t.Fatal(err)
			}
			// A run never spans blocks of another kind.
			for rb := r.Off / bs; rb*bs < r.End(); rb++ {
				if s.kinds[rb] != k {
					t.Fatalf("Map(%d) = [%d, %d) runs over block %d (%q) from block %d (%q)", off, r.Off, r.End(), rb, s.kinds[rb], b, k)
				}
			}
		}
	}
}

// baseFromQemu writes a dynamic VDI with qemu-io and returns its file, its
// virtual bytes from qemu-img convert, and its UUIDs as the file holds
// them (read here from the raw header bytes, not through the package).
func baseFromQemu(t *testing.T, dir string) (file, virt []byte, create, modify UUID) {
	t.Helper()
	testutil.RequireTool(t, "qemu-io")
	path := filepath.Join(dir, "base.vdi")
	testutil.QemuImg(t, "create", "-q", "-f", "vdi", path, "8M")
	for i, off := range []string{"0", "1M", "2M", "3M", "5M", "6M", "7M"} {
		runQemuIO(t, path, fmt.Sprintf("write -P %#x %s 1M", 0x41+i, off))
	}
	file = testutil.ReadFile(t, path)
	copy(create[:], file[0x188:])
	copy(modify[:], file[0x198:])
	virt = testutil.ReadFile(t, testutil.RawOracle(t, dir, path, "vdi"))
	return file, virt, create, modify
}

// TestDifferencing: a child built by the generator over a base qemu wrote,
// read through as VirtualBox would, against the flat model; its map
// against the spec; its parent check.
func TestDifferencing(t *testing.T) {
	dir := t.TempDir()
	baseFile, baseVirt, create, modify := baseFromQemu(t, dir)
	base := openPath(t, testutil.WriteFile(t, filepath.Join(dir, "base-copy.vdi"), baseFile))
	if base.CreateUUID() != create || base.ModifyUUID() != modify || base.Parent() != nil {
		t.Fatalf("base UUIDs %s, %s, parent %v; the file holds %s, %s", base.CreateUUID(), base.ModifyUUID(), base.Parent(), create, modify)
	}

	// The child is larger than the base, as after VBoxManage modifymedium
	// --resize: its last blocks read the parent's nothing as zeros.
	child := spec{
		imageType: typeDiff,
		data:      testData(10<<20, 9),
		kinds:     []byte("SFZFSSFZFS"),
		shuffle:   4,
		linkage:   create,
		parentMod: modify,
		create:    UUID{0xc0, 0xc1, 0xc2, 0xc3, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9},
	}
	childFile := build(child)
	child.defaults()

	t.Run("refused without AllowParent", func(t *testing.T) {
		_, err := openBytes(childFile)
		if !errors.Is(err, blockmap.ErrUnsupported) || !strings.Contains(err.Error(), "{"+create.String()+"}") {
			t.Fatalf("Open = %v, want ErrUnsupported naming the parent UUID %s", err, create)
		}
		t.Log(err)
	})

	img, err := openChild(childFile, "child.vdi")
	if err != nil {
		t.Fatal(err)
	}
	if img.Format() != "vdi differencing (1 MiB blocks)" || len(img.Warnings()) > 0 {
		t.Errorf("Format() = %q, Warnings() = %q", img.Format(), img.Warnings())
	}
	if img.ParentUUID() != create || img.ParentModifyUUID() != modify {
		t.Errorf("ParentUUID() = %s, ParentModifyUUID() = %s", img.ParentUUID(), img.ParentModifyUUID())
	}
	p := img.Parent()
	if p == nil || len(p.Names) != 0 || p.Format != "" || p.Check == nil {
		t.Fatalf("Parent() = %+v", p)
	}
	checkChildMap(t, img, &child)

	t.Run("chain against the flat model", func(t *testing.T) {
		if err := p.Check(base); err != nil {
			t.Fatal(err)
		}
		want := flatChain(&child, baseVirt)
		got := make([]byte, len(want))
		readChain(t, []blockmap.Mapper{img, base}, got, 0)
		if !bytes.Equal(got, want) {
			t.Fatal("the chain does not read as the flat model")
		}
		// Reads that start and end inside blocks of each kind.
		for _, r := range [][2]int64{{1<<20 - 100, 300}, {3<<20 + 5, 2 << 20}, {7<<20 - 1, 2}, {9<<20 + 17, 1<<20 - 17}} {
			buf := make([]byte, r[1])
			readChain(t, []blockmap.Mapper{img, base}, buf, r[0])
			if !bytes.Equal(buf, want[r[0]:r[0]+r[1]]) {
				t.Fatalf("reading [%d, +%d) through the chain differs from the model", r[0], r[1])
			}
		}
	})

	t.Run("child's own layer against qemu", func(t *testing.T) {
		// Made a base (type normal, no parent), the child's file is one
		// qemu reads: its free blocks are zeros there, as in blockmap.ReadAt.
		asBase := bytes.Clone(childFile)
		le.PutUint32(asBase[preHeaderSize+4:], typeNormal)
		clear(asBase[preHeaderSize+0x160 : preHeaderSize+0x180])
		checkQemu(t, img, testutil.WriteFile(t, filepath.Join(dir, "child-as-base.vdi"), asBase))
	})

	t.Run("Check", func(t *testing.T) {
		other := spec{data: baseVirt, create: UUID{0xde, 0xad}}
		wrong, err := openBytes(build(other))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Check(wrong)
		if !errors.Is(err, ErrWrongParent) || !strings.Contains(err.Error(), create.String()) || !strings.Contains(err.Error(), wrong.CreateUUID().String()) {
			t.Fatalf("Check(wrong parent) = %v, want ErrWrongParent naming %s and %s", err, create, wrong.CreateUUID())
		}
		t.Log(err)

		// The parent written to after the child was made (a new
		// uuidModify) is still the parent, for VirtualBox and here.
		touched := bytes.Clone(baseFile)
		touched[0x198] ^= 0xff
		tb, err := openBytes(touched)
		if err != nil {
			t.Fatal(err)
		}
		if tb.ModifyUUID() == img.ParentModifyUUID() {
			t.Fatal("the touched parent's modification UUID did not change")
		}
		if err := p.Check(tb); err != nil {
			t.Errorf("Check(parent with a new modification UUID) = %v, want nil", err)
		}

		if err := p.Check(fakeMapper{}); !errors.Is(err, ErrWrongParent) || !strings.Contains(err.Error(), "vdi.fakeMapper, not a VDI image") {
			t.Errorf("Check(another format) = %v", err)
		}
		t.Log(p.Check(fakeMapper{}))

		// A chain of two children: the grandchild's parent is the child.
		gc := spec{imageType: typeDiff, data: testData(10<<20, 11), kinds: []byte("FSFFFFFFZF"), linkage: img.CreateUUID()}
		g, err := openChild(build(gc), "grandchild.vdi")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Parent().Check(img); err != nil {
			t.Errorf("grandchild's Check(child) = %v", err)
		}
		if err := g.Parent().Check(base); !errors.Is(err, ErrWrongParent) {
			t.Errorf("grandchild's Check(base) = %v, want ErrWrongParent", err)
		}
		// Three layers: the grandchild's free blocks show the child's
		// layer, whose free blocks show the base.
		gc.defaults()
		want := flatChain(&gc, flatChain(&child, baseVirt))
		got := make([]byte, len(want))
		readChain(t, []blockmap.Mapper{g, img, base}, got, 0)
		if !bytes.Equal(got, want) {
			t.Error("the three-layer chain does not read as the flat model")
		}
	})
}

type fakeMapper struct{}

func (fakeMapper) Size() int64                         { return 1 << 20 }
func (fakeMapper) Map(off int64) (blockmap.Run, error) { return blockmap.Run{Len: 1 << 20}, nil }

// TestDifferencingHeaders: what a differencing image's header can get
// wrong, and a base image with a stale parent UUID.
func TestDifferencingHeaders(t *testing.T) {
	data := testData(2<<20, 3)
	_, err := openChild(build(spec{imageType: typeDiff, data: data}), "x.vdi")
	if !errors.Is(err, blockmap.ErrCorrupt) || !strings.Contains(err.Error(), "null parent UUID") {
		t.Errorf("differencing image without a parent UUID: %v", err)
	}
	// VirtualBox 3.0 and 3.1 left parent UUIDs in base images.
	img, err := openChild(build(spec{data: data, linkage: UUID{5}}), "x.vdi")
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(img.Warnings(), "\n"); img.Parent() != nil || img.ParentUUID() != (UUID{}) || !strings.Contains(w, "ignored, as VirtualBox does") {
		t.Errorf("base image with a parent UUID: Parent() = %v, warnings %q", img.Parent(), w)
	}
	// A version 0.2 child has no parent modification UUID.
	v0 := spec{version: v0Version, imageType: typeDiff, data: data, kinds: []byte("FS"), linkage: UUID{7}}
	img, err = openChild(build(v0), "v0.vdi")
	if err != nil {
		t.Fatal(err)
	}
	v0.defaults()
	if img.ParentUUID() != (UUID{7}) || !img.ParentModifyUUID().IsZero() || img.Format() != "vdi differencing (1 MiB blocks, version 0.2)" {
		t.Errorf("v0 child: %s, %s, %q", img.ParentUUID(), img.ParentModifyUUID(), img.Format())
	}
	checkChildMap(t, img, &v0)
}

// TestUUIDString: VirtualBox prints the first three fields of a UUID from
// little-endian bytes (RTUuidToStr).
func TestUUIDString(t *testing.T) {
	u := UUID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	if got, want := u.String(), "04030201-0605-0807-090a-0b0c0d0e0f10"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
