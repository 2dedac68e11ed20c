package integration

import (
	"compress/zlib"
	"io"
)

func newZlibWriter(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }
