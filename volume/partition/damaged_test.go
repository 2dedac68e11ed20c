package partition

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"strings"
	"testing"
)

// Tables damaged by overwriting bytes, compared with what sfdisk and
// libblkid (partx) make of them, and with the kernel's rule where they
// differ from it (said at each place).

func gptImage(t *testing.T, size int64) string {
	img := newImage(t, size)
	sfdisk(t, img, `label: gpt
size=4M, type=U, name=esp
size=8M, type=L, name=root
size=4M, type=S, name=swap
`)
	return img
}

func lastLBA(t *testing.T, img string) int64 {
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()/512 - 1
}

func TestGPTPrimaryHeaderZeroed(t *testing.T) {
	img := gptImage(t, 64<<20)
	want, _ := sfdiskJSON(t, img)
	patch(t, img, 512, make([]byte, 512))
	tab := mustRead(t, img)
	sf, complaint := sfdiskJSON(t, img)
	if !strings.Contains(complaint, "primary GPT table is corrupt, but the backup appears OK") {
		t.Errorf("sfdisk did not use the backup: %q", complaint)
	}
	compareSfdisk(t, img, tab, sf)
	compareSfdisk(t, img, tab, want)
	if !hasWarning(tab, "Primary GPT is invalid, using alternate GPT.") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

// A sound primary header whose entry array fails its CRC: the backup,
// found where the primary header says, is used.
func TestGPTPrimaryEntriesCorrupt(t *testing.T) {
	img := gptImage(t, 64<<20)
	want, _ := sfdiskJSON(t, img)
	b := readAt(t, img, 1024+56, 1)
	patch(t, img, 1024+56, []byte{b[0] ^ 0xff}) // inside entry 0's name
	tab := mustRead(t, img)
	sf, complaint := sfdiskJSON(t, img)
	if !strings.Contains(complaint, "primary GPT table is corrupt") {
		t.Errorf("sfdisk did not see the damage: %q", complaint)
	}
	compareSfdisk(t, img, tab, sf)
	compareSfdisk(t, img, tab, want)
	if !hasWarning(tab, "Primary GPT is invalid") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

func TestGPTBackupHeaderZeroed(t *testing.T) {
	img := gptImage(t, 64<<20)
	patch(t, img, lastLBA(t, img)*512, make([]byte, 512))
	tab := mustRead(t, img)
	sf, complaint := sfdiskJSON(t, img)
	if !strings.Contains(complaint, "backup GPT table is corrupt, but the primary appears OK") {
		t.Errorf("sfdisk did not notice: %q", complaint)
	}
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	if !hasWarning(tab, "Alternate GPT is invalid, using primary GPT.") {
		t.Errorf("warnings %q", tab.Warnings)
	}
	// sgdisk complains as well.
	out, _, _ := runErr(t, "", "sgdisk", "-v", img)
	if !strings.Contains(out, "corrupt GPT") {
		t.Errorf("sgdisk -v said nothing: %s", out)
	}
}

// Both headers gone behind a protective MBR: Linux shows no partitions
// (efi.c fails, msdos.c ignores a disk with a 0xEE entry), nor does
// libblkid; sfdisk falls back to showing the protective MBR itself.
func TestGPTBothHeadersZeroed(t *testing.T) {
	img := gptImage(t, 64<<20)
	patch(t, img, 512, make([]byte, 512))
	patch(t, img, lastLBA(t, img)*512, make([]byte, 512))
	if _, err := readImage(t, img); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Read: %v, want ErrCorrupt", err)
	}
	if px := partx(t, img); len(px) != 0 {
		t.Errorf("partx lists %+v", px)
	}
}

// An image grown after partitioning (qemu-img resize): the backup stays
// where it was, the kernel and sfdisk read the table with a complaint.
func TestGPTDiskGrown(t *testing.T) {
	img := gptImage(t, 32<<20)
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img)
	sf, complaint := sfdiskJSON(t, img)
	if !strings.Contains(complaint, "not on the end of the device") {
		t.Errorf("sfdisk did not notice: %q", complaint)
	}
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	if !hasWarning(tab, "GPT:Alternate GPT header not at the end of the disk.") ||
		!hasWarning(tab, "GPT:Primary header thinks Alt. header is not at the end of the disk.") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

// An image cut short: both headers' last usable LBA lies past the end,
// which the kernel's is_gpt_valid rejects, and the backup is gone. Linux
// and libblkid show no partitions; sfdisk shows the protective MBR.
func TestGPTDiskShrunk(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: gpt\nsize=4M\nsize=50M\n")
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := readImage(t, img); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Read: %v, want ErrCorrupt", err)
	}
	if px := partx(t, img); len(px) != 0 {
		t.Errorf("partx lists %+v", px)
	}
}

// rewriteGPTEntry changes entry idx of the GPT whose header is at lba and
// fixes both CRCs, as a tool writing a bad entry would.
func rewriteGPTEntry(t *testing.T, img string, lba int64, idx int, change func(e []byte)) {
	t.Helper()
	h := readAt(t, img, lba*512, 512)
	le := binary.LittleEndian
	entriesLBA, n := int64(le.Uint64(h[72:])), int(le.Uint32(h[80:]))
	entries := readAt(t, img, entriesLBA*512, n*128)
	change(entries[idx*128 : (idx+1)*128])
	patch(t, img, entriesLBA*512, entries)
	le.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:le.Uint32(h[12:])]))
	patch(t, img, lba*512, h)
}

// A GPT entry whose last LBA lies past the disk: the kernel's is_pte_valid
// drops it (sfdisk lists it as it is written).
func TestGPTEntryPastTheEnd(t *testing.T) {
	img := gptImage(t, 64<<20)
	last := lastLBA(t, img)
	for _, lba := range []int64{1, last} {
		rewriteGPTEntry(t, img, lba, 1, func(e []byte) { binary.LittleEndian.PutUint64(e[40:], uint64(last+100)) })
	}
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	if len(sf.Partitions) != 3 || sf.Partitions[1].Start+sf.Partitions[1].Size != last+101 {
		t.Fatalf("sfdisk does not show the damaged entry: %+v", sf.Partitions)
	}
	sf.Partitions = append(sf.Partitions[:1], sf.Partitions[2:]...)
	compareSfdisk(t, img, tab, sf)
	if tab.byNumber(2) != nil || !hasWarning(tab, "p2: GPT entry") {
		t.Errorf("p2 kept: %+v, warnings %q", tab.byNumber(2), tab.Warnings)
	}
}

// MBR partitions past the end of an image cut short: the kernel truncates
// the one that runs past the end ("p2 size N extends beyond EOD,
// truncated") and drops the one that starts past it; sfdisk lists both
// as they are written, which gives the starts and the sizes to cut.
func TestMBRPastTheEnd(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: dos\nstart=2048, size=16384, type=83\nstart=32768, size=65536, type=83\nstart=114688, size=8192, type=82\n")
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	end := int64(32 << 20)
	var kept []sfPart
	for _, p := range sf.Partitions {
		if p.Start*512 >= end {
			continue // dropped as the kernel drops it
		}
		if (p.Start+p.Size)*512 > end {
			p.Size = end/512 - p.Start // truncated as the kernel truncates it
		}
		kept = append(kept, p)
	}
	sf.Partitions = kept
	compareSfdisk(t, img, tab, sf)
	if !hasWarning(tab, "p2 size 65536 extends beyond EOD, truncated") || !hasWarning(tab, "p3 start 114688 is beyond EOD") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

// Overlapping MBR partitions are kept, as the kernel keeps them, with a
// warning; sfdisk and libblkid list both.
func TestMBROverlap(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: dos\nsize=8M, type=83\nsize=8M, type=83\nsize=8M, type=83\n")
	start := make([]byte, 4)
	binary.LittleEndian.PutUint32(start, 6144) // p2 now starts inside p1
	patch(t, img, 0x1BE+16+8, start)
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	if !hasWarning(tab, "p2 overlaps p1") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

// An EBR chain whose last link points back to the first EBR. libblkid
// stops at the loop, as we do; the kernel would repeat p5-p7 until p255
// and sfdisk until p60.
func TestEBRLoop(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, `label: dos
size=4M, type=83
size=4M, type=83
size=4M, type=83
type=5
size=4M, type=83
size=4M, type=82
size=4M, type=83
`)
	tab := mustRead(t, img)
	ext := tab.byNumber(4)
	if ext == nil || !ext.Extended {
		t.Fatalf("no extended p4: %+v", tab)
	}
	// The last EBR is 2048 sectors before p7; its link entry is the
	// second.
	link := make([]byte, 16)
	link[4] = 0x05
	binary.LittleEndian.PutUint32(link[8:], 0)
	binary.LittleEndian.PutUint32(link[12:], 2048)
	patch(t, img, tab.byNumber(7).Start-2048*512+0x1BE+16, link)
	tab = mustRead(t, img)
	comparePartx(t, tab, partx(t, img))
	if !hasWarning(tab, "loops back") {
		t.Errorf("warnings %q", tab.Warnings)
	}
}

// An MBR entry of type 0 with a size is a partition for the kernel (only
// a zero size is skipped), for libblkid and for sfdisk.
func TestMBRTypeZero(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: dos\nsize=4M, type=83\nsize=4M, type=83\nsize=4M, type=83\n")
	patch(t, img, 0x1BE+16+4, []byte{0})
	tab := mustRead(t, img)
	sf, _ := sfdiskJSON(t, img)
	compareSfdisk(t, img, tab, sf)
	comparePartx(t, tab, partx(t, img))
	if p := tab.byNumber(2); p == nil || p.Type != "0" || p.TypeName != "Empty" {
		t.Errorf("p2 = %+v", p)
	}
}

// A boot indicator other than 0x00/0x80 makes sector 0 a boot sector for
// msdos.c, not a table; libblkid agrees.
func TestMBRBadBootIndicator(t *testing.T) {
	img := newImage(t, 64<<20)
	sfdisk(t, img, "label: dos\nsize=4M, type=83\n")
	patch(t, img, 0x1BE, []byte{0x12})
	if _, err := readImage(t, img); !errors.Is(err, ErrNoTable) {
		t.Errorf("Read: %v, want ErrNoTable", err)
	}
	if px := partx(t, img); len(px) != 0 {
		t.Errorf("partx lists %+v", px)
	}
}

// patchGPTHeader changes the GPT header at lba and fixes its CRC.
func patchGPTHeader(t *testing.T, img string, lba int64, change func(h []byte)) {
	t.Helper()
	h := readAt(t, img, lba*512, 512)
	change(h)
	le := binary.LittleEndian
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:le.Uint32(h[12:])]))
	patch(t, img, lba*512, h)
}

// A primary header that announces a huge entry array, or entries of a
// size other than 128 bytes, is invalid for the kernel (KMALLOC_MAX_SIZE,
// sizeof(gpt_entry)) and for sfdisk: the backup is used, and nothing
// large is allocated.
func TestGPTHostileEntryArray(t *testing.T) {
	for name, change := range map[string]func(h []byte){
		"4G entries":    func(h []byte) { binary.LittleEndian.PutUint32(h[80:], 0xFFFFFFFF) },
		"64K entries":   func(h []byte) { binary.LittleEndian.PutUint32(h[80:], 1<<16) },
		"256-byte size": func(h []byte) { binary.LittleEndian.PutUint32(h[84:], 256) },
		"no entries":    func(h []byte) { binary.LittleEndian.PutUint32(h[80:], 0) },
		"array past the end": func(h []byte) {
			binary.LittleEndian.PutUint64(h[72:], 1<<40)
		},
	} {
		t.Run(name, func(t *testing.T) {
			img := gptImage(t, 64<<20)
			want, _ := sfdiskJSON(t, img)
			patchGPTHeader(t, img, 1, change)
			tab := mustRead(t, img)
			compareSfdisk(t, img, tab, want)
			if !hasWarning(tab, "Primary GPT is invalid") {
				t.Errorf("warnings %q", tab.Warnings)
			}
			if _, complaint := sfdiskJSON(t, img); !strings.Contains(complaint, "primary GPT table is corrupt") {
				t.Errorf("sfdisk: %q", complaint)
			}
		})
	}
}
