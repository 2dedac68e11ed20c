package regf

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Value types, as Windows numbers them.
const (
	None            = 0
	String          = 1 // REG_SZ
	ExpandString    = 2 // REG_EXPAND_SZ
	Binary          = 3
	DWord           = 4 // little-endian
	DWordBigEndian  = 5
	Link            = 6
	MultiString     = 7 // REG_MULTI_SZ
	ResourceList    = 8
	FullResource    = 9
	ResourceReqs    = 10
	QWord           = 11
	dataInline      = 0x80000000
	bigDataMinMinor = 4 // hives from version 1.4 on split large data
)

// Value is a named value of a key. Its data is read by Data, String,
// Strings or Uint.
type Value struct {
	h *Hive
	// Name is "" for the key's default value.
	Name string
	Type uint32
	// Size is the data's length in bytes, as the record says.
	Size    int64
	dataOff uint32
	inline  bool
}

// Values returns the values of k, in the hive's order.
func (k *Key) Values() ([]*Value, error) {
	if k.values == 0 || k.valueList == noOffset {
		return nil, nil
	}
	c, err := k.h.cell(k.valueList)
	if err != nil {
		return nil, fmt.Errorf("regf: key %q: value list: %w", k.Name, err)
	}
	b, err := k.h.read(c, 0, 4*int64(k.values))
	if err != nil {
		return nil, fmt.Errorf("regf: key %q: value list of %d: %w", k.Name, k.values, err)
	}
	out := make([]*Value, 0, k.values)
	for i := range int(k.values) {
		v, err := k.h.value(binary.LittleEndian.Uint32(b[4*i:]))
		if err != nil {
			return nil, fmt.Errorf("regf: key %q: %w", k.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Value finds the value named name (case ignored; "" is the default
// value).
func (k *Key) Value(name string) (*Value, error) {
	vs, err := k.Values()
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if strings.EqualFold(v.Name, name) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("regf: key %q: value %q: %w", k.Name, name, ErrNotFound)
}

func (h *Hive) value(off uint32) (*Value, error) {
	c, b, err := h.record(off, "vk", 0x14, 0x14)
	if err != nil {
		return nil, fmt.Errorf("value %#x: %w", off, err)
	}
	le := binary.LittleEndian
	name, err := h.read(c, 0x14, int64(le.Uint16(b[2:])))
	if err != nil {
		return nil, fmt.Errorf("value %#x: name: %w", off, err)
	}
	size := le.Uint32(b[4:])
	v := &Value{
		h:       h,
		Name:    decodeName(name, le.Uint16(b[0x10:])&valueCompName != 0),
		Type:    le.Uint32(b[0xc:]),
		Size:    int64(size &^ dataInline),
		dataOff: le.Uint32(b[8:]),
		inline:  size&dataInline != 0,
	}
	if v.inline && v.Size > 4 {
		return nil, fmt.Errorf("%w: value %q: %d bytes held in the record", ErrCorrupt, v.Name, v.Size)
	}
	if v.Size > h.end-baseBlockSize {
		// Segments may repeat a cell, but no real value is larger than
		// the hive: that bounds what reading one costs.
		return nil, fmt.Errorf("%w: value %q: %d bytes in a hive of %d", ErrCorrupt, v.Name, v.Size, h.end)
	}
	return v, nil
}

// Data returns the value's bytes, refusing more than limit of them.
func (v *Value) Data(limit int64) ([]byte, error) {
	if v.Size > limit {
		return nil, fmt.Errorf("regf: value %q: %d bytes, over %d: %w", v.Name, v.Size, limit, ErrTooLarge)
	}
	if v.inline {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v.dataOff)
		return b[:v.Size], nil
	}
	if v.Size == 0 {
		return []byte{}, nil
	}
	c, err := v.h.cell(v.dataOff)
	if err != nil {
		return nil, fmt.Errorf("regf: value %q: data: %w", v.Name, err)
	}
	if c.n >= v.Size {
		// In one cell: always so up to 16 KiB, and how hivex writes
		// larger data too.
		return v.h.read(c, 0, v.Size)
	}
	if v.Size > maxSegment && v.h.minor >= bigDataMinMinor && c.n >= 8 {
		head, err := v.h.read(c, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("regf: value %q: data: %w", v.Name, err)
		}
		if string(head[:2]) == "db" {
			return v.bigData(head)
		}
	}
	return nil, fmt.Errorf("%w: value %q: %d bytes in a cell of %d", ErrCorrupt, v.Name, v.Size, c.n)
}

// bigData gathers data stored as a list of segments (a "db" record).
func (v *Value) bigData(head []byte) ([]byte, error) {
	le := binary.LittleEndian
	n := int64(le.Uint16(head[2:]))
	if n*maxSegment < v.Size {
		return nil, fmt.Errorf("%w: value %q: %d segments cannot hold %d bytes", ErrCorrupt, v.Name, n, v.Size)
	}
	lc, err := v.h.cell(le.Uint32(head[4:]))
	if err != nil {
		return nil, fmt.Errorf("regf: value %q: segment list: %w", v.Name, err)
	}
	list, err := v.h.read(lc, 0, 4*n)
	if err != nil {
		return nil, fmt.Errorf("regf: value %q: segment list: %w", v.Name, err)
	}
	out := make([]byte, 0, v.Size)
	for i := int64(0); i < n && int64(len(out)) < v.Size; i++ {
		sc, err := v.h.cell(le.Uint32(list[4*i:]))
		if err != nil {
			return nil, fmt.Errorf("regf: value %q: segment %d: %w", v.Name, i, err)
		}
		take := minInt(minInt(maxSegment, sc.n), v.Size-int64(len(out)))
		b, err := v.h.read(sc, 0, take)
		if err != nil {
			return nil, fmt.Errorf("regf: value %q: segment %d: %w", v.Name, i, err)
		}
		out = append(out, b...)
	}
	if int64(len(out)) < v.Size {
		return nil, fmt.Errorf("%w: value %q: segments hold %d of %d bytes", ErrCorrupt, v.Name, len(out), v.Size)
	}
	return out, nil
}

// maxString is what String and Strings read: registry strings that
// describe a system are short, and a larger one is not what it claims.
const maxString = 1 << 20

// String returns a string value (REG_SZ, REG_EXPAND_SZ, REG_LINK) up to
// its first NUL.
func (v *Value) String() (string, error) {
	switch v.Type {
	case String, ExpandString, Link:
	default:
		return "", fmt.Errorf("regf: value %q is of type %d, not a string", v.Name, v.Type)
	}
	b, err := v.Data(maxString)
	if err != nil {
		return "", err
	}
	s := utf16le(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// Strings returns a REG_MULTI_SZ value's strings (the empty string that
// ends the list left out).
func (v *Value) Strings() ([]string, error) {
	if v.Type != MultiString {
		return nil, fmt.Errorf("regf: value %q is of type %d, not a string list", v.Name, v.Type)
	}
	b, err := v.Data(maxString)
	if err != nil {
		return nil, err
	}
	s := strings.TrimRight(utf16le(b), "\x00")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\x00"), nil
}

// Uint returns a REG_DWORD, REG_DWORD_BIG_ENDIAN or REG_QWORD value.
func (v *Value) Uint() (uint64, error) {
	b, err := v.Data(8)
	if err != nil {
		return 0, err
	}
	switch {
	case v.Type == DWord && len(b) == 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case v.Type == DWordBigEndian && len(b) == 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	case v.Type == QWord && len(b) == 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("regf: value %q: type %d of %d bytes is not a number", v.Name, v.Type, len(b))
}
