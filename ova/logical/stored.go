package logical

import (
	"io"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// Stored is where a file's stored bytes come from: one member, or the
// chunks of a file split with ovf:chunkSize, read back to back.
type Stored struct {
	// Checked reads through the package's integrity checks, where they
	// apply (see integrity.File).
	Checked io.ReaderAt
	// Unchecked reads the same bytes as the archive holds them: for a
	// strict mount's probes (a disk header, for the size of its view),
	// which must not wait for whole files to be hashed.
	Unchecked io.ReaderAt
	Size      int64
	// Files are the checked files read, one per member.
	Files []*integrity.File
}

// StoredOf is the stored bytes of members joined in order. With several,
// each one's verification starts the first time a read needs it: a
// chunked file is checked chunk by chunk, with no pass over the whole.
func StoredOf(ms []*ova.Member, checks *integrity.Checks) *Stored {
	s := &Stored{}
	checked := make([]io.ReaderAt, len(ms))
	unchecked := make([]io.ReaderAt, len(ms))
	sizes := make([]int64, len(ms))
	for i, m := range ms {
		checked[i], unchecked[i], sizes[i] = m, m, m.Size
		if checks != nil {
			if f := checks.File(m); f != nil {
				checked[i] = f
				s.Files = append(s.Files, f)
			}
		}
	}
	if len(ms) == 1 {
		s.Checked, s.Unchecked, s.Size = checked[0], unchecked[0], sizes[0]
		return s
	}
	files := s.Files
	joined := NewJoinedReader(checked, sizes, func(i int) {
		if i < len(files) && len(files) == len(ms) {
			files[i].Start()
		}
	})
	s.Checked, s.Unchecked, s.Size = joined, NewJoinedReader(unchecked, sizes, nil), joined.Size()
	return s
}
