package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
)

// TestRogueNode: a node holding the cluster's join token, speaking the real
// node protocol with its own credentials, reports half the internet, its
// neighbour's subnet, a /30 around the cluster's address and the whole
// instance network as its subnet, its neighbour's instance (with an address
// of that neighbour's subnet) as failed, and absurd capacity and usage. The
// cluster refuses every part, counts and logs it; the honest nodes' routes
// and nftables rules, the instance and the root's view stay as they were.
func TestRogueNode(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("honest", "")
	n1 := s.addOverlayNode(c, "h1", 41, 1024)
	n2 := s.addOverlayNode(c, "h2", 42, 1024)
	s.waitNodes(map[string]int{"honest": 2})
	ids := s.app("victim", map[string]any{"microservice_name": "web", "memory": 32,
		"addresses": map[string]string{"rr_ip": "10.30.44.44"}, "constraints": pin("honest", n1.name)})
	s.scaleUp(ids["web"])
	in := s.runningOn(ids["web"], 0)
	victim := netip.MustParsePrefix(in.InstanceIP + "/24").Masked()

	datapath := func(n *node) string {
		t.Helper()
		var b strings.Builder
		for _, args := range [][]string{
			{"-n", n.ns, "route", "show", "dev", "thkvx0"},
			{"-n", n.ns, "neigh", "show", "dev", "thkvx0"},
			{"netns", "exec", n.ns, "nft", "list", "table", "ip", "thicket"},
		} {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
			b.Write(out)
		}
		return b.String()
	}
	rootView := func() string {
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters", nil, &cls)
		now, _ := s.api.instance(ids["web"], 0)
		var b strings.Builder
		for _, cl := range cls {
			fmt.Fprintf(&b, "%s cores=%d memory=%d:", cl.ClusterName, cl.TotalCPUCores, cl.MemoryInMB)
			for _, n := range cl.Nodes {
				fmt.Fprintf(&b, " %s/%d/%d", n.Name, n.CPUCores, n.MemoryInMB)
			}
		}
		fmt.Fprintf(&b, " instance %s %s %s %s", now.Status, now.StatusDetail, now.NodeName, now.InstanceIP)
		return b.String()
	}
	// n2 routes to n1's subnet and balances the service IP to the instance.
	before2, before1 := datapath(n2), datapath(n1)
	if !strings.Contains(before2, victim.String()) || !strings.Contains(before2, in.InstanceIP) {
		t.Fatalf("h2 has no route to %s or no rule for %s:\n%s", victim, in.InstanceIP, before2)
	}

	// The rogue registers as any node does, with sane capacity...
	rogueCap := wire.Resources{MilliCPU: 1000, MemoryMB: 512}
	body, _ := json.Marshal(wire.NodeRegisterRequest{Version: wire.Version, Name: "rogue", Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: rogueCap, Address: "192.0.2.66"})
	req, _ := http.NewRequest("POST", strings.TrimRight(c.nodeURL, "/")+"/api/node/register", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.nodeToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var creds wire.NodeRegisterResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &creds) != nil {
		t.Fatalf("rogue registration: %s: %s", resp.Status, data)
	}
	// ...and absurd capacity is refused at registration already.
	absurd, _ := json.Marshal(wire.NodeRegisterRequest{Version: wire.Version, Name: "rogue2", Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 1e12, MemoryMB: 1 << 50}})
	req, _ = http.NewRequest("POST", strings.TrimRight(c.nodeURL, "/")+"/api/node/register", bytes.NewReader(absurd))
	req.Header.Set("Authorization", "Bearer "+c.nodeToken)
	if resp, err := c.client(t).Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("registration with absurd capacity: %v %v; want 400", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := mqttc.Connect(ctx, mqttc.Options{URL: creds.MQTTURL, TLS: brokerTLS(t, creds), ClientID: mqttc.NodeClientID(creds.NodeID),
		Username: creds.MQTTUsername, Password: creds.MQTTPassword, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("rogue connects to the broker: %v", err)
	}
	defer client.Close()
	around := netip.PrefixFrom(netip.MustParseAddr(bridgeAddr), 30).Masked()
	for round := range 3 {
		for _, subnet := range []string{"0.0.0.0/1", victim.String(), around.String(), "10.64.0.0/10"} {
			r := wire.NodeReport{Version: wire.Version, NodeID: creds.NodeID, Time: time.Now().UTC(), Full: true,
				Node: wire.NodeInfo{Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
					Capacity: wire.Resources{MilliCPU: 1 << 40, MemoryMB: 1 << 45}, CPUPercent: 1e6, MemoryPercent: -5,
					Network: &wire.NodeNetwork{NodeID: creds.NodeID, Subnet: subnet, VTEPMAC: "02:00:00:00:66:01", PublicIP: "192.0.2.66", PublicPort: 4789}},
				Instances: []wire.InstanceStatus{{Key: wire.InstanceKey(ids["web"], 0), Status: wire.StatusFailed, Detail: "forged by the rogue",
					InstanceIP: victim.Addr().Next().Next().String(), CPUPercent: 1e9, MemoryMB: 1 << 50}}}
			b, _ := json.Marshal(r)
			if err := client.Publish(ctx, creds.ReportTopic, 1, false, b); err != nil {
				t.Fatalf("rogue report: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		if round == 0 {
			t.Logf("root's view with the rogue reporting: %s", rootView())
		}
	}
	time.Sleep(3 * time.Second) // a few syncs and desired sets after the last one

	if after := datapath(n2); after != before2 {
		t.Errorf("h2's routes or rules changed:\n%s\n→\n%s", before2, after)
	}
	if after := datapath(n1); after != before1 {
		t.Errorf("h1's routes or rules changed:\n%s\n→\n%s", before1, after)
	}
	now, _ := s.api.instance(ids["web"], 0)
	if now.Status != wire.StatusRunning || now.NodeName != n1.name || now.InstanceIP != in.InstanceIP || strings.Contains(now.StatusDetail, "forged") {
		t.Errorf("the instance became %+v; want running on %s at %s", now, n1.name, in.InstanceIP)
	}
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters", nil, &cls)
	for _, cl := range cls {
		for _, n := range cl.Nodes {
			if n.CPUCores > 4096 || n.MemoryInMB > 1<<26 || n.CPUPercent > 100 || n.CPUPercent < 0 || n.MemoryPercent < 0 {
				t.Errorf("the root shows node %s of %s with %d cores, %d MB, %v%% cpu, %v%% memory", n.Name, cl.ClusterName, n.CPUCores, n.MemoryInMB, n.CPUPercent, n.MemoryPercent)
			}
		}
	}
	t.Logf("root's view after: %s", rootView())

	// Counted by reason, and logged once per reason, not per report.
	metrics, err := scrape(strings.TrimRight(c.nodeURL, "/"), c.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"subnet", "capacity", "usage", "instance_key"} {
		m := regexp.MustCompile(`thicket_cluster_reports_rejected_total\{reason="` + reason + `"\} (\d+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("no thicket_cluster_reports_rejected_total{reason=%q}", reason)
		} else if v, _ := strconv.Atoi(m[1]); v < 12 {
			t.Errorf("thicket_cluster_reports_rejected_total{reason=%q} = %d; want at least the 12 reports", reason, v)
		}
	}
	logs := c.proc.Output()
	for _, reason := range []string{"subnet", "capacity", "usage", "instance_key"} {
		if n := strings.Count(logs, "reason="+reason+" "); n != 1 {
			t.Errorf("reason %s logged %d times; want once", reason, n)
		}
	}
}
