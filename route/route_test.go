package route

import (
	"io"
	"strings"
	"testing"
)

type prover struct {
	io.ReaderAt
	proven bool
}

func (p prover) Proven() bool { return p.proven }

// TestProven looks through section readers, and counts only a Prover's
// own answer.
func TestProven(t *testing.T) {
	src := strings.NewReader("0123456789")
	for _, tc := range []struct {
		name string
		r    io.ReaderAt
		want bool
	}{
		{"plain reader", src, false},
		{"proven", prover{src, true}, true},
		{"not proven", prover{src, false}, false},
		{"section of proven", io.NewSectionReader(io.NewSectionReader(prover{src, true}, 2, 6), 1, 3), true},
		{"section of not proven", io.NewSectionReader(prover{src, false}, 2, 6), false},
	} {
		if got := Proven(tc.r); got != tc.want {
			t.Errorf("%s: Proven = %v, want %v", tc.name, got, tc.want)
		}
	}
}
