package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestBackendWritesBigBatches: the state's batches reach the embedded store
// whole, however many objects they change, and load back as written.
// (FerretDB hangs on a bulk command of about 100 updates of existing
// documents; the backend splits batches.)
func TestBackendWritesBigBatches(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const n = 500
	for round := range 3 {
		cs := make([]state.Change, n)
		for i := range n {
			node := &state.Node{ClusterID: "c1", NodeInfo: wire.NodeInfo{ID: fmt.Sprintf("n%d", i), Name: "n",
				Capacity: wire.Resources{MilliCPU: int64(1000 * (round + 1))}}}
			cs[i] = state.Change{Kind: state.KindNode, ID: "c1/" + node.ID, Object: node}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Write(wctx, cs)
		cancel()
		if err != nil {
			t.Fatalf("round %d: write %d nodes: %v", round, n, err)
		}
	}
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != n || d.Nodes[0].Capacity.MilliCPU != 3000 {
		t.Errorf("loaded %d nodes (first %+v), want %d with the last version", len(d.Nodes), d.Nodes[0], n)
	}
}
