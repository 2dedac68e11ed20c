package overlay

import "testing"

// TestTableCounts checks the counts the status and the checkpoint
// threshold use, through discards of whole chunks and writes into them.
func TestTableCounts(t *testing.T) {
	tab := newTable(3*chunkLen + 10)
	var freed []uint64
	free := func(s uint64) { freed = append(freed, s) }
	tab.apply(entry{block: 5, slot: 7}, free)
	tab.apply(entry{block: chunkLen + 1, slot: 8}, free)
	tab.apply(entry{block: 1, slot: zeroSlot, n: 3*chunkLen + 9}, free)
	if len(freed) != 2 || tab.data != 0 || tab.zero != 3*chunkLen+9 || tab.zchunks != 2 {
		t.Fatalf("after the discard: freed %v, data %d, zero %d, zero chunks %d", freed, tab.data, tab.zero, tab.zchunks)
	}
	if got := int64(len(tab.entries())); got != tab.entryCount() {
		t.Errorf("%d entries, entryCount %d", got, tab.entryCount())
	}
	tab.apply(entry{block: chunkLen + 2, slot: 9}, free)
	if tab.data != 1 || tab.zero != 3*chunkLen+8 || tab.zchunks != 1 || tab.get(chunkLen+3) != valZero || tab.get(chunkLen+2) != 9+valSlot0 {
		t.Errorf("after a write into a zero chunk: data %d, zero %d, zero chunks %d", tab.data, tab.zero, tab.zchunks)
	}
	if zeroChunk.v[chunkLen+2-chunkLen] != valZero {
		t.Fatal("the shared zero chunk was written")
	}
	if got := int64(len(tab.entries())); got != tab.entryCount() {
		t.Errorf("%d entries, entryCount %d", got, tab.entryCount())
	}
}
