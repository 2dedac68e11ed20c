package partition

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ovfmount/ovfmount/internal/testutil"
)

// compareSfdisk checks a table against `sfdisk --json`: the same
// partitions by number, place, type, UUID, name and boot flag.
func compareSfdisk(t *testing.T, img string, tab *Table, sf *sfTable) {
	t.Helper()
	scheme := map[string]string{"dos": "mbr", "gpt": "gpt"}[sf.Label]
	if tab.Scheme != scheme || tab.DiskID != sf.ID || tab.SectorSize != sf.SectorSize {
		t.Errorf("table %s id %s sector %d; sfdisk says %s id %s sector %d",
			tab.Scheme, tab.DiskID, tab.SectorSize, sf.Label, sf.ID, sf.SectorSize)
	}
	if len(tab.Partitions) != len(sf.Partitions) {
		t.Errorf("%d partitions; sfdisk lists %d", len(tab.Partitions), len(sf.Partitions))
	}
	ssz := int64(sf.SectorSize)
	for _, s := range sf.Partitions {
		n := s.number(t, img)
		p := tab.byNumber(n)
		if p == nil {
			t.Errorf("p%d (sfdisk: start %d size %d) missing", n, s.Start, s.Size)
			continue
		}
		bootable := s.Bootable || strings.Contains(s.Attrs, "LegacyBIOSBootable")
		extended := scheme == "mbr" && (s.Type == "5" || s.Type == "f" || s.Type == "85")
		if p.Start != s.Start*ssz || p.Size != s.Size*ssz || p.Type != s.Type || p.Name != s.Name ||
			p.Bootable != bootable || p.Extended != extended {
			t.Errorf("p%d: start %d size %d type %s name %q boot %v ext %v; sfdisk: start %d size %d type %s name %q boot %v ext %v",
				n, p.Start, p.Size, p.Type, p.Name, p.Bootable, p.Extended,
				s.Start*ssz, s.Size*ssz, s.Type, s.Name, bootable, extended)
		}
		if scheme == "gpt" && p.UUID != s.UUID {
			t.Errorf("p%d: uuid %s, sfdisk %s", n, p.UUID, s.UUID)
		}
	}
}

// comparePartx checks a table against libblkid's reading of it (partx):
// numbers, places, PARTUUIDs, names, types and flags.
func comparePartx(t *testing.T, tab *Table, px []pxPart) {
	t.Helper()
	if len(tab.Partitions) != len(px) {
		t.Errorf("%d partitions; partx lists %d", len(tab.Partitions), len(px))
	}
	for _, x := range px {
		p := tab.byNumber(x.NR)
		if p == nil {
			t.Errorf("p%d (partx: start %d sectors %d) missing", x.NR, x.Start, x.Size)
			continue
		}
		typ := strings.TrimPrefix(x.Type, "0x")
		if x.Scheme == "gpt" {
			typ = strings.ToUpper(typ)
		}
		flags := p.Attributes
		if x.Scheme == "dos" && p.Bootable {
			flags = 0x80
		}
		if p.Start != x.Start*512 || p.Size != x.Size*512 || !strings.EqualFold(p.UUID, x.UUID) ||
			p.Name != x.Name || p.Type != typ || flags != x.Flags {
			t.Errorf("p%d: start %d size %d uuid %s name %q type %s flags %#x; partx: start %d size %d uuid %s name %q type %s flags %#x",
				x.NR, p.Start, p.Size, p.UUID, p.Name, p.Type, flags,
				x.Start*512, x.Size*512, x.UUID, x.Name, typ, x.Flags)
		}
	}
}

// compareSgdisk checks a GPT against `sgdisk -p` and `sgdisk -i N`.
func compareSgdisk(t *testing.T, tab *Table, sg []sgPart) {
	t.Helper()
	if len(tab.Partitions) != len(sg) {
		t.Errorf("%d partitions; sgdisk lists %d", len(tab.Partitions), len(sg))
	}
	ssz := int64(tab.SectorSize)
	for _, s := range sg {
		p := tab.byNumber(s.Number)
		if p == nil {
			t.Errorf("p%d (sgdisk: %d-%d) missing", s.Number, s.First, s.Last)
			continue
		}
		if p.Start != s.First*ssz || p.Size != (s.Last-s.First+1)*ssz || p.Type != s.TypeGUID ||
			p.UUID != s.UUID || p.Attributes != s.Attrs || p.Name != s.Name {
			t.Errorf("p%d: start %d size %d type %s uuid %s attrs %#x name %q; sgdisk: %d-%d type %s uuid %s attrs %#x name %q",
				s.Number, p.Start, p.Size, p.Type, p.UUID, p.Attributes, p.Name,
				s.First, s.Last, s.TypeGUID, s.UUID, s.Attrs, s.Name)
		}
	}
}

// markPartitions writes a marker at the start of each partition and
// checks that Section reads it back.
func markPartitions(t *testing.T, img string, tab *Table) {
	t.Helper()
	for _, p := range tab.Partitions {
		if !p.Extended {
			patch(t, img, p.Start, []byte(fmt.Sprintf("partition %d here", p.Number)))
		}
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range tab.Partitions {
		if p.Extended {
			continue
		}
		want := fmt.Sprintf("partition %d here", p.Number)
		b := make([]byte, len(want))
		if _, err := p.Section(f).ReadAt(b, 0); err != nil || string(b) != want {
			t.Errorf("p%d section reads %q, %v", p.Number, b, err)
		}
	}
}

func TestMBRWithLogicalPartitions(t *testing.T) {
	img := newImage(t, 64<<20)
	// Three primaries, an extended one in slot 4, five logical ones.
	sfdisk(t, img, `label: dos
label-id: 0x1234abcd
size=4M, type=83, bootable
size=2M, type=82
size=3M, type=c
type=5
size=4M, type=83
size=4M, type=8e
size=1M, type=7
size=5M, type=83
size=2M, type=fd
`)
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	if len(tab.Partitions) != 9 || len(tab.Warnings) != 0 {
		t.Errorf("want 9 partitions and no warnings: %+v", tab)
	}
	if p := tab.byNumber(5); p == nil || p.UUID != "1234abcd-05" || p.TypeName != "Linux" {
		t.Errorf("p5 = %+v", p)
	}
	markPartitions(t, img, tab)
}

// An extended partition in slot 2 with primaries after it, and an
// extended type 0x0F (W95 Ext'd LBA).
func TestMBRExtendedInTheMiddle(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, `label: dos
start=2048, size=8192, type=83
start=10240, size=40960, type=f
start=51200, size=8192, type=83
start=12288, size=8192, type=83
start=22528, size=8192, type=82
`)
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
}

func TestGPTFromSfdisk(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, `label: gpt
label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
size=4M, type=U, name="EFI system"
size=8M, type=L, name="données root ✓", attrs="LegacyBIOSBootable RequiredPartition GUID:60"
size=2M, type=S
size=3M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="a name of exactly thirty-six chars!!"
disk.img9: start=40960, size=4096, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=11111111-2222-3333-4444-555555555555, name=data
`)
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	compareSgdisk(t, tab, sgdiskParts(t, img))
	if len(tab.Warnings) != 0 {
		t.Errorf("warnings: %q", tab.Warnings)
	}
	want := map[int]string{1: "EFI System", 2: "Linux filesystem", 3: "Linux swap", 4: "Linux LVM", 9: "Microsoft basic data"}
	for n, name := range want {
		if p := tab.byNumber(n); p == nil || p.TypeName != name {
			t.Errorf("p%d type name: %+v, want %q", n, p, name)
		}
	}
	markPartitions(t, img, tab)
}

func TestGPTFromSgdisk(t *testing.T) {
	img := newImage(t, 64<<20)
	run(t, "", "sgdisk",
		"-n", "1:2048:+4M", "-t", "1:EF00", "-c", "1:EFI System Partition",
		"-n", "2:0:+8M", "-t", "2:8300", "-c", "2:root", "-A", "2:set:2", "-A", "2:set:63",
		"-n", "4:0:+4M", "-t", "4:8E00", "-c", "4:lvm",
		"-n", "128:0:+1M", "-t", "128:0700", "-c", "128:last entry",
		img)
	tab := mustRead(t, img)
	compareSgdisk(t, tab, sgdiskParts(t, img))
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	if p := tab.byNumber(2); p == nil || !p.Bootable {
		t.Errorf("p2 should be legacy BIOS bootable: %+v", p)
	}
}

// sgdisk --hybrid puts GPT partitions into the MBR beside the 0xEE entry;
// Linux, sfdisk and sgdisk read the GPT.
func TestHybridMBR(t *testing.T) {
	img := newImage(t, 64<<20)
	run(t, "", "sgdisk", "-n", "1:2048:+4M", "-t", "1:0700", "-n", "2:0:+8M", "-t", "2:8300", "-n", "3:0:+4M", img)
	run(t, "", "sgdisk", "--hybrid=1:2", img)
	mbr := readAt(t, img, 0, 512)
	var types []byte
	for i := 0; i < 4; i++ {
		types = append(types, mbr[0x1BE+16*i+4])
	}
	if !strings.Contains(string(types), "\xee") || strings.Count(string(types), "\x00") > 1 {
		t.Fatalf("sgdisk --hybrid left MBR types %x", types)
	}
	tab := mustRead(t, img)
	compareSgdisk(t, tab, sgdiskParts(t, img))
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	if !hasWarning(tab, "hybrid MBR") {
		t.Errorf("no hybrid warning: %q", tab.Warnings)
	}
}

// sgdisk -g converts an MBR with logical partitions to a GPT.
func TestSgdiskConversion(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: dos\nsize=4M, type=83\ntype=5\nsize=4M, type=83\nsize=4M, type=82\nsize=4M, type=8e\n")
	before := mustRead(t, img)
	if before.Scheme != "mbr" || len(before.Partitions) != 5 {
		t.Fatalf("before conversion: %+v", before)
	}
	run(t, "", "sgdisk", "-g", img)
	tab := mustRead(t, img)
	if tab.Scheme != "gpt" {
		t.Fatalf("after sgdisk -g: %+v", tab)
	}
	compareSgdisk(t, tab, sgdiskParts(t, img))
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
}

// A 4Kn disk: sfdisk on a loop device with 4096-byte sectors writes the
// GPT header at byte 4096.
func Test4KSectorGPT(t *testing.T) {
	testutil.RequireTool(t, "losetup")
	img := newImage(t, 64<<20)
	out, err := exec.Command("losetup", "-f", "--show", "-b", "4096", img).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("losetup -b 4096: %v: %s", err, out)
		if os.Geteuid() == 0 && os.Getenv("OVFMOUNT_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dev := strings.TrimSpace(string(out))
	detached := false
	detach := func() {
		if !detached {
			detached = true
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		}
	}
	defer detach()
	sfdisk(t, dev, "label: gpt\nsize=4M, type=U, name=esp\nsize=16M, type=L, name=root\n")
	sf, _ := sfdiskJSON(t, dev)
	detach()
	if sf.SectorSize != 4096 {
		t.Fatalf("sfdisk on %s: sector size %d", dev, sf.SectorSize)
	}
	if string(readAt(t, img, 4096, 8)) != "EFI PART" {
		t.Fatal("no GPT header at byte 4096")
	}
	tab := mustRead(t, img)
	for i := range sf.Partitions {
		sf.Partitions[i].Node = img + strings.TrimPrefix(sf.Partitions[i].Node, dev+"p")
	}
	compareSfdisk(t, img, tab, sf)
}

// A disk without a table: a filesystem made on the whole disk.
func TestNoTable(t *testing.T) {
	for _, mkfs := range [][]string{
		{"mkfs.ext4", "-q", "-F"},
		{"mkfs.vfat"}, // FAT boot sector with 0x55AA: msdos.c rejects its boot indicators
		{"mkfs.ntfs", "-F", "-Q", "-q"},
		{"mkfs.xfs", "-q", "-f"},
	} {
		t.Run(mkfs[0], func(t *testing.T) {
			img := newImage(t, 320<<20) // mkfs.xfs wants 300 MB
			run(t, "", mkfs[0], append(mkfs[1:], img)...)
			_, err := readImage(t, img)
			if !errors.Is(err, ErrNoTable) {
				t.Errorf("Read: %v, want ErrNoTable", err)
			}
			// libblkid agrees: no partitions.
			if px := partx(t, img); len(px) != 0 {
				t.Errorf("partx lists %+v", px)
			}
		})
	}
	img := newImage(t, 1<<20)
	if _, err := readImage(t, img); !errors.Is(err, ErrNoTable) {
		t.Errorf("zero disk: %v", err)
	}
	small := newImage(t, 300)
	if _, err := readImage(t, small); !errors.Is(err, ErrNoTable) {
		t.Errorf("300-byte disk: %v", err)
	}
}

// An MBR label without partitions is a table with none.
func TestEmptyMBR(t *testing.T) {
	img := newImage(t, 8<<20)
	sfdisk(t, img, "label: dos\nlabel-id: 0xdeadbeef\n")
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
}

// Every type name we know is the name sfdisk gives it.
func TestTypeNames(t *testing.T) {
	parse := func(label string) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(run(t, "", "sfdisk", "--label", label, "-T"), "\n")[1:] {
			id, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
			if ok {
				m[id] = strings.TrimSpace(name)
			}
		}
		return m
	}
	dos, gpt := parse("dos"), parse("gpt")
	for typ, name := range mbrTypeNames {
		if got := dos[strconv.FormatUint(uint64(typ), 16)]; got != name {
			t.Errorf("MBR type %x: %q, sfdisk says %q", typ, name, got)
		}
	}
	for typ, name := range gptTypeNames {
		if got := gpt[typ]; got != name {
			t.Errorf("GPT type %s: %q, sfdisk says %q", typ, name, got)
		}
	}
	if len(mbrTypeNames) < 90 || len(gptTypeNames) < 40 {
		t.Errorf("tables too small: %d MBR, %d GPT", len(mbrTypeNames), len(gptTypeNames))
	}
}
