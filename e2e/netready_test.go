package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNetworkNotReady: a node whose net manager cannot set up the node's
// network takes no instance and says why. Issue 14, item 3: with thk0
// already holding another subnet, the node was offered capacity, its
// instance stayed CREATING with no reason, and the node engine logged the
// same error every second. Here the instance waits as NO_CAPACITY with the
// net manager's reason, and runs once the stray device is gone.
func TestNetworkNotReady(t *testing.T) {
	s := newSystem(t)
	// Someone else's bridge, with another subnet, under thicket-net's name.
	s.prepareHost = func(ns string) {
		run(t, "ip", "-n", ns, "link", "add", "thk0", "type", "bridge")
		run(t, "ip", "-n", ns, "addr", "add", "10.64.250.1/24", "dev", "thk0")
	}
	c := s.addCluster("ready", "")
	n := s.addOverlayNode(c, "r1", 91, 1024)
	s.prepareHost = nil
	s.waitNodes(map[string]int{"ready": 1})

	ids := s.app("ready", map[string]any{"microservice_name": "web", "memory": 16})
	s.scaleUp(ids["web"])
	in := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "waiting with the network's reason", func(in api.Instance) bool {
		return in.Status == wire.StatusNoCapacity && strings.Contains(in.StatusDetail, "not ready") &&
			strings.Contains(in.StatusDetail, "thk0 already has address 10.64.250.1/24")
	})
	t.Logf("while the network is refused: %s: %s", in.Status, in.StatusDetail)
	if got := strings.Count(n.proc.Output(), "the net manager refused the node's network"); got != 1 {
		t.Errorf("the node logged the refusal %d times, want once", got)
	}

	// The operator removes the stray device: the node becomes ready and
	// the instance runs, without anyone touching it.
	run(t, "ip", "-n", n.ns, "link", "del", "thk0")
	s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
}
