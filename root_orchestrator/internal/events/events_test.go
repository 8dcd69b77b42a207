package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestLog(t *testing.T) {
	l := New(3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(key string, s int) wire.Event {
		return wire.Event{Key: key, Time: t0.Add(time.Duration(s) * time.Second), Source: "node", Message: fmt.Sprint(s)}
	}
	l.Add(ev("a", 1), ev("a", 3), ev("b", 1))
	l.Add(ev("a", 2)) // late: in time order
	l.Add(ev("a", 4)) // the oldest goes
	msgs := func(key string) (out []string) {
		for _, e := range l.Of(key) {
			out = append(out, e.Message)
		}
		return out
	}
	if got := fmt.Sprint(msgs("a")); got != "[2 3 4]" {
		t.Errorf("a: %s, want [2 3 4]", got)
	}
	if got := fmt.Sprint(msgs("b")); got != "[1]" {
		t.Errorf("b: %s", got)
	}
	l.Prune(time.Minute, func(k string) bool { return k == "a" })
	if len(l.Of("b")) != 0 || len(l.Of("a")) != 3 {
		t.Errorf("after pruning b: a %v, b %v", l.Of("a"), l.Of("b"))
	}
	l.Add(ev("b", 5))
	l.Prune(time.Minute, func(k string) bool { return false }) // within the minute: nothing
	if len(l.Of("b")) != 1 {
		t.Errorf("pruned twice within the interval")
	}
}

// TestChanges: what changed (added, pruned) is handed over once; loaded
// events are not changes; changes not stored come again.
func TestChanges(t *testing.T) {
	l := New(2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(key string, s int) wire.Event {
		return wire.Event{Key: key, Time: t0.Add(time.Duration(s) * time.Second), Message: fmt.Sprint(s)}
	}
	l.Load(map[string][]wire.Event{"a": {ev("a", 1), ev("a", 2), ev("a", 3)}, "b": {ev("b", 1)}})
	if save, remove := l.Changes(); len(save) != 0 || len(remove) != 0 {
		t.Errorf("after Load: %v, %v; want no changes", save, remove)
	}
	if got := len(l.Of("a")); got != 2 {
		t.Errorf("loaded a holds %d events, want the bound 2", got)
	}
	l.Add(ev("a", 4))
	l.Prune(0, func(k string) bool { return k == "a" })
	save, remove := l.Changes()
	if len(save) != 1 || len(save["a"]) != 2 || save["a"][1].Message != "4" || fmt.Sprint(remove) != "[b]" {
		t.Fatalf("changes: %v, %v; want a's newest two and b removed", save, remove)
	}
	if s2, r2 := l.Changes(); len(s2)+len(r2) != 0 {
		t.Errorf("changes handed over twice: %v, %v", s2, r2)
	}
	l.Unsaved(save, remove)
	if s3, r3 := l.Changes(); len(s3) != 1 || fmt.Sprint(r3) != "[b]" {
		t.Errorf("unsaved changes: %v, %v; want them again", s3, r3)
	}
}
