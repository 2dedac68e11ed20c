package ntfs

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unicode"
)

// upcase maps each UTF-16 code unit to its upper case, as the volume's
// $UpCase file says: NTFS compares names through it, and Windows versions
// differ in it, so the volume's own table is the one that sorted its
// directories.
type upcase []uint16

// loadUpcase reads $UpCase's table: 64 Ki entries.
func (fs *FS) loadUpcase() (upcase, error) {
	n, err := fs.node(fileUpCase)
	if err != nil {
		return nil, err
	}
	if n.data == nil || n.data.size != 2<<16 {
		return nil, errUpcaseSize
	}
	b := make([]byte, 2<<16)
	if err := fs.readStreamFull(n.data, b, 0); err != nil {
		return nil, err
	}
	t := make(upcase, 1<<16)
	for i := range t {
		t[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	// Every Windows version's table maps ASCII as ASCII does.
	for c := uint16(0); c < 0x80; c++ {
		want := c
		if c >= 'a' && c <= 'z' {
			want = c - 'a' + 'A'
		}
		if t[c] != want {
			return nil, upcaseError(fmt.Sprintf("ntfs: $UpCase maps %#x to %#x", c, t[c]))
		}
	}
	return t, nil
}

type upcaseError string

func (e upcaseError) Error() string { return string(e) }

const errUpcaseSize = upcaseError("ntfs: $UpCase is not 128 KiB")

// defaultUpcase is Unicode's simple upper-case mapping of the BMP, for a
// volume whose $UpCase cannot be read; built once, shared read-only.
var defaultUpcase = sync.OnceValue(func() upcase {
	t := make(upcase, 1<<16)
	for i := range t {
		r := unicode.ToUpper(rune(i))
		if r > 0xffff || i >= 0xd800 && i < 0xe000 {
			r = rune(i)
		}
		t[i] = uint16(r)
	}
	return t
})

// compare orders a name in code units against one in little-endian
// UTF-16 bytes ignoring case, as the index's COLLATION_FILE_NAME does.
func (t upcase) compare(a []uint16, b []byte) int {
	nb := len(b) / 2
	for i := 0; i < len(a) && i < nb; i++ {
		x, y := t[a[i]], t[binary.LittleEndian.Uint16(b[2*i:])]
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < nb:
		return -1
	case len(a) > nb:
		return 1
	}
	return 0
}

// equalExact reports whether the name in code units is the one in bytes.
func equalExact(a []uint16, b []byte) bool {
	if 2*len(a) != len(b) {
		return false
	}
	for i, u := range a {
		if binary.LittleEndian.Uint16(b[2*i:]) != u {
			return false
		}
	}
	return true
}
