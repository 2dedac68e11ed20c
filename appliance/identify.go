package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/vdisk"
)

// ErrNotPackage is what Open fails with when the source is nothing it can
// mount; the error is a *NotPackageError that says what the file is.
var ErrNotPackage = errors.New("not an OVA or OVF package")

// NotPackageError says what a file is, when it is not a package.
type NotPackageError struct {
	Name string // the source, as shown
	What string // "an ISO 9660 image", "a file of 4096 zero bytes", ...
}

func (e *NotPackageError) Error() string {
	if strings.HasPrefix(e.What, "not a valid OVF descriptor") {
		return fmt.Sprintf("%s: %s", e.Name, e.What)
	}
	return fmt.Sprintf("%s: not an OVA: %s", e.Name, e.What)
}

func (e *NotPackageError) Is(target error) bool { return target == ErrNotPackage }

// kind is what a source file is.
type kind int

const (
	kindOther kind = iota
	kindOVA
	kindDescriptor
	kindDisk
)

// identify decides what the file is: an OVA (a tar archive with members),
// an OVF descriptor, a disk image, or something else, described for the
// user. The OVA comes first: a tar header is checksummed, so a valid one
// at the start is never a coincidence, whereas a disk image's footer can
// end an archive whose last member is that disk. For an OVA it returns the
// index.
func identify(r io.ReaderAt, size int64) (kind, *ova.Archive, string) {
	a, tarErr := ova.Open(r, size)
	if tarErr == nil && len(a.Files()) > 0 {
		return kindOVA, a, ""
	}
	if tarErr == nil && len(a.Members()) > 1 {
		return kindOVA, a, "" // folders only: still an archive, described as such
	}
	switch k, why := sniffDescriptor(r, size); k {
	case sniffOVF:
		return kindDescriptor, nil, ""
	case sniffXML:
		return kindOther, nil, why
	}
	if f := vdisk.Detect(r, size); f != vdisk.Unknown {
		return kindDisk, nil, ""
	}
	return kindOther, nil, describe(r, size, tarErr == nil)
}

// isoMagicOffsets are where an ISO 9660 volume descriptor's "CD001" may
// be: the first descriptor is at sector 16 of 2048 bytes, after a system
// area that is usually zeros (which an index of a tar reads as its end).
var isoMagicOffsets = []int64{0x8001, 0x8801, 0x9001}

// describe says what a file that is neither an OVA, a descriptor nor a
// disk image is, from its first and last bytes.
func describe(r io.ReaderAt, size int64, emptyTar bool) string {
	if size == 0 {
		return "the file is empty"
	}
	for _, off := range isoMagicOffsets {
		b := make([]byte, 5)
		if n, _ := r.ReadAt(b, off); n == 5 && string(b) == "CD001" {
			return "an ISO 9660 image (a CD or DVD image, such as a cloud-init seed)"
		}
	}
	head := make([]byte, min(size, 512))
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	for _, sig := range magics {
		if bytes.HasPrefix(head, []byte(sig.magic)) {
			return sig.what
		}
	}
	if allZero(r, size) {
		if size <= zeroScan*2 {
			return fmt.Sprintf("a file of %d zero bytes, which holds no tar member", size)
		}
		return fmt.Sprintf("a file of %d bytes whose first and last %d KiB are zeros: it holds no tar member", size, zeroScan>>10)
	}
	if emptyTar {
		return "a tar archive without members"
	}
	if size < 512 {
		return fmt.Sprintf("a %d-byte %s file (a tar archive is at least 512 bytes)", size, textOrBinary(head))
	}
	return fmt.Sprintf("a %s file without a valid tar header at its start", textOrBinary(head))
}

// magics are the formats users mistake for an OVA, by their first bytes.
var magics = []struct{ magic, what string }{
	{"BZh", "a bzip2-compressed file (decompress it first, e.g. with bunzip2)"},
	{"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"},
	{"\x89PNG", "a PNG image"},
	{"%PDF", "a PDF document"},
	{"\x7fELF", "an ELF executable"},
}

// zeroScan is how much of each end of a file is read to call it zeros.
const zeroScan = 64 << 10

func allZero(r io.ReaderAt, size int64) bool {
	buf := make([]byte, min(size, zeroScan))
	for _, off := range []int64{0, max(0, size-zeroScan)} {
		n, err := r.ReadAt(buf, off)
		if n < len(buf) && err != nil && err != io.EOF {
			return false
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
	}
	return true
}

func textOrBinary(b []byte) string {
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) {
			return "binary"
		}
	}
	return "text"
}
