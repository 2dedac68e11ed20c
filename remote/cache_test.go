package remote

import "testing"

func TestBlockLRU(t *testing.T) {
	c := newBlockLRU(2)
	c.add(1, []byte{1})
	c.add(2, []byte{2})
	if _, ok := c.get(1); !ok { // 1 is now the most recently used
		t.Fatal("block 1 missing")
	}
	c.add(3, []byte{3}) // evicts 2
	if c.contains(2) || !c.contains(1) || !c.contains(3) || c.len() != 2 {
		t.Fatalf("after evicting: 1 %v, 2 %v, 3 %v, len %d", c.contains(1), c.contains(2), c.contains(3), c.len())
	}
	c.contains(1)       // does not mark 1 used
	c.get(3)            // does
	c.add(4, []byte{4}) // so 1 goes
	if c.contains(1) || !c.contains(3) || !c.contains(4) {
		t.Fatal("contains marked a block used")
	}
	c.add(4, []byte{5})
	if d, _ := c.get(4); d[0] != 5 || c.len() != 2 {
		t.Fatal("re-adding a block did not replace it")
	}
}
