package apitest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestClusterNodesFollowSyncs: what a cluster reports of its nodes shows in
// the API and in other clusters' overlay peers at the next sync (nodes
// joining, going silent, leaving), and survives a restart of the root.
func TestClusterNodesFollowSyncs(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=nodes-admin-password"})
	admin := r.login("Admin", "nodes-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	register := func(name string) string {
		var reg wire.ClusterRegisterResponse
		r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: name}, &reg)
		return reg.Credential
	}
	a, b := register("a"), register("b")
	// Each node's subnet lies in its cluster's block (a's is the first,
	// 10.64.0.0/16, b's the second): the root refuses any other.
	subnets := map[string]string{"a1": "10.64.1.0/24", "a2": "10.64.2.0/24", "b1": "10.65.1.0/24"}
	node := func(id string, active bool, cpu float64) wire.NodeInfo {
		return wire.NodeInfo{ID: id, Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: active,
			Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 1024}, CPUPercent: cpu,
			Network: &wire.NodeNetwork{NodeID: id, Subnet: subnets[id], VTEPMAC: fmt.Sprintf("02:00:00:00:%02x:%02x", id[0], id[1]), PublicIP: "192.0.2.1", PublicPort: 4789}}
	}
	sync := func(cred string, nodes ...wire.NodeInfo) wire.ClusterDesired {
		var d wire.ClusterDesired
		r.must("POST", "/api/cluster/sync", cred, wire.ClusterSync{Version: wire.Version, Nodes: nodes}, &d)
		return d
	}
	cluster := func(name string) api.Cluster {
		t.Helper()
		var cls []api.Cluster
		r.must("GET", "/api/clusters", admin, nil, &cls)
		for _, c := range cls {
			if c.ClusterName == name {
				return c
			}
		}
		t.Fatalf("no cluster %s in %+v", name, cls)
		return api.Cluster{}
	}
	names := func(c api.Cluster) string {
		var out []string
		for _, n := range c.Nodes {
			s := n.Name
			if !n.Active {
				s += "(lost)"
			}
			out = append(out, s)
		}
		return strings.Join(out, ",")
	}
	peers := func(d wire.ClusterDesired) string {
		var out []string
		for _, p := range d.Network.Peers {
			out = append(out, p.NodeID)
		}
		return strings.Join(out, ",")
	}

	sync(a, node("a1", true, 10))
	if d := sync(b, node("b1", true, 0)); peers(d) != "a1" {
		t.Errorf("b's peers = %q, want a1", peers(d))
	}
	if c := cluster("a"); names(c) != "a1" || c.ActiveNodes != 1 || c.TotalCPUCores != 2 {
		t.Errorf("cluster a after its first sync: nodes %q, %d active, %d cores", names(c), c.ActiveNodes, c.TotalCPUCores)
	}
	// A node joins: seen at the next sync, usage changes alone do not hide it.
	sync(a, node("a1", true, 55), node("a2", true, 0))
	if c := cluster("a"); names(c) != "a1,a2" || c.ActiveNodes != 2 || c.TotalCPUCores != 4 {
		t.Errorf("after a2 joined: nodes %q, %d active, %d cores", names(c), c.ActiveNodes, c.TotalCPUCores)
	}
	if d := sync(b, node("b1", true, 0)); peers(d) != "a1,a2" {
		t.Errorf("b's peers after a2 joined = %q", peers(d))
	}
	// A node goes silent, then leaves.
	sync(a, node("a1", true, 55), node("a2", false, 0))
	if c := cluster("a"); names(c) != "a1,a2(lost)" || c.ActiveNodes != 1 {
		t.Errorf("after a2 went silent: nodes %q, %d active", names(c), c.ActiveNodes)
	}
	if d := sync(b, node("b1", true, 0)); peers(d) != "a1" {
		t.Errorf("b's peers after a2 went silent = %q", peers(d))
	}
	if d := sync(a, node("a1", true, 55)); peers(d) != "b1" {
		t.Errorf("a's peers = %q, want b1", peers(d))
	}
	if c := cluster("a"); names(c) != "a1" {
		t.Errorf("after a2 left: nodes %q", names(c))
	}

	r.restart(false)
	admin = r.login("Admin", "nodes-admin-password").Token
	if c := cluster("a"); names(c) != "a1" || c.ActiveNodes != 1 {
		t.Errorf("after a restart of the root: nodes %q, %d active", names(c), c.ActiveNodes)
	}
	if c := cluster("b"); names(c) != "b1" {
		t.Errorf("cluster b after a restart of the root: nodes %q", names(c))
	}
}

// TestRefusedSyncsAreSignsOfLife: a cluster whose syncs the root refuses
// (malformed, far too large) gets a clear error, but it is talking, so it
// is not declared lost after the grace; a cluster that is silent is.
func TestRefusedSyncsAreSignsOfLife(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=sync-admin-password"}, "--cluster-grace", "2s")
	admin := r.login("Admin", "sync-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	register := func(name string) string {
		var reg wire.ClusterRegisterResponse
		r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: name}, &reg)
		r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{}}, nil)
		return reg.Credential
	}
	talking := register("talking")
	register("silent")
	huge := `{"version":"` + wire.Version + `","nodes":[],"pad":"` + strings.Repeat("x", 17<<20) + `"}`
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if res := r.do("POST", "/api/cluster/sync", talking, `{"version": 7`); res.Status != http.StatusBadRequest {
			t.Fatalf("malformed sync: %s", res)
		}
		if res := r.do("POST", "/api/cluster/sync", talking, huge); res.Status != http.StatusRequestEntityTooLarge ||
			!strings.Contains(string(res.Body), "larger than") {
			t.Fatalf("sync of 17 MiB: %d %.200s", res.Status, res.Body)
		}
	}
	var cls []api.Cluster
	r.must("GET", "/api/clusters", admin, nil, &cls)
	active := map[string]bool{}
	for _, c := range cls {
		active[c.ClusterName] = c.Active
	}
	if !active["talking"] || active["silent"] {
		t.Errorf("after 4 s with a 2 s grace: active %v, want the talking cluster only", active)
	}
}
