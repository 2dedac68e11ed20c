package logical

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/ovfmount/ovfmount/route"
)

// JoinedReader reads parts back to back as one file: the logical file of a
// chunked OVF file. first, if set, is called once per part, the first
// time a read needs it, so that each chunk can be verified on its own
// when it is first needed.
type JoinedReader struct {
	parts  []io.ReaderAt
	starts []int64 // offset of each part; starts[len(parts)] is the size
	first  func(i int)
	once   []sync.Once
}

// NewJoinedReader joins parts of the given sizes.
func NewJoinedReader(parts []io.ReaderAt, sizes []int64, first func(i int)) *JoinedReader {
	j := &JoinedReader{parts: parts, starts: make([]int64, len(parts)+1), first: first, once: make([]sync.Once, len(parts))}
	for i, s := range sizes {
		j.starts[i+1] = j.starts[i] + s
	}
	return j
}

// Size is the joined length.
func (j *JoinedReader) Size() int64 { return j.starts[len(j.parts)] }

// Parts are the readers joined.
func (j *JoinedReader) Parts() []io.ReaderAt { return j.parts }

var errPartShort = errors.New("chunk ended before its size")

func (j *JoinedReader) ReadAt(p []byte, off int64) (int, error) {
	return j.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that passes ctx to parts that wait (a strict
// mount's chunk being verified), so an interrupted read stops waiting.
func (j *JoinedReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	size := j.Size()
	if off < 0 {
		return 0, errors.New("logical: negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	i := sort.Search(len(j.parts), func(i int) bool { return j.starts[i+1] > off })
	for done := 0; done < n; i++ {
		pos := off + int64(done)
		k := int(min(int64(n-done), j.starts[i+1]-pos))
		if j.first != nil {
			j.once[i].Do(func() { j.first(i) })
		}
		got, err := route.ReadAt(ctx, j.parts[i], p[done:done+k], pos-j.starts[i])
		if got < k {
			if err == nil || err == io.EOF {
				err = errPartShort
			}
			return 0, fmt.Errorf("logical: chunk %d: %w", i, err)
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Proven implements route.Prover: a joined file's bytes are proven when
// every part's are.
func (j *JoinedReader) Proven() bool {
	for _, p := range j.parts {
		if !route.Proven(p) {
			return false
		}
	}
	return len(j.parts) > 0
}
