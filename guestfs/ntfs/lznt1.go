package ntfs

import (
	"encoding/binary"
	"fmt"

	"github.com/ovfmount/ovfmount/guestfs"
)

// lzntChunk is the bytes one LZNT1 chunk decompresses to at most.
const lzntChunk = 4096

// lznt1Decompress decodes LZNT1 data, the compression NTFS uses, into
// dst, which it fills whole: a chunk that decodes short is padded with
// zeros to its 4 KiB, as is the rest of dst after the last chunk. Data
// that would decode past dst, or back-references before the start of a
// chunk, are ErrCorrupt.
func lznt1Decompress(dst, src []byte) error {
	o := 0
	for i := 0; i+2 <= len(src) && o < len(dst); {
		h := binary.LittleEndian.Uint16(src[i:])
		if h == 0 {
			break
		}
		n := int(h&0x0fff) + 1
		i += 2
		if i+n > len(src) {
			return fmt.Errorf("LZNT1 chunk of %d bytes past the %d compressed: %w", n, len(src), guestfs.ErrCorrupt)
		}
		end := o + lzntChunk
		if end > len(dst) {
			end = len(dst)
		}
		in := src[i : i+n]
		i += n
		if h&0x8000 == 0 {
			// A chunk stored as it is.
			if n > end-o {
				return fmt.Errorf("LZNT1 stored chunk of %d bytes: %w", n, guestfs.ErrCorrupt)
			}
			copy(dst[o:], in)
			o += n
		} else {
			var err error
			if o, err = lzntChunkDecode(dst, o, end, in); err != nil {
				return err
			}
		}
		clear(dst[o:end])
		o = end
	}
	clear(dst[o:])
	return nil
}

// lzntChunkDecode decodes one compressed chunk into dst[start:end] and
// returns where its output ends.
func lzntChunkDecode(dst []byte, start, end int, in []byte) (int, error) {
	o := start
	for i := 0; i < len(in); {
		tags := in[i]
		i++
		for bit := 0; bit < 8 && i < len(in); bit++ {
			if tags&1 == 0 {
				if o >= end {
					return 0, fmt.Errorf("LZNT1 literal past the chunk: %w", guestfs.ErrCorrupt)
				}
				dst[o] = in[i]
				o++
				i++
			} else {
				if i+2 > len(in) {
					return 0, fmt.Errorf("LZNT1 back-reference cut short: %w", guestfs.ErrCorrupt)
				}
				tok := int(binary.LittleEndian.Uint16(in[i:]))
				i += 2
				pos := o - start
				// The split between offset and length bits moves with
				// the position in the chunk: the offset gets just enough
				// bits to reach its start, at least 4.
				obits := 4
				for 1<<obits < pos {
					obits++
				}
				lbits := 16 - obits
				length := tok&(1<<lbits-1) + 3
				back := tok>>lbits + 1
				if pos == 0 || back > pos || length > end-o {
					return 0, fmt.Errorf("LZNT1 back-reference of %d bytes from %d at %d: %w", length, back, pos, guestfs.ErrCorrupt)
				}
				for k := 0; k < length; k++ {
					dst[o] = dst[o-back]
					o++
				}
			}
			tags >>= 1
		}
	}
	return o, nil
}
