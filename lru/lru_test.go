package lru

import "testing"

func TestBudgetEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[int, string](3)
	c.Put(1, "a", 1)
	c.Put(2, "b", 1)
	c.Put(3, "c", 1)
	c.Get(1) // 2 is now the least recently used
	c.Put(4, "d", 1)
	if _, ok := c.Get(2); ok {
		t.Error("the least recently used value survived past the budget")
	}
	for _, k := range []int{1, 3, 4} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%d was dropped", k)
		}
	}
	c.Put(5, "too big", 4)
	if _, ok := c.Get(5); ok {
		t.Error("a value costing more than the budget was kept")
	}
}

func TestItemMaxAndEvict(t *testing.T) {
	c := New[int, *int](8)
	c.SetItemMax(2)
	var dropped []int
	c.SetEvict(func(v *int) { dropped = append(dropped, *v) })
	c.Put(9, new(int), 3)
	if _, ok := c.Get(9); ok {
		t.Error("a value past the item maximum was kept")
	}
	for i := range 5 {
		v := i
		c.Put(i, &v, 2)
	}
	if len(dropped) != 1 || dropped[0] != 0 {
		t.Errorf("evicted %v, want [0]", dropped)
	}
	var seen int
	if !c.With(4, func(v *int) { seen = *v }) || seen != 4 {
		t.Errorf("With(4): saw %d", seen)
	}
	if c.With(0, func(*int) { t.Error("With called fn for a dropped key") }) {
		t.Error("With reported a dropped key as cached")
	}
}
