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
