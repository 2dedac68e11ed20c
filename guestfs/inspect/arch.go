package inspect

import "encoding/binary"

// elfArch names the architecture of an ELF binary from its header
// (e_ident's class and byte order, and e_machine), as uname -m does: the
// cheapest way to tell what a guest runs on without running it.
func elfArch(h []byte) (string, bool) {
	if len(h) < 20 || string(h[:4]) != "\x7fELF" {
		return "", false
	}
	is64 := h[4] == 2
	var order binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		order = binary.BigEndian
	}
	le := h[5] != 2
	switch order.Uint16(h[18:]) {
	case 3:
		return "i386", true
	case 62:
		return "x86_64", true
	case 183:
		return "aarch64", true
	case 40:
		return "arm", true
	case 243:
		return pick(is64, "riscv64", "riscv32"), true
	case 21:
		return pick(le, "ppc64le", "ppc64"), true
	case 20:
		return "ppc", true
	case 22:
		return pick(is64, "s390x", "s390"), true
	case 8:
		return pick(is64, pick(le, "mips64el", "mips64"), pick(le, "mipsel", "mips")), true
	case 258:
		return "loongarch64", true
	case 50:
		return "ia64", true
	case 2:
		return "sparc", true
	case 43:
		return "sparc64", true
	}
	return "", false
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// peHeaderMax bounds where a PE header may start: e_lfanew of real
// executables is a few hundred bytes.
const peHeaderMax = 4096

// peArch names the architecture of a Windows executable from the
// Machine field of its PE header, given the file's first peHeaderMax+6
// bytes.
func peArch(b []byte) (string, bool) {
	if len(b) < 0x40 || string(b[:2]) != "MZ" {
		return "", false
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if off < 0x40 || off > len(b)-6 || string(b[off:off+4]) != "PE\x00\x00" {
		return "", false
	}
	switch binary.LittleEndian.Uint16(b[off+4:]) {
	case 0x14c:
		return "i386", true
	case 0x8664:
		return "x86_64", true
	case 0xaa64:
		return "aarch64", true
	case 0x1c4:
		return "arm", true
	case 0x200:
		return "ia64", true
	}
	return "", false
}
