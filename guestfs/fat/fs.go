package fat

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/guestfs"
	"github.com/ovfmount/ovfmount/lru"
)

var _ guestfs.FS = (*FS)(nil)

// rootIno is the root directory's inode number; every other inode number
// is the volume byte offset of a file's 8.3 directory entry, which is at
// least the first data sector's offset and so never 1.
const rootIno = 1

// Cache budgets: parsed directories, FAT32 table chunks and file cluster
// runs, each bounded in bytes.
const (
	dirCacheBytes  = 4 << 20
	fatCacheBytes  = 2 << 20
	runsCacheBytes = 1 << 20
)

// FS is an opened FAT12, FAT16 or FAT32 volume.
type FS struct {
	r    io.ReaderAt
	size int64 // bytes readable: the volume's, capped by what the BPB claims

	bits        int    // 12, 16 or 32
	eoc         uint32 // the smallest end-of-chain mark; eoc-1 is the bad-cluster mark
	sectorSize  int64
	clusterSize int64
	fatOff      int64 // the FAT in use
	fatBytes    int64 // the bytes of one FAT
	rootOff     int64 // FAT12/16: the fixed root directory
	rootBytes   int64
	rootCluster uint32 // FAT32: the root directory's first cluster
	dataOff     int64  // cluster 2
	clusters    uint32 // data clusters
	maxCluster  uint32 // clusters + 1

	table    []byte // FAT12/16: the whole FAT
	fatCache *lru.Cache[int64, []byte]
	dirs     *lru.Cache[dirKey, *dirInfo]
	runs     *lru.Cache[[2]uint32, []run]

	info guestfs.Info
}

// Open reads the boot sector and, on FAT12 and FAT16, the FAT.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < bootSize {
		return nil, fmt.Errorf("fat: volume of %d bytes: %w", size, guestfs.ErrNotFS)
	}
	b := make([]byte, bootSize)
	fs := &FS{r: r, size: size}
	if err := fs.readAt(b, 0); err != nil {
		return nil, fmt.Errorf("fat: boot sector: %w", err)
	}
	bs, err := parseBoot(b)
	if err != nil {
		return nil, err
	}
	fs.sectorSize = bs.sectorSize
	fs.clusterSize = bs.sectorSize * bs.sectorsPerClust
	volBytes := bs.totalSectors * bs.sectorSize
	var warn []string
	if volBytes > size {
		warn = append(warn, fmt.Sprintf("the boot sector claims %d bytes, the volume has %d", volBytes, size))
	} else {
		fs.size = volBytes
	}
	rootSectors := (bs.rootEntries*32 + bs.sectorSize - 1) / bs.sectorSize
	fs.rootOff = (bs.reserved + bs.numFATs*bs.fatSectors) * bs.sectorSize
	fs.rootBytes = bs.rootEntries * 32
	dataSector := bs.reserved + bs.numFATs*bs.fatSectors + rootSectors
	if dataSector >= bs.totalSectors {
		return nil, fmt.Errorf("fat: data area at sector %d, past the volume's %d sectors: %w", dataSector, bs.totalSectors, guestfs.ErrCorrupt)
	}
	fs.dataOff = dataSector * bs.sectorSize
	count := (bs.totalSectors - dataSector) / bs.sectorsPerClust
	fs.fatBytes = bs.fatSectors * bs.sectorSize
	// Linux's rule: a zero 16-bit FAT size means FAT32, else the cluster
	// count picks FAT12 or FAT16.
	switch {
	case bs.fat32:
		fs.bits, fs.eoc = 32, 0x0FFFFFF8
		if bs.rootEntries != 0 {
			warn = append(warn, fmt.Sprintf("FAT32 boot sector gives %d fixed root entries; ignored", bs.rootEntries))
			// The data area then starts after them, as Linux computes it.
		}
	case count <= maxFAT12Clusters:
		fs.bits, fs.eoc = 12, 0xFF8
	default:
		fs.bits, fs.eoc = 16, 0xFFF8
	}
	if bs.fat32 && count > maxFAT32Clusters || !bs.fat32 && count > 0xFFF5-1 {
		return nil, fmt.Errorf("fat: %d clusters is too many for FAT%d: %w", count, fs.bits, guestfs.ErrCorrupt)
	}
	if count == 0 {
		return nil, fmt.Errorf("fat: no data clusters: %w", guestfs.ErrCorrupt)
	}
	if fatEntries := fs.fatBytes * 8 / int64(fs.bits); count+2 > fatEntries {
		return nil, fmt.Errorf("fat: %d clusters but the FAT holds %d entries: %w", count, fatEntries, guestfs.ErrCorrupt)
	}
	fs.clusters = uint32(count)
	fs.maxCluster = uint32(count + 1)
	fs.fatOff = bs.reserved * bs.sectorSize
	if bs.fat32 && bs.extFlags&0x80 != 0 {
		// Mirroring off: only the FAT the low bits name is in use.
		active := int64(bs.extFlags & 0xF)
		if active >= bs.numFATs {
			return nil, fmt.Errorf("fat: active FAT %d of %d: %w", active, bs.numFATs, guestfs.ErrCorrupt)
		}
		fs.fatOff += active * fs.fatBytes
	}
	if fs.fatOff+fs.fatBytes > fs.size {
		return nil, fmt.Errorf("fat: the FAT runs past the volume: %w", guestfs.ErrCorrupt)
	}
	fs.dirs = lru.New[dirKey, *dirInfo](dirCacheBytes)
	fs.runs = lru.New[[2]uint32, []run](runsCacheBytes)
	if fs.bits == 32 {
		fs.rootCluster = bs.rootCluster
		if fs.rootCluster < 2 || fs.rootCluster > fs.maxCluster {
			return nil, fmt.Errorf("fat: root directory at cluster %d, outside 2-%d: %w", fs.rootCluster, fs.maxCluster, guestfs.ErrCorrupt)
		}
		fs.fatCache = lru.New[int64, []byte](fatCacheBytes)
	} else {
		// Only the entries of existing clusters: at most 6 KiB or 128 KiB.
		n := (int64(fs.maxCluster)+1)*int64(fs.bits)/8 + 2
		fs.table = make([]byte, min(n, fs.fatBytes))
		if err := fs.readAt(fs.table, fs.fatOff); err != nil {
			return nil, fmt.Errorf("fat: FAT: %w", err)
		}
		if len(fs.table) < int(n) {
			fs.table = append(fs.table, 0, 0)
		}
	}
	// The clean-shutdown bit of FAT entry 1 (FAT16 bit 15, FAT32 bit 27).
	if fs.bits > 12 {
		clean := uint32(0x8000)
		if fs.bits == 32 {
			clean = 0x08000000
		}
		if v, err := fs.entry(1); err == nil && v&clean == 0 {
			warn = append(warn, "the volume was not cleanly unmounted (dirty bit set in FAT entry 1)")
		}
	}
	fs.info = guestfs.Info{
		Type:      "vfat",
		BlockSize: int(fs.clusterSize),
		Size:      min(volBytes, size),
		UUID:      serialUUID(bs),
		Warnings:  warn,
	}
	label, err := fs.rootLabel()
	if err != nil {
		fs.info.Warnings = append(fs.info.Warnings, "volume label entry: "+err.Error())
	}
	// blkid (util-linux 2.38) reports the root directory's label as
	// LABEL and the boot sector's only as LABEL_FATBOOT; so does Info.
	if label == "NO NAME" {
		label = ""
	}
	if boot := trimLabel(bs.label[:]); bs.hasLabel && boot != label && boot != "NO NAME" && boot != "" {
		fs.info.Warnings = append(fs.info.Warnings, fmt.Sprintf("the boot sector's label %q differs from the root directory's %q, which is the label", boot, label))
	}
	fs.info.Label = label
	return fs, nil
}

// serialUUID prints the volume serial number as blkid does: "1A2B-3C4D",
// the high half first.
func serialUUID(bs *bootSector) string {
	if !bs.hasSerial {
		return ""
	}
	s := bs.serial
	return fmt.Sprintf("%02X%02X-%02X%02X", s[3], s[2], s[1], s[0])
}

// Info describes the volume.
func (fs *FS) Info() guestfs.Info {
	i := fs.info
	i.Warnings = append([]string(nil), i.Warnings...)
	return i
}

// Root is the root directory's inode number.
func (fs *FS) Root() uint64 { return rootIno }

// readAt reads exactly len(p) bytes at off, inside the volume.
func (fs *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("fat: read of %d bytes at %d, past the volume's end at %d: %w", len(p), off, fs.size, guestfs.ErrCorrupt)
	}
	n, err := fs.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// trimLabel is a label as blkid shows it: code page 437, trailing spaces
// removed.
func trimLabel(b []byte) string { return strings.TrimRight(decodeOEM(b, false), " ") }
