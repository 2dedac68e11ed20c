// Package partition reads MBR and GPT partition tables from a raw disk
// view and numbers the partitions as Linux does, so that `disks/<view>.pN`
// names the same bytes as /dev/sdaN would on the guest.
//
// What it promises: the kernel's rules (block/partitions/efi.c, msdos.c and
// core.c) decide which partitions exist and where they lie. GPT is tried
// first, behind a protective or hybrid MBR (a 0xEE entry starting at LBA 1,
// whatever its size); a hybrid MBR's other entries are ignored, as Linux
// ignores them. A GPT header and its entry array are accepted only when
// their CRC32s, my_lba, the usable range and the 128-byte entry size check
// out, as in the kernel; an entry array is read in bounded chunks (at most
// 4 MiB, the kernel's allocation cap) and only its first 255 entries become
// partitions (the kernel's DISK_MAX_PARTS). MBR primaries are numbered 1-4
// by slot, logical partitions from 5 in chain order, each relative to its
// EBR, and the chain is followed at most 100 links without a data partition
// and to partition 255 at most, as in msdos.c.
//
// What it tolerates, with a warning in Table.Warnings: a missing or corrupt
// backup GPT (the kernel and sfdisk read the primary); a corrupt primary
// GPT when the backup is good (sfdisk and libblkid read the backup; the
// kernel does so only with the "gpt" boot option — we follow sfdisk, since
// the table is there to be read); partitions that overlap (kept, as the
// kernel keeps them); a partition running past the end of the disk
// (truncated to the end, as the kernel truncates it) or starting past it
// (dropped, as the kernel drops it); a GPT entry whose range runs past the
// last LBA (dropped, as the kernel's is_pte_valid drops it).
//
// What it refuses: a sector 0 without the 0x55AA signature, or whose MBR
// boot indicators are not 0x00 or 0x80 (which msdos.c also rejects), or
// that is a FAT, exFAT or NTFS boot sector, is ErrNoTable: a filesystem
// starting at sector 0. (mkfs.vfat and mkntfs leave zero partition
// entries and 0x55AA, which msdos.c reads as an empty table; libblkid
// recognises the boot sector, and so do we, so that the whole disk is the
// volume.) A protective MBR without any valid GPT header is ErrCorrupt:
// Linux shows no partitions for it either.
//
// Choices where the tools differ: an MBR entry of type 0 with a non-zero
// size is a partition, as the kernel and libblkid treat it (fdisk hides
// it); an extended partition is listed with its full extent and
// Extended set (Linux makes a 1 KiB device of it, and callers give it no
// view); an EBR chain that comes back to an EBR it already read stops
// there with a warning, where the kernel would repeat the same logical
// partitions until its limit. MBR sectors are 512 bytes; a GPT is looked
// for with 512-byte and then 4096-byte sectors.
package partition
