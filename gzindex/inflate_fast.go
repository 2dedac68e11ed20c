package gzindex

import "encoding/binary"

// huffmanFast is the hot loop. It refills the bit buffer 8 bytes at a time,
// which leaves at least 56 bits: enough for the longest symbol (a 15-bit
// length code, 5 extra bits, a 15-bit distance code and 13 extra bits), so
// each symbol needs one refill and no bounds checks on the input. It works
// on local copies of the state, which the compiler keeps in registers.
func (f *inflater) huffmanFast() error {
	in := f.src.buf[:f.src.n]
	ip := f.src.pos
	// Decode while ip ≤ inEnd: 8 bytes are left to load, and the input
	// position is before inStop.
	inEnd := len(in) - 8
	if lim := f.inStop - f.src.base - 1; lim < int64(inEnd) {
		inEnd = int(lim)
	}
	outStop := f.outStop
	bits, nb := f.bits, f.nb
	out := f.out
	op := f.op
	lit, dist := f.lit, f.dist
	histLo := f.histLo
	var bad string

	for ip <= inEnd && op < outStop {
		bits |= binary.LittleEndian.Uint64(in[ip:]) << nb
		ip += int(63-nb) >> 3
		nb |= 56

		e := lit[bits&(1<<litBits-1)]
		if e>>entryKindShift&7 == kindLink {
			e = lit[int(e>>entryValShift)+int(bits>>litBits&(1<<(e>>entryExtraShft&15)-1))]
		}
		n := uint(e & entryLenMask)
		bits >>= n
		nb -= n
		if e>>entryKindShift&7 == kindLiteral {
			out[op] = byte(e >> entryValShift)
			op++
			continue
		}
		if e>>entryKindShift&7 != kindBase {
			if e>>entryKindShift&7 != kindEnd {
				bad = "invalid literal/length code"
				break
			}
			if f.final {
				f.state = stDone
			} else {
				f.state = stHeader
			}
			break
		}

		extra := uint(e >> entryExtraShft & 15)
		length := int(e>>entryValShift) + int(bits&(1<<extra-1))
		bits >>= extra
		nb -= extra

		d := dist[bits&(1<<distBits-1)]
		if d>>entryKindShift&7 == kindLink {
			d = dist[int(d>>entryValShift)+int(bits>>distBits&(1<<(d>>entryExtraShft&15)-1))]
		}
		if d>>entryKindShift&7 != kindBase {
			bad = "invalid distance code"
			break
		}
		n = uint(d & entryLenMask)
		bits >>= n
		nb -= n
		extra = uint(d >> entryExtraShft & 15)
		distance := int(d>>entryValShift) + int(bits&(1<<extra-1))
		bits >>= extra
		nb -= extra
		if distance > op-histLo {
			bad = "distance reaches before the start of the data"
			break
		}

		from := op - distance
		switch {
		case distance >= 8:
			// Each 8-byte load reads bytes at least 8 behind the store, so
			// it only sees final output even when the match overlaps.
			for k := 0; k < length; k += 8 {
				binary.LittleEndian.PutUint64(out[op+k:], binary.LittleEndian.Uint64(out[from+k:]))
			}
		case distance == 1:
			v := uint64(out[from]) * 0x0101010101010101
			for k := 0; k < length; k += 8 {
				binary.LittleEndian.PutUint64(out[op+k:], v)
			}
		default:
			for k := range length {
				out[op+k] = out[from+k]
			}
		}
		op += length
	}

	f.src.pos = ip
	f.bits, f.nb = bits, nb
	f.op = op
	if bad != "" {
		return f.corrupt(bad)
	}
	return nil
}
