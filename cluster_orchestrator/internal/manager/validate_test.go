package manager

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestRogueReportsRefused: a node reporting a subnet it was not assigned,
// another node's instance, an instance IP outside its subnet, or absurd
// capacity or usage has that part refused and counted; the other node's
// desired set, network and instance are unchanged, and the rest of the
// rogue's report applies.
func TestRogueReportsRefused(t *testing.T) {
	ctx := context.Background()
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	m.SetNetwork("c1", []string{"10.64.0.0/16"}, wire.Network{Services: []wire.ServiceRoute{
		{IP: "10.30.255.1", ServiceID: "svc", Mode: wire.RouteRoundRobin}}})
	spec := func(k string) wire.InstanceSpec {
		return wire.InstanceSpec{Key: k, ServiceID: "svc", Virtualization: "container", Code: "img", Resources: wire.Resources{MilliCPU: 1500, MemoryMB: 16}}
	}
	capacity := wire.Resources{MilliCPU: 2000, MemoryMB: 2048}
	good := join(t, m, "good")
	m.SetDesired([]wire.InstanceSpec{spec("svc.0")}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	rogue := join(t, m, "rogue")
	m.SetDesired([]wire.InstanceSpec{spec("svc.0"), spec("svc.1")}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	sts := m.Statuses()
	if sts[0].NodeID != good || sts[1].NodeID != rogue {
		t.Fatalf("placement %+v; want svc.0 on good, svc.1 on rogue", sts)
	}
	goodSub, rogueSub := netip.MustParsePrefix(pub.desired[good].Subnet), netip.MustParsePrefix(pub.desired[rogue].Subnet)
	at := func(p netip.Prefix, i int) string {
		a := p.Addr()
		for range i {
			a = a.Next()
		}
		return a.String()
	}
	netOf := func(sub netip.Prefix, mac string) *wire.NodeNetwork {
		return &wire.NodeNetwork{Subnet: sub.String(), VTEPMAC: mac, PublicIP: "192.0.2.1", PublicPort: 4789}
	}
	report := func(id string, nw *wire.NodeNetwork, c wire.Resources, cpu float64, sts ...wire.InstanceStatus) {
		t.Helper()
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Full: true, Generation: pub.desired[id].Generation,
			Node:      wire.NodeInfo{Active: true, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: c, CPUPercent: cpu, Network: nw},
			Instances: sts})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	report(good, netOf(goodSub, "02:00:00:00:00:01"), capacity, 10, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning, InstanceIP: at(goodSub, 2)})
	report(rogue, netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10, wire.InstanceStatus{Key: "svc.1", Status: wire.StatusRunning, InstanceIP: at(rogueSub, 2)})
	view := func() string {
		d := pub.desired[good]
		return fmt.Sprintf("%s %+v %+v %+v", d.Subnet, d.Instances, d.Network, m.Statuses()[0])
	}
	before := view()
	rogueNet := m.Nodes()[1].Network
	if rogueNet == nil || m.Nodes()[1].Name != "rogue" {
		t.Fatalf("the rogue's accepted network: %+v", m.Nodes()[1])
	}
	runsOK := wire.InstanceStatus{Key: "svc.1", Status: wire.StatusRunning, InstanceIP: at(rogueSub, 2)}
	for _, c := range []struct {
		name, reason string
		nw           *wire.NodeNetwork
		capacity     wire.Resources
		cpu          float64
		sts          []wire.InstanceStatus
	}{
		{"half the internet", "subnet", netOf(netip.MustParsePrefix("0.0.0.0/1"), "02:00:00:00:00:02"), capacity, 10, []wire.InstanceStatus{runsOK}},
		{"the other node's subnet", "subnet", netOf(goodSub, "02:00:00:00:00:02"), capacity, 10, []wire.InstanceStatus{runsOK}},
		{"the whole block", "subnet", netOf(netip.MustParsePrefix("10.64.0.0/16"), "02:00:00:00:00:02"), capacity, 10, []wire.InstanceStatus{runsOK}},
		{"a public IP inside the block", "subnet", &wire.NodeNetwork{Subnet: rogueSub.String(), VTEPMAC: "02:00:00:00:00:02", PublicIP: at(goodSub, 2)}, capacity, 10, []wire.InstanceStatus{runsOK}},
		{"a multicast VTEP MAC", "subnet", netOf(rogueSub, "01:00:5e:00:00:01"), capacity, 10, []wire.InstanceStatus{runsOK}},
		{"another node's instance", "instance_key", netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10,
			[]wire.InstanceStatus{runsOK, {Key: "svc.0", Status: wire.StatusFailed, Detail: "forged"}}},
		{"an instance IP of the other node", "instance_ip", netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10,
			[]wire.InstanceStatus{{Key: "svc.1", Status: wire.StatusRunning, InstanceIP: at(goodSub, 3)}}},
		{"an instance IP outside the network", "instance_ip", netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10,
			[]wire.InstanceStatus{{Key: "svc.1", Status: wire.StatusRunning, InstanceIP: "192.0.2.1"}}},
		{"a million cores", "capacity", netOf(rogueSub, "02:00:00:00:00:02"), wire.Resources{MilliCPU: 1e9, MemoryMB: 2048}, 10, []wire.InstanceStatus{runsOK}},
		{"negative memory", "capacity", netOf(rogueSub, "02:00:00:00:00:02"), wire.Resources{MilliCPU: 2000, MemoryMB: -1}, 10, []wire.InstanceStatus{runsOK}},
		{"an exabyte", "capacity", netOf(rogueSub, "02:00:00:00:00:02"), wire.Resources{MilliCPU: 2000, MemoryMB: 1 << 40}, 10, []wire.InstanceStatus{runsOK}},
		{"cpu beyond 100%", "usage", netOf(rogueSub, "02:00:00:00:00:02"), capacity, 1e6, []wire.InstanceStatus{runsOK}},
		{"an instance using a petabyte", "usage", netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10,
			[]wire.InstanceStatus{{Key: "svc.1", Status: wire.StatusRunning, InstanceIP: at(rogueSub, 2), MemoryMB: 1 << 40}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			counted := testutil.ToFloat64(mRejected.WithLabelValues(c.reason))
			report(rogue, c.nw, c.capacity, c.cpu, c.sts...)
			if d := testutil.ToFloat64(mRejected.WithLabelValues(c.reason)) - counted; d < 1 {
				t.Errorf("thicket_cluster_reports_rejected_total{reason=%q} did not grow", c.reason)
			}
			if after := view(); after != before {
				t.Errorf("the good node's view changed:\n%s\n→\n%s", before, after)
			}
			n := m.Nodes()[1]
			if n.Network == nil || *n.Network != *rogueNet {
				t.Errorf("the rogue's network became %+v; want the one accepted before, %+v", n.Network, rogueNet)
			}
			if n.Capacity != capacity || n.CPUPercent != 10 {
				t.Errorf("the rogue's capacity and usage became %+v, %v%%", n.Capacity, n.CPUPercent)
			}
			st := m.Statuses()[1]
			if st.Status != wire.StatusRunning || st.NodeID != rogue {
				t.Errorf("the rest of the report did not apply: svc.1 %+v", st)
			}
			if st.InstanceIP != "" && st.InstanceIP != at(rogueSub, 2) {
				t.Errorf("svc.1 took instance IP %s", st.InstanceIP)
			}
			if st.MemoryMB > wire.MaxMemoryMB {
				t.Errorf("svc.1 uses %d MB", st.MemoryMB)
			}
			// The honest report again.
			report(rogue, netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10, runsOK)
		})
	}
	// A node may not claim an instance placed nowhere either.
	m.SetDesired([]wire.InstanceSpec{spec("svc.0"), spec("svc.1"), spec("svc.2")}, nil)
	counted := testutil.ToFloat64(mRejected.WithLabelValues("instance_key"))
	report(rogue, netOf(rogueSub, "02:00:00:00:00:02"), capacity, 10, runsOK, wire.InstanceStatus{Key: "svc.2", Status: wire.StatusRunning})
	if st := m.Statuses()[2]; st.NodeID == rogue || testutil.ToFloat64(mRejected.WithLabelValues("instance_key")) == counted {
		t.Errorf("the rogue adopted an unplaced instance: %+v", st)
	}
}
