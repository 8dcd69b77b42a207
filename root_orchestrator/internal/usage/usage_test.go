package usage

import (
	"fmt"
	"testing"
	"time"
)

func TestRings(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	r := New(time.Minute, 5*time.Minute)
	r.Add("a", t0.Add(10*time.Second), 10, 100)
	r.Add("a", t0.Add(50*time.Second), 20, 110) // same step: replaces
	r.Add("a", t0.Add(70*time.Second), 30, 120)
	got := func(now time.Time) string {
		var out []string
		for _, s := range r.Of("a", now) {
			out = append(out, fmt.Sprintf("%s:%g/%g", s.Time.Format("15:04"), s.CPU, s.Memory))
		}
		return fmt.Sprint(out)
	}
	if g := got(t0.Add(2 * time.Minute)); g != "[07:00:20/110 07:01:30/120]" {
		t.Errorf("samples %s", g)
	}
	for i := 2; i <= 7; i++ { // a sample every minute up to 07:07
		r.Add("a", t0.Add(time.Duration(i)*time.Minute), float64(i), 0)
	}
	if g := got(t0.Add(7 * time.Minute)); g != "[07:03:3/0 07:04:4/0 07:05:5/0 07:06:6/0 07:07:7/0]" {
		t.Errorf("after the window moved: %s", g)
	}
	if g := got(t0.Add(10 * time.Minute)); g != "[07:06:6/0 07:07:7/0]" {
		t.Errorf("read later: %s", g)
	}
	if len(r.Of("nope", t0)) != 0 {
		t.Error("an unknown key has samples")
	}
	r.Add("b", t0, 1, 1)
	r.Prune(t0.Add(7 * time.Minute))
	if len(r.Of("b", t0)) != 0 || len(r.Of("a", t0.Add(7*time.Minute))) == 0 {
		t.Error("prune: b (silent for longer than the window) should go, a stay")
	}
}
