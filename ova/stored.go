package ova

import "io"

// Stored is where a file's stored bytes come from: one member, or the
// chunks of a file split with ovf:chunkSize, read back to back.
type Stored struct {
	// Checked reads through the package's integrity checks, where they
	// apply (see VerifiedFile).
	Checked io.ReaderAt
	// Unchecked reads the same bytes as the archive holds them: for a
	// strict mount's probes (a disk header, for the size of its view),
	// which must not wait for whole files to be hashed.
	Unchecked io.ReaderAt
	Size      int64
	// Files are the checked files read, one per member; none without
	// integrity checks.
	Files []*VerifiedFile
}

// StoredOf is the stored bytes of members joined in order. With several,
// each one's verification starts the first time a read needs it: a
// chunked file is checked chunk by chunk, with no pass over the whole.
func StoredOf(ms []*Member, in *Integrity) *Stored {
	s := &Stored{}
	checked := make([]io.ReaderAt, len(ms))
	unchecked := make([]io.ReaderAt, len(ms))
	sizes := make([]int64, len(ms))
	for i, m := range ms {
		checked[i], unchecked[i], sizes[i] = m, m, m.Size
		if in != nil {
			if vf := in.File(m); vf != nil {
				checked[i] = vf
				s.Files = append(s.Files, vf)
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
