package httpapi

import (
	"context"
	"testing"
	"time"
)

// TestCacheForget: a cached value is served without a load until it is
// forgotten or too old; a load that was under way when the key was
// forgotten (it may have read the store before the change) is answered
// but not kept.
func TestCacheForget(t *testing.T) {
	ctx := context.Background()
	store := map[string]int{"u": 1}
	loads := 0
	var during func() // runs inside the next load, after it read the store
	c := newCache(time.Hour, func(_ context.Context, k string) (int, error) {
		loads++
		v := store[k]
		if during != nil {
			f := during
			during = nil
			f()
		}
		return v, nil
	})
	get := func(want, wantLoads int) {
		t.Helper()
		if v, err := c.get(ctx, "u"); err != nil || v != want || loads != wantLoads {
			t.Fatalf("get = %d, %v after %d loads; want %d after %d", v, err, loads, want, wantLoads)
		}
	}
	get(1, 1)
	get(1, 1) // cached
	store["u"] = 2
	c.forget("u")
	get(2, 2)
	// A change (and its forget) while a load that read the old value runs.
	c.forget("u")
	during = func() { store["u"] = 3; c.forget("u") }
	get(2, 3) // the load's answer, not kept
	get(3, 4)
	get(3, 4)
	// Too old: loaded again.
	c.ttl = 0
	get(3, 5)
}
