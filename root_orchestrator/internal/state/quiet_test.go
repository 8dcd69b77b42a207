package state

import (
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestBackgroundChangesWaitForQuiet: during a burst of waited-for writes
// (requests, each a few milliseconds after the one before), a report's
// status change nobody waits for is not written once it is due, which
// would hold up the requests behind it; it is written once it is overdue
// even though the burst goes on, and the burst's writes are all stored.
func TestBackgroundChangesWaitForQuiet(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	// A quiet longer than any pause of the burst on a busy machine.
	s.p.mu.Lock()
	s.p.quiet = time.Second
	s.p.mu.Unlock()
	running(t, s)
	c1 := cluster(t, s, "c1", node("n1", 1<<20, 0))
	a := instance(t, s, "a", c1)
	svc := a.ServiceID
	report := func(status string) {
		t.Helper()
		if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: a.Key, Status: status, NodeID: "n1", Node: "n1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() string {
		if o := mem.Get(KindInstance, a.Key); o != nil {
			return o.(*Instance).Status
		}
		return ""
	}

	// The instance's node is stored first; what follows is a status
	// change alone.
	report(wire.StatusCreating)
	for deadline := time.Now().Add(5 * time.Second); stored() != wire.StatusCreating; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the instance's node not stored: %q", stored())
		}
	}

	stop := make(chan struct{})
	burst := make(chan []Ticket)
	go func() {
		var tks []Ticket
		defer func() { burst <- tks }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_, tk, err := s.AddInstance(svc)
			if err != nil {
				t.Error(err)
				return
			}
			tks = append(tks, tk)
		}
	}()
	time.Sleep(100 * time.Millisecond) // the burst is under way
	t0 := time.Now()
	report(wire.StatusRunning)
	time.Sleep(2*lazyWithin - time.Since(t0)) // due since lazyWithin
	if got := stored(); got == wire.StatusRunning {
		t.Errorf("a background change due for %s was written during a burst of requests", (time.Since(t0) - lazyWithin).Round(time.Millisecond))
	}
	deadline := t0.Add(3*lazyWithin + 2*time.Second)
	for stored() != wire.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatalf("the background change was not written %s after it was made (overdue after %s), the burst going on: stored %q",
				time.Since(t0).Round(time.Millisecond), 3*lazyWithin, stored())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	tks := <-burst
	if len(tks) < 100 {
		t.Fatalf("only %d requests in the burst", len(tks))
	}
	for _, tk := range tks {
		durable(t, s, tk)
	}
}
