package state

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestRogueClusterReportsRefused: a cluster reporting a node subnet outside
// its blocks or over another node's, an instance IP outside its blocks,
// another cluster's instance, or absurd capacity or usage has that part
// refused and counted; the other cluster's peers, service table and
// instance are unchanged, and the rest of the report applies.
func TestRogueClusterReportsRefused(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	c2 := cluster(t, s, "c2", node("n2", 4096, 10))
	mine, theirs := instance(t, s, "a", c1), instance(t, s, "b", c2)
	apply := func(c string, r Report) {
		t.Helper()
		if _, _, err := s.ApplyReport(c, r); err != nil {
			t.Fatal(err)
		}
	}
	apply(c1, Report{Statuses: []wire.InstanceStatus{{Key: mine.Key, Status: wire.StatusRunning, NodeID: "n1", InstanceIP: "10.64.1.2"}}})
	apply(c2, Report{Statuses: []wire.InstanceStatus{{Key: theirs.Key, Status: wire.StatusRunning, NodeID: "n2", InstanceIP: "10.65.1.2"}}})
	view := func() string {
		sn := s.Snapshot()
		return fmt.Sprintf("%+v %+v %+v", ClusterNetwork(c2, sn.Peers(), sn.ServiceTable()), *sn.Instance(mine.Key), *sn.Nodes(c1)[0])
	}
	before := view()
	n2 := *s.Snapshot().Nodes(c2)[0]
	if n2.Network == nil || n2.Network.Subnet != "10.65.1.0/24" {
		t.Fatalf("c2's node: %+v", n2.NodeInfo)
	}
	withNet := func(subnet, mac, public string) wire.NodeInfo {
		n := n2.NodeInfo
		n.Network = &wire.NodeNetwork{NodeID: n.ID, Subnet: subnet, VTEPMAC: mac, PublicIP: public, PublicPort: 4789}
		return n
	}
	rogue := func(subnet string) wire.NodeInfo {
		n := withNet(subnet, "02:00:00:00:99:01", "192.0.2.9")
		n.ID, n.Name = "rogue", "rogue"
		return n
	}
	capacity := func(r wire.Resources) wire.NodeInfo { n := n2.NodeInfo; n.Capacity = r; return n }
	cpu := func(p float64) wire.NodeInfo { n := n2.NodeInfo; n.CPUPercent = p; return n }
	status := func(ip string, mem int64) []wire.InstanceStatus {
		return []wire.InstanceStatus{{Key: theirs.Key, Status: wire.StatusRunning, NodeID: "n2", InstanceIP: ip, MemoryMB: mem, Detail: "applied"}}
	}
	for _, c := range []struct {
		name, reason string
		r            Report
	}{
		{"half the internet", "subnet", Report{Nodes: []wire.NodeInfo{rogue("0.0.0.0/1")}}},
		{"another cluster's node subnet", "subnet", Report{Nodes: []wire.NodeInfo{rogue("10.64.1.0/24")}}},
		{"another cluster's block", "subnet", Report{Nodes: []wire.NodeInfo{rogue("10.64.0.0/16")}}},
		{"over its own node", "subnet", Report{Nodes: []wire.NodeInfo{rogue("10.65.1.128/25")}}},
		{"its whole block", "subnet", Report{Nodes: []wire.NodeInfo{rogue("10.65.0.0/16")}}},
		{"a /30 around an address", "subnet", Report{Nodes: []wire.NodeInfo{rogue("192.0.2.8/30")}}},
		{"a node moved into another cluster's block", "subnet", Report{Nodes: []wire.NodeInfo{withNet("10.64.7.0/24", "02:00:00:00:00:02", "192.0.2.1")}}},
		{"a public IP in the instance network", "subnet", Report{Nodes: []wire.NodeInfo{withNet("10.65.1.0/24", "02:00:00:00:00:02", "10.64.1.2")}}},
		{"a broadcast VTEP MAC", "subnet", Report{Nodes: []wire.NodeInfo{withNet("10.65.1.0/24", "ff:ff:ff:ff:ff:ff", "192.0.2.1")}}},
		{"a million cores", "capacity", Report{Nodes: []wire.NodeInfo{capacity(wire.Resources{MilliCPU: 1e9, MemoryMB: 4096})}}},
		{"negative memory", "capacity", Report{Nodes: []wire.NodeInfo{capacity(wire.Resources{MilliCPU: 4000, MemoryMB: -5})}}},
		{"cpu at 500%", "usage", Report{Nodes: []wire.NodeInfo{cpu(500)}}},
		{"an instance IP of another cluster", "instance_ip", Report{Statuses: status("10.64.1.3", 0)}},
		{"an instance IP outside the network", "instance_ip", Report{Statuses: status("192.0.2.1", 0)}},
		{"an instance using a petabyte", "usage", Report{Statuses: status("10.65.1.2", 1<<40)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			counted := testutil.ToFloat64(mRejected.WithLabelValues(c.reason))
			apply(c2, c.r)
			if d := testutil.ToFloat64(mRejected.WithLabelValues(c.reason)) - counted; d < 1 {
				t.Errorf("thicket_root_reports_rejected_total{reason=%q} did not grow", c.reason)
			}
			if after := view(); after != before {
				t.Errorf("c1's view changed:\n%s\n→\n%s", before, after)
			}
			sn := s.Snapshot()
			for _, n := range sn.Nodes(c2) {
				switch {
				case n.ID == "n2" && (n.Network == nil || *n.Network != *n2.Network || n.Capacity != n2.Capacity || n.CPUPercent != n2.CPUPercent):
					t.Errorf("c2's node became %+v; want as accepted before", n.NodeInfo)
				case n.ID == "rogue" && n.Network != nil:
					t.Errorf("the rogue node's network was taken: %+v", n.Network)
				}
			}
			if in := sn.Instance(theirs.Key); in.InstanceIP != "10.65.1.2" || in.MemoryMB > wire.MaxMemoryMB {
				t.Errorf("c2's instance became %+v", in)
			}
			apply(c2, Report{Full: true, Nodes: []wire.NodeInfo{n2.NodeInfo}})
		})
	}
	// Another cluster's instance: ignored, as before.
	ignored := testutil.ToFloat64(mIgnored)
	apply(c2, Report{Statuses: []wire.InstanceStatus{{Key: mine.Key, Status: wire.StatusFailed, Detail: "forged", NodeID: "n2"}}})
	if view() != before || testutil.ToFloat64(mIgnored) == ignored {
		t.Errorf("another cluster's instance: view changed or not counted")
	}
}
