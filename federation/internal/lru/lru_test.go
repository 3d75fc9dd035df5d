package lru

import "testing"

func TestCache(t *testing.T) {
	c := New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Put("c", 3) // evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Fatal("b was not evicted")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("a was evicted: %d, %v", v, ok)
	}
	c.Put("a", 10) // an update does not grow the cache
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Fatalf("after update: a = %d, len %d", v, c.Len())
	}
	c.Remove("a")
	c.Remove("nothing")
	if _, ok := c.Get("a"); ok || c.Len() != 1 {
		t.Fatalf("after Remove: len %d", c.Len())
	}
	if New[int, int](0).cap != 1 {
		t.Fatal("a capacity below 1 is not raised to 1")
	}
}
