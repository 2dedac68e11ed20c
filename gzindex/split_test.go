package gzindex

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestSplitRoundTrip(t *testing.T) {
	for _, s := range sampleIndexes(t) {
		t.Run(s.name, func(t *testing.T) {
			enc, err := s.ix.MarshalSplit()
			if err != nil {
				t.Fatal(err)
			}
			src := &atomicCounter{r: bytes.NewReader(enc)}
			ix, err := Load(src, int64(len(enc)))
			if err != nil {
				t.Fatal(err)
			}
			// Load reads the length, then the head and its digest: none
			// of the windows.
			head := int64(len(enc)) - ix.windows
			if got := src.bytes.Load(); got != int64(splitHeadAt)+head {
				t.Fatalf("Load read %d bytes, want %d (the head is %d of %d)", got, int64(splitHeadAt)+head, head, len(enc))
			}
			t.Logf("%d checkpoints: head %d bytes, windows %d", ix.Checkpoints(), head, ix.windows)
			checkReads(t, NewReader(bytes.NewReader(s.gz), int64(len(s.gz)), ix), s.data, 30, 30<<10, 2)

			// Back to the inline form, it is the original's encoding;
			// Load takes that form too, and Unmarshal the split one.
			inline, err := s.ix.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if again, err := ix.MarshalBinary(); err != nil || !bytes.Equal(again, inline) {
				t.Fatalf("the loaded index encodes differently inline: %v", err)
			}
			if back, err := Load(bytes.NewReader(inline), int64(len(inline))); err != nil || !reflect.DeepEqual(back, s.ix) {
				t.Fatalf("Load of the inline form: %v", err)
			}
			u, err := Unmarshal(enc)
			if err != nil {
				t.Fatal(err)
			}
			checkReads(t, NewReader(bytes.NewReader(s.gz), int64(len(s.gz)), u), s.data, 10, 30<<10, 3)
		})
	}
}

func TestSplitDamage(t *testing.T) {
	s := sampleIndexes(t)[0]
	enc, err := s.ix.MarshalSplit()
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Load(bytes.NewReader(enc), int64(len(enc)))
	if err != nil {
		t.Fatal(err)
	}
	headEnd := len(enc) - int(ix.windows)

	// The head and its digest: every bit of the first 200 bytes and of
	// the digest, a byte in 53 between, flipped; the encoding cut short
	// anywhere. Load refuses them all.
	for i := range headEnd {
		if i > 200 && i < headEnd-32 && i%53 != 0 {
			continue
		}
		for bit := byte(1); bit != 0; bit <<= 1 {
			enc[i] ^= bit // in place, and back: a copy each time took 25 s under -race
			_, err := Load(bytes.NewReader(enc), int64(len(enc)))
			enc[i] ^= bit
			if !errors.Is(err, ErrIndex) {
				t.Fatalf("bit %#x of byte %d flipped: %v", bit, i, err)
			}
		}
	}
	for cut := 0; cut < len(enc); cut += 1 + cut/100*13 {
		if _, err := Load(bytes.NewReader(enc[:cut]), int64(cut)); !errors.Is(err, ErrIndex) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}

	// A window: Load does not read it, so it succeeds; a read that
	// restarts from that checkpoint passes it over for the one before,
	// and still returns the stream's bytes.
	k := len(ix.cps) / 2
	cp := ix.cps[k]
	if cp.wn == 0 || k+1 >= len(ix.cps) {
		t.Fatalf("checkpoint %d has no window", k)
	}
	bad := bytes.Clone(enc)
	bad[headEnd+int(cp.woff)+cp.wn/2] ^= 0x10
	dix, err := Load(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatalf("a damaged window failed Load: %v", err)
	}
	if _, err := dix.window(&dix.cps[k], make([]byte, windowSize)); !errors.Is(err, ErrIndex) {
		t.Fatalf("the damaged window reads back: %v", err)
	}
	rd := NewReader(bytes.NewReader(s.gz), int64(len(s.gz)), dix)
	for _, off := range []int64{cp.out + 10, ix.cps[k+1].out + 10, cp.out - 10} {
		p := make([]byte, 1000)
		if n, err := rd.ReadAt(p, off); err != nil || !bytes.Equal(p[:n], s.data[off:off+int64(n)]) {
			t.Fatalf("a read at %d (the damaged window's checkpoint is at %d): %d, %v", off, cp.out, n, err)
		}
	}
	if _, err := dix.MarshalBinary(); !errors.Is(err, ErrIndex) {
		t.Fatalf("MarshalBinary of an index with a damaged window: %v, want ErrIndex", err)
	}
}
