package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// Key is a registry key.
type Key struct {
	h   *Hive
	off uint32
	// Name is the key's name (the root key's is what the hive was saved
	// with, "ROOT" or "CMI-CreateHive{...}").
	Name string
	// Modified is the key's last write time.
	Modified time.Time

	subkeys    uint32 // count, as the record says
	subkeyList uint32
	values     uint32
	valueList  uint32
}

const (
	keyCompName   = 0x20 // the name is Latin-1, not UTF-16LE
	valueCompName = 0x01
	noOffset      = 0xffffffff
)

// Root is the hive's root key.
func (h *Hive) Root() (*Key, error) { return h.key(h.root) }

func (h *Hive) key(off uint32) (*Key, error) {
	c, b, err := h.record(off, "nk", 0x4c, 0x4c)
	if err != nil {
		return nil, fmt.Errorf("regf: key %#x: %w", off, err)
	}
	le := binary.LittleEndian
	flags := le.Uint16(b[2:])
	name, err := h.read(c, 0x4c, int64(le.Uint16(b[0x48:])))
	if err != nil {
		return nil, fmt.Errorf("regf: key %#x: name: %w", off, err)
	}
	return &Key{
		h: h, off: off,
		Name:       decodeName(name, flags&keyCompName != 0),
		Modified:   filetime(le.Uint64(b[4:])),
		subkeys:    le.Uint32(b[0x14:]),
		subkeyList: le.Uint32(b[0x1c:]),
		values:     le.Uint32(b[0x24:]),
		valueList:  le.Uint32(b[0x28:]),
	}, nil
}

// decodeName decodes a key or value name: Latin-1 when compressed, else
// UTF-16LE.
func decodeName(b []byte, latin1 bool) string {
	if latin1 {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return utf16le(b)
}

func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func filetime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	if ft < epochDiff {
		return time.Unix(0, 0).Add(-time.Duration((epochDiff-ft)/10) * time.Microsecond).UTC()
	}
	d := ft - epochDiff
	return time.Unix(int64(d/1e7), int64(d%1e7)*100).UTC()
}

// errStop ends an enumeration early; it is not an error of the hive.
var errStop = errors.New("stop")

// entry is one subkey list entry: the key's offset and, for lf and lh
// lists, the hint or hash that lets a lookup skip reading it.
type entry struct {
	off  uint32
	kind byte // 'f' (lf: first four characters), 'h' (lh: hash), 0 (none)
	hint uint32
}

// entries calls fn for each subkey list entry of k, through an index of
// lists (ri) where the key has one. It yields at most the number of keys
// the hive has room for, so a damaged index that repeats a list ends.
func (k *Key) entries(fn func(entry) error) error {
	if k.subkeys == 0 || k.subkeyList == noOffset {
		return nil
	}
	budget := k.h.maxKeys()
	var walk func(off uint32, depth int) error
	walk = func(off uint32, depth int) error {
		c, b, err := k.h.record(off, "", 4, 4)
		if err != nil {
			return fmt.Errorf("regf: key %q: subkey list: %w", k.Name, err)
		}
		sig, n := string(b[:2]), int64(binary.LittleEndian.Uint16(b[2:]))
		size := int64(8)
		if sig == "li" || sig == "ri" {
			size = 4
		}
		switch sig {
		case "lf", "lh", "li", "ri":
		default:
			return fmt.Errorf("%w: key %q: subkey list %#x is %q", ErrCorrupt, k.Name, off, sig)
		}
		list, err := k.h.read(c, 4, n*size)
		if err != nil {
			return fmt.Errorf("regf: key %q: subkey list: %w", k.Name, err)
		}
		le := binary.LittleEndian
		for i := int64(0); i < n; i++ {
			e := entry{off: le.Uint32(list[i*size:])}
			if sig == "ri" {
				// Windows nests one level of index; more is a loop.
				if depth > 0 {
					return fmt.Errorf("%w: key %q: index of indexes", ErrCorrupt, k.Name)
				}
				if err := walk(e.off, depth+1); err != nil {
					return err
				}
				continue
			}
			if budget--; budget < 0 {
				return fmt.Errorf("%w: key %q: more subkeys than the hive has room for", ErrCorrupt, k.Name)
			}
			if size == 8 {
				e.kind, e.hint = sig[1], le.Uint32(list[i*size+4:])
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(k.subkeyList, 0)
}

// Subkeys calls fn for each subkey of k, in the hive's order (sorted by
// upper-cased name), and stops with fn's error.
func (k *Key) Subkeys(fn func(*Key) error) error {
	return k.entries(func(e entry) error {
		sub, err := k.h.key(e.off)
		if err != nil {
			return err
		}
		return fn(sub)
	})
}

// Subkey finds the subkey named name, ignoring case as Windows does. The
// hashes (lh) and name hints (lf) of the subkey list spare reading the
// keys that cannot match.
func (k *Key) Subkey(name string) (*Key, error) {
	ascii := isASCII(name)
	hash, hint := lhHash(name), lfHint(name)
	var found *Key
	err := k.entries(func(e entry) error {
		if ascii {
			switch e.kind {
			case 'h':
				if e.hint != hash {
					return nil
				}
			case 'f':
				if !hintMatches(e.hint, hint) {
					return nil
				}
			}
		}
		sub, err := k.h.key(e.off)
		if err != nil {
			return err
		}
		if strings.EqualFold(sub.Name, name) {
			found = sub
			return errStop
		}
		return nil
	})
	if found != nil {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("regf: key %q: subkey %q: %w", k.Name, name, ErrNotFound)
}

// Open finds the key at path below k, its names separated by
// backslashes.
func (k *Key) Open(path string) (*Key, error) {
	cur := k
	for _, name := range strings.Split(path, `\`) {
		if name == "" {
			continue
		}
		next, err := cur.Subkey(name)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// Open finds the key at path below the root.
func (h *Hive) Open(path string) (*Key, error) {
	root, err := h.Root()
	if err != nil {
		return nil, err
	}
	return root.Open(path)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 32
	}
	return c
}

// lhHash is the hash an lh list keeps of an (ASCII) name: the upper-cased
// characters, each added to 37 times the sum so far.
func lhHash(name string) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h*37 + uint32(upper(name[i]))
	}
	return h
}

// lfHint is the first four characters of an ASCII name, as an lf list
// keeps them (zero-padded).
func lfHint(name string) [4]byte {
	var b [4]byte
	copy(b[:], name)
	return b
}

func hintMatches(stored uint32, want [4]byte) bool {
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], stored)
	for i := range s {
		if s[i] >= 0x80 {
			return true // not ASCII: the hint cannot rule the key out
		}
		if upper(s[i]) != upper(want[i]) {
			return false
		}
	}
	return true
}

// Offset is the key's cell offset, unique within the hive: what a walk
// of the whole tree remembers to notice a damaged hive's cycles.
func (k *Key) Offset() uint32 { return k.off }
