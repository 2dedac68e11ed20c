package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
)

// Report is what [Verify] found: whether the chain holds, where it first
// breaks, and what the log says was read.
type Report struct {
	Lines  int    `json:"lines"`  // complete lines read
	Intact bool   `json:"intact"` // the chain holds from the first line to the last (and to the head given)
	Head   string `json:"head"`   // the hex SHA-256 of the last complete line ("" for none)
	// Problem is the first break of the chain; nil when intact.
	Problem *Problem `json:"problem,omitempty"`
	// Notes are what is not a break but a reader should know: a session
	// that never stopped, ranges that make no sense.
	Notes    []string   `json:"notes"`
	Sessions []Session  `json:"sessions"`
	Files    []FileRead `json:"files"`
}

// Problem is where the chain breaks, and how.
type Problem struct {
	Line    int    `json:"line"` // 1-based
	Kind    string `json:"kind"` // see the Kind constants
	Message string `json:"message"`
}

// Kinds of Problem.
const (
	KindEdited    = "edited"    // a line changed after it was written
	KindRemoved   = "removed"   // lines missing before this one (or, on line 1, from the start)
	KindReordered = "reordered" // a line out of its place (moved, or a copy of another)
	KindTruncated = "truncated" // the log ends mid-line, or is empty
	KindHead      = "head"      // no line has the head hash given: the end was cut or edited
	KindInvalid   = "invalid"   // a line too long to be one of this format's
)

// Session is one mount's stretch of the log.
type Session struct {
	Line       int        `json:"line"` // of its start line
	Archive    string     `json:"archive"`
	Identity   string     `json:"identity,omitempty"`
	Mountpoint string     `json:"mountpoint"`
	Program    string     `json:"program,omitempty"`
	DaemonPid  int        `json:"daemonPid,omitempty"`
	Start      time.Time  `json:"start"`
	Stop       *time.Time `json:"stop,omitempty"` // nil: no stop line (killed, crashed, or the log was cut)
	Opens      int        `json:"opens"`
}

// FileRead is what the log says was read of one file, over all sessions.
type FileRead struct {
	Path          string     `json:"path"`
	PathHex       string     `json:"pathHex,omitempty"`
	Opens         int        `json:"opens"`
	Bytes         int64      `json:"bytes"`         // served, counting bytes served twice twice
	DistinctBytes int64      `json:"distinctBytes"` // covered by Ranges
	Ranges        [][2]int64 `json:"ranges"`        // [offset, length], sorted, merged
	Readers       []Reader   `json:"readers"`
	First         *time.Time `json:"first,omitempty"`
	Last          *time.Time `json:"last,omitempty"`

	spans   spans
	readers map[Reader]bool
}

// Verify reads a log and checks its chain line by line: each line's seq
// one more than the line before's, and its prev the SHA-256 of that line.
// head, when not "", is a head recorded earlier (the hash of what was then
// the last line): some line must have it. Damage is reported in the
// Report, not as an error; the error is for a log that cannot be read.
// What the lines say was read is summed whatever the chain's state (a
// broken chain's lines say what they say, unproven).
func Verify(r io.Reader, head string) (*Report, error) {
	v := &verifier{rep: &Report{Notes: []string{}, Sessions: []Session{}, Files: []FileRead{}}, files: map[string]*FileRead{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	headFound := head == ""
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line)+len(chunk) <= maxLine+1 {
				line = append(line, chunk...)
			} else {
				line = append(line[:0], '!') // stays too long: its content no longer matters
				v.tooLong = true
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) > 0 {
			line = append(line, chunk...)
			chunk = line
		}
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] != '\n' {
				v.problem(v.rep.Lines+1, KindTruncated, fmt.Sprintf("the log ends in the middle of line %d (no newline at its end): it was cut, or its last write never finished", v.rep.Lines+1))
			} else {
				v.rep.Lines++
				body := chunk[:len(chunk)-1]
				h := hashLine(body)
				v.line(v.rep.Lines, body, h)
				v.rep.Head = h
				if h == head {
					headFound = true
				}
			}
		}
		line, v.tooLong = line[:0], false
		if err == io.EOF {
			break
		}
	}
	if v.rep.Lines == 0 && v.rep.Problem == nil {
		v.problem(1, KindTruncated, "the log is empty: it has no start line")
	}
	if v.missing != nil && v.rep.Problem != nil && v.rep.Problem.Kind == KindRemoved {
		if v.missing.hi > v.missing.lo {
			v.rep.Problem.Message += fmt.Sprintf(" (seq %d to %d appear nowhere in the log)", v.missing.lo, v.missing.hi)
		} else {
			v.rep.Problem.Message += fmt.Sprintf(" (seq %d appears nowhere in the log)", v.missing.lo)
		}
	}
	if !headFound {
		v.problem(v.rep.Lines, KindHead, fmt.Sprintf("no line has the head %s: the line it was the hash of was edited or removed, or lines were cut from the end of the log", head))
	}
	v.finish()
	return v.rep, nil
}

type verifier struct {
	rep     *Report
	tooLong bool
	prev    string // hash of the previous line
	prevSeq uint64
	// missing are the seqs a jump skipped, until one turns up later
	// (then the break was a reordering).
	missing *struct{ lo, hi uint64 }
	session *Session
	files   map[string]*FileRead
	bad     int // read lines with ranges that make no sense
}

func (v *verifier) problem(line int, kind, msg string) {
	if v.rep.Problem == nil {
		v.rep.Problem = &Problem{Line: line, Kind: kind, Message: msg}
	}
}

// line checks line n, with hash h, against the line before it, and adds
// what it says to the summary.
func (v *verifier) line(n int, body []byte, h string) {
	defer func() { v.prev = h }()
	if v.tooLong {
		v.problem(n, KindInvalid, fmt.Sprintf("line %d is longer than %d bytes: no audit log line is", n, maxLine))
		return
	}
	var r Record
	if err := json.Unmarshal(body, &r); err != nil || !known(r.Type) {
		what := "is not JSON"
		if err == nil {
			what = fmt.Sprintf("has an unknown type %q", r.Type)
		}
		v.problem(n, KindEdited, fmt.Sprintf("line %d %s: it was edited or damaged", n, what))
		return
	}
	defer func() { v.prevSeq = r.Seq }()
	if v.missing != nil && r.Seq >= v.missing.lo && r.Seq <= v.missing.hi && v.rep.Problem != nil && v.rep.Problem.Kind == KindRemoved {
		v.rep.Problem.Kind = KindReordered
		v.rep.Problem.Message = fmt.Sprintf("line %d is out of place: it has seq %d where seq %d was due, which is on line %d: lines were moved", v.rep.Problem.Line, v.missing.hi+1, v.missing.lo, n)
		v.missing = nil
	}
	v.check(n, &r)
	v.sum(n, &r)
}

// check links line n to the line before it.
func (v *verifier) check(n int, r *Record) {
	if v.rep.Problem != nil {
		return
	}
	if n == 1 {
		switch {
		case r.Prev != "" || r.Seq != 0:
			v.problem(1, KindRemoved, fmt.Sprintf("the log's first lines are missing: line 1 has seq %d and records the hash of a line before it", r.Seq))
		case r.Type != TypeStart:
			v.problem(1, KindEdited, "line 1 is not a start line: it was edited")
		}
		return
	}
	want := v.prevSeq + 1
	switch {
	case r.Seq == want && r.Prev == v.prev:
	case r.Seq == want:
		v.problem(n-1, KindEdited, fmt.Sprintf("line %d was changed after it was written: its SHA-256 is not the one line %d records (or line %d's prev was changed)", n-1, n, n))
	case r.Prev == v.prev:
		v.problem(n, KindEdited, fmt.Sprintf("line %d follows line %d in the chain but has seq %d, not %d: its seq was edited", n, n-1, r.Seq, want))
	case r.Seq > want:
		v.problem(n, KindRemoved, fmt.Sprintf("lines are missing before line %d: it has seq %d where seq %d was due", n, r.Seq, want))
		v.missing = &struct{ lo, hi uint64 }{want, r.Seq - 1}
	default:
		v.problem(n, KindReordered, fmt.Sprintf("line %d is out of place: it has seq %d where seq %d was due (moved from earlier, or a copy of an earlier line)", n, r.Seq, want))
	}
}

// sum adds what line n says to the summary.
func (v *verifier) sum(n int, r *Record) {
	switch r.Type {
	case TypeStart:
		v.closeSession()
		v.session = &Session{Line: n, Archive: r.Archive, Identity: r.Identity, Mountpoint: r.Mountpoint,
			Program: r.Program, DaemonPid: r.DaemonPid, Start: r.Time}
	case TypeStop:
		if v.session != nil {
			t := r.Time
			v.session.Stop = &t
			v.closeSession()
		}
	case TypeOpen:
		if v.session != nil {
			v.session.Opens++
		}
		v.file(r).Opens++
	case TypeRead:
		f := v.file(r)
		for _, p := range r.Ranges {
			off, length := p[0], p[1]
			if off < 0 || length <= 0 || off > 1<<62 || length > 1<<62 {
				v.bad++
				continue
			}
			f.spans.add(off, length)
		}
		f.Bytes += max(r.Bytes, 0)
		for _, who := range r.Readers {
			if !f.readers[who] {
				f.readers[who] = true
				f.Readers = append(f.Readers, who)
			}
		}
		if r.First != nil && (f.First == nil || r.First.Before(*f.First)) {
			t := *r.First
			f.First = &t
		}
		if r.Last != nil && (f.Last == nil || r.Last.After(*f.Last)) {
			t := *r.Last
			f.Last = &t
		}
	}
}

func (v *verifier) closeSession() {
	if v.session == nil {
		return
	}
	s := *v.session
	v.rep.Sessions = append(v.rep.Sessions, s)
	if s.Stop == nil {
		v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("the session that started on line %d (%s) has no stop line: the mount was killed or its machine stopped (up to about the last two seconds of its reads may be missing), or the log was cut there", s.Line, s.Start.Format(time.RFC3339)))
	}
	v.session = nil
}

func (v *verifier) file(r *Record) *FileRead {
	key := r.Path + "\x00" + r.PathHex
	f := v.files[key]
	if f == nil {
		f = &FileRead{Path: r.Path, PathHex: r.PathHex, readers: map[Reader]bool{}, Readers: []Reader{}}
		v.files[key] = f
	}
	return f
}

func (v *verifier) finish() {
	v.closeSession()
	if v.bad > 0 {
		v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("%d ranges with a negative or impossible offset or length were left out", v.bad))
	}
	for _, f := range v.files {
		f.Ranges = f.spans.pairs()
		f.DistinctBytes = f.spans.bytes()
		sort.Slice(f.Readers, func(i, j int) bool {
			a, b := f.Readers[i], f.Readers[j]
			if a.Pid != b.Pid {
				return a.Pid < b.Pid
			}
			if a.Uid != b.Uid {
				return a.Uid < b.Uid
			}
			return a.Gid < b.Gid
		})
		v.rep.Files = append(v.rep.Files, *f)
	}
	sort.Slice(v.rep.Files, func(i, j int) bool {
		a, b := v.rep.Files[i], v.rep.Files[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.PathHex < b.PathHex
	})
	v.rep.Intact = v.rep.Problem == nil
}

// LineHash is the hash a log's next line records of line: what a head is.
// For tests and tools that build on the format.
func LineHash(line []byte) string { return hashLine(bytes.TrimSuffix(line, []byte("\n"))) }
