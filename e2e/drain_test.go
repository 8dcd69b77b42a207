package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestDrainMovesInstances: node a is drained: its instance moves to b and
// runs there, make-before-break: sampled every 100 ms through the API, the
// 1-instance service never has zero RUNNING instances; a shows as draining
// while the instance is on it, then drained, and stays registered and
// active (issue 23, item 3; cordon alone is tested in the manager's and
// the root's tests).
func TestDrainMovesInstances(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("edge", "")
	a := s.addNode(c, "a", 43, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 1})
	ids := s.app("draining", map[string]any{"microservice_name": "web", "memory": 16})
	s.scaleUp(ids["web"])
	first := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
	if first.NodeName != a.name {
		t.Fatalf("instance 0 runs on %s, want %s (the only node then)", first.NodeName, a.name)
	}
	b := s.addNode(c, "b", 44, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 2})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := s.api.client()
	modeOfA := func() string {
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters", nil, &cls)
		for _, n := range cls[0].Nodes {
			if n.Name == a.name {
				return n.Mode
			}
		}
		return "?"
	}
	drained := time.Now()
	if _, err := cl.SetNodeMode(ctx, "edge", a.name, api.Drain); err != nil {
		t.Fatalf("drain %s: %v", a.name, err)
	}
	modes := map[string]bool{modeOfA(): true}
	var samples, zero int
	var last api.Service
	deadline := time.Now().Add(2 * time.Minute)
	for {
		last = s.api.service(ids["web"])
		samples++
		if last.Running == 0 {
			zero++
			t.Errorf("%s after the drain: no instance RUNNING: %+v", time.Since(drained).Round(time.Millisecond), last.InstanceList)
		}
		if len(last.InstanceList) == 1 && running(last.InstanceList[0]) && last.InstanceList[0].NodeName == b.name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not running on %s within 2 minutes: %+v", b.name, last.InstanceList)
		}
		if samples%10 == 0 {
			modes[modeOfA()] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the instance runs on %s %s after the drain (%d samples, %d without a RUNNING instance)", b.name,
		time.Since(drained).Round(time.Millisecond), samples, zero)
	if !modes["draining"] {
		t.Errorf("node %s never showed as draining while its instance moved: %v", a.name, modes)
	}
	testharness.WaitFor(t, 30*time.Second, a.name+" drained", func() (bool, string) {
		m := modeOfA()
		return m == "drained", m
	})
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters", nil, &cls)
	for _, n := range cls[0].Nodes {
		if n.Name == a.name && (n.Mode != "drained" || !n.Active) {
			t.Errorf("the drained node: %+v; want active and drained", n)
		}
	}
	// The copy on a is gone once the move is done.
	testharness.WaitFor(t, 30*time.Second, "no container left on "+a.name, func() (bool, string) {
		left := containers(t, s.ctrNS, "labels.\"thicket.node\"=="+a.name)
		return len(left) == 0, fmt.Sprint(left)
	})
}
