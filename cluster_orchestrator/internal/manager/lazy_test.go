package manager

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

// writeLog is a state.Memory that records each WriteInstances call and
// fails those for which fail says so (nothing of a failed call is kept).
type writeLog struct {
	*state.Memory
	calls [][]string // the keys saved by each call, failed ones too
	fail  func(save []state.Instance) bool
}

func (w *writeLog) WriteInstances(ctx context.Context, save []state.Instance, remove []string) error {
	keys := make([]string, len(save))
	for i, in := range save {
		keys[i] = in.Key
	}
	w.calls = append(w.calls, keys)
	if w.fail != nil && w.fail(save) {
		return errors.New("store unreachable")
	}
	return w.Memory.WriteInstances(ctx, save, remove)
}

// kicked tells whether the manager asked for another pass at once (and
// takes that request).
func kicked(m *Manager) bool {
	select {
	case <-m.kickC:
		return true
	default:
		return false
	}
}

// TestStatusBacklogWrittenInChunks: a burst of status changes is written
// lazyChunk per pass, each pass asking for the next at once, so that a
// placement made meanwhile is stored and published by the next pass instead
// of after the whole backlog; a chunk whose write fails is written again
// (nothing is lost), and no status is written twice when all goes well.
func TestStatusBacklogWrittenInChunks(t *testing.T) {
	ctx := context.Background()
	st := &writeLog{Memory: state.NewMemory()}
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, st, pub)
	id := join(t, m, "n1")
	const n = 3*lazyChunk + 5
	spec := func(i int) wire.InstanceSpec {
		return wire.InstanceSpec{Key: fmt.Sprintf("svc.%d", i), ServiceID: "svc", Virtualization: "container", Code: "img",
			Resources: wire.Resources{MilliCPU: 10, MemoryMB: 10}}
	}
	specs := make([]wire.InstanceSpec, n)
	for i := range specs {
		specs[i] = spec(i)
	}
	m.SetDesired(specs, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(pub.desired[id].Instances); got != n {
		t.Fatalf("%d instances published to the node, want %d", got, n)
	}
	kicked(m)

	// The node reports every instance RUNNING: status-only changes.
	running := make([]wire.InstanceStatus, n)
	for i := range running {
		running[i] = wire.InstanceStatus{Key: spec(i).Key, Status: wire.StatusRunning}
	}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: m.nodes[id].Info, Instances: running, Full: true})
	st.calls = nil
	m.mu.Lock()
	m.lastLazy = time.Now().Add(-2 * lazyWrites) // the statuses are due
	m.mu.Unlock()
	kicked(m) // the report's

	// The first chunk fails: the pass reports it and does not spin.
	failed := false
	st.fail = func(save []state.Instance) bool {
		if !failed && len(save) > 0 {
			failed = true
			return true
		}
		return false
	}
	if err := m.Reconcile(ctx); err == nil {
		t.Fatal("a pass whose write failed reports no error")
	}
	if len(st.calls) != 1 || len(st.calls[0]) != lazyChunk {
		t.Fatalf("the first pass wrote %v, want one chunk of %d statuses", st.calls, lazyChunk)
	}
	if kicked(m) {
		t.Error("a pass whose write failed asks for the next at once")
	}

	// A placement comes while the backlog is written: the next pass stores
	// and publishes it, with the failed chunk and one more.
	m.UpdateDesired([]wire.InstanceSpec{spec(n)}, nil)
	kicked(m)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	last := st.calls[len(st.calls)-1]
	if len(last) != 2*lazyChunk+1 {
		t.Errorf("the pass after the failure wrote %d instances, want the failed chunk, the new placement and one more chunk (%d)", len(last), 2*lazyChunk+1)
	}
	if got := len(pub.desired[id].Instances); got != n+1 {
		t.Errorf("%d instances published after the placement's pass, want %d", got, n+1)
	}
	if !kicked(m) {
		t.Error("a pass that left due statuses does not ask for the next at once")
	}
	for passes := 0; kicked(m) || passes == 0; passes++ {
		if passes > n {
			t.Fatal("the backlog never ends")
		}
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if w := st.calls[len(st.calls)-1]; len(w) > lazyChunk {
			t.Errorf("a pass wrote %d statuses, more than %d", len(w), lazyChunk)
		}
	}

	// Every status is stored, each written once (twice for the failed
	// chunk), and nothing else is due.
	times := map[string]int{}
	for _, c := range st.calls {
		for _, k := range c {
			times[k]++
		}
	}
	stored, err := st.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range stored {
		if in.Key == spec(n).Key {
			continue
		}
		if in.Status.Status != wire.StatusRunning {
			t.Errorf("%s stored %s, want RUNNING", in.Key, in.Status.Status)
		}
		if times[in.Key] < 1 || times[in.Key] > 2 {
			t.Errorf("%s written %d times", in.Key, times[in.Key])
		}
	}
	if len(stored) != n+1 {
		t.Errorf("%d instances stored, want %d", len(stored), n+1)
	}
	m.mu.Lock()
	left := len(m.dirtyInst)
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d instances still to write", left)
	}
}
