package sample

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// PartitionedDisk writes a raw image at img: an MBR with one Linux
// partition from 1 MiB to the end, formatted as ext4 and populated from the
// folder src by mkfs.ext4 -d (no mount and no root needed).
func PartitionedDisk(img, src string, size int64) error {
	const start = 1 << 20
	if size < 8<<20 {
		return fmt.Errorf("disk of %d bytes is too small for ext4", size)
	}
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	var mbr [512]byte
	e := mbr[446:462]
	e[4] = 0x83                                                     // Linux
	binary.LittleEndian.PutUint32(e[8:], start/512)                 // first LBA
	binary.LittleEndian.PutUint32(e[12:], uint32((size-start)/512)) // sectors
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr[:], 0); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fsKiB := (size - start) / 1024
	cmd := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", src,
		"-E", fmt.Sprintf("offset=%d", start), img, fmt.Sprintf("%dk", fsKiB))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	return nil
}

// CopyRealFiles copies regular files from /usr/bin, /usr/lib and /usr/share
// into dst, in a fixed order, until about limit bytes are copied.
func CopyRealFiles(dst string, limit int64) error {
	var files []string
	for _, root := range []string{"/usr/bin", "/usr/lib", "/usr/share"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	var total int64
	for i, p := range files {
		if total >= limit {
			break
		}
		in, err := os.Open(p)
		if err != nil {
			continue
		}
		name := filepath.Join(dst, fmt.Sprintf("%03d", i/1000), strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			in.Close()
			return err
		}
		out, err := os.Create(name)
		if err != nil {
			in.Close()
			return err
		}
		n, err := io.Copy(out, io.LimitReader(in, limit-total))
		in.Close()
		out.Close()
		if err != nil {
			return err
		}
		total += n
	}
	if total == 0 {
		return fmt.Errorf("no files copied from /usr")
	}
	return nil
}

// GuestIdentity adds what names a Linux guest to a tree: os-release (the
// host's, linked from etc/ as Debian links it) and a hostname, so that
// `ovfmount info` has an OS to describe.
func GuestIdentity(dir, hostname string) error {
	osr, err := os.ReadFile("/usr/lib/os-release")
	if err != nil {
		if osr, err = os.ReadFile("/etc/os-release"); err != nil {
			return err
		}
	}
	for _, d := range []string{"etc", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), osr, 0o644); err != nil {
		return err
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(dir, "etc/os-release")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte(hostname+"\n"), 0o644)
}
