package codec

// ZlibPrefix writes the first len(dst) bytes of the output of the RFC 1950
// stream src into dst, and decodes nothing after them: in particular it
// never checks the stream's Adler-32, so a caller may use it only where the
// bytes are vouched for otherwise (a verified archive member), or where
// the unit's full decode, with its check, still decides later.
//
// ok=false means "not done cheaply here; decode the whole unit", never an
// error: the stream may be damaged, or end before len(dst) bytes, or (with
// libdeflate) its next item is a stored block that does not fit the room
// left. ok=true means dst holds exactly the bytes a whole decode of a stream
// that goes on to produce at least len(dst) bytes would put there. For a
// malformed stream (one that a whole decode rejects after, or leniently
// before, len(dst) bytes) ok=true promises only what the decoder
// produced; the whole decode that follows is what reports it.
func ZlibPrefix(dst, src []byte) bool {
	if len(dst) == 0 {
		return true
	}
	if ok, tried := prefixC(dst, src, true); tried {
		return ok
	}
	return goPrefix(dst, src, zlibOnce)
}

// DeflatePrefix is ZlibPrefix for a raw RFC 1951 stream (QCOW2 zlib
// clusters), which has no checksum to skip.
func DeflatePrefix(dst, src []byte) bool {
	if len(dst) == 0 {
		return true
	}
	if ok, tried := prefixC(dst, src, false); tried {
		return ok
	}
	return goPrefix(dst, src, deflateOnce)
}

// goPrefix is the pure Go prefix decode: io.ReadFull stops the inflater as
// soon as dst is full, so nothing after it is decoded (klauspost's inflater
// decodes at most the item that crosses the end into its window). Like
// decideFresh, a failure with a pooled decoder is retried with a fresh
// one, so a valid stream is never refused because of a previous unit.
func goPrefix(dst, src []byte, once func(dst, src []byte, pooled, probe bool) (int, error)) bool {
	if _, err := once(dst, src, true, false); err == nil {
		return true
	}
	_, err := once(dst, src, false, false)
	return err == nil
}
