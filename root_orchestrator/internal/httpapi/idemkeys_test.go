package httpapi

import (
	"strconv"
	"testing"
	"time"
)

// The in-memory index of idempotency keys decides when the store is asked:
// a claimed key is refused to a second request, and a key not known is new
// only while the index is complete.
func TestIdemKeys(t *testing.T) {
	var k idemKeys
	if !k.mayBeKept("a") {
		t.Fatal("before a load every key must be looked up in the store")
	}
	k.load(map[string]time.Time{"old": time.Now().Add(time.Hour), "gone": time.Now().Add(-time.Second)})
	for _, c := range []struct {
		id   string
		want bool
	}{{"old", true}, {"gone", false}, {"new", false}} {
		if got := k.mayBeKept(c.id); got != c.want {
			t.Errorf("mayBeKept(%q) = %v after a load, want %v", c.id, got, c.want)
		}
	}

	if _, ok := k.claim("new", "fp1"); !ok {
		t.Fatal("first claim refused")
	}
	if other, ok := k.claim("new", "fp2"); ok || other != "fp1" {
		t.Errorf("second claim: (%q, %v), want refused with the holder's fingerprint", other, ok)
	}
	k.keep("new", time.Now().Add(time.Hour))
	k.release("new")
	if !k.mayBeKept("new") {
		t.Error("a kept key must be looked up")
	}
	if _, ok := k.claim("new", "fp2"); !ok {
		t.Error("a released key cannot be claimed again")
	}

	k.expire(time.Now().Add(2 * time.Hour))
	if k.mayBeKept("old") {
		t.Error("an expired key is still known")
	}

	// Full: keys beyond the bound are not remembered, so misses go to the
	// store again.
	full := make(map[string]time.Time, maxKnownKeys)
	for i := range maxKnownKeys {
		full[strconv.Itoa(i)] = time.Now().Add(time.Hour)
	}
	k.load(full)
	if !k.mayBeKept("unknown") {
		t.Error("a full index must send misses to the store")
	}
}
