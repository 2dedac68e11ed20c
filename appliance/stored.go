package appliance

import (
	"context"
	"io"

	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/ova/logical"
	"github.com/ovfmount/ovfmount/route"
)

// logicalStored are the checked files a logical file's members are.
func logicalStored(f *File, checks *integrity.Checks) []*integrity.File {
	return logical.StoredOf(f.Members, checks).Files
}

// joinedOf is a chunked file's chunks read back to back, each verified
// on its own when a read first needs it.
func joinedOf(f *File, checks *integrity.Checks) sizedReader {
	st := logical.StoredOf(f.Members, checks)
	return sizedReader{st.Checked, st.Size}
}

// sizedReader is a reader and its length.
type sizedReader struct {
	io.ReaderAt
	size int64
}

func (s sizedReader) Size() int64 { return s.size }

// ReadAtContext passes ctx on to a reader that waits.
func (s sizedReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return route.ReadAt(ctx, s.ReaderAt, p, off)
}
