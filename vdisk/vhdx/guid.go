package vhdx

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// guid is a GUID in its on-disk form: the first three fields little-endian,
// the last eight bytes in order. Keeping the on-disk form means comparisons
// are plain array equality and nothing is converted on the hot path.
type guid [16]byte

// Well-known identifiers from [MS-VHDX].
var (
	regionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")

	itemFileParameters  = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	itemVirtualDiskSize = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	itemPage83Data      = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	itemLogicalSector   = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	itemPhysicalSector  = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	itemParentLocator   = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

// parseGUID reads the canonical text form (with or without braces).
func parseGUID(s string) (guid, error) {
	var g guid
	t := strings.Trim(s, "{}")
	if len(t) != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return g, fmt.Errorf("malformed GUID %q", s)
	}
	b, err := hex.DecodeString(t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36])
	if err != nil {
		return g, fmt.Errorf("malformed GUID %q: %v", s, err)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g, nil
}

// mustGUID is for the package's own constants only; a typo there is a
// programming error caught by the first test run.
func mustGUID(s string) guid {
	g, err := parseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

func (g guid) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
}

func (g guid) isZero() bool { return g == guid{} }
