package apitest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestDeleteNode: an admin deletes a node of a cluster (both by name);
// users may not (403), unknown clusters and nodes are 404. The cluster's
// waiting watch answers at once with the node in deleted_nodes, the node
// leaves the cluster's list, a report of it from the cluster (that had not
// learnt yet) does not bring it back, and after a restart of the root the
// deletion still stands and is still told.
func TestDeleteNode(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "nodedel")
	node := func(id string) wire.NodeInfo {
		return wire.NodeInfo{ID: id + "-id", Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}
	}
	both := []wire.NodeInfo{node("a1"), node("a2")}
	a := g.mustRegister(join, "a", "")
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: both}, nil)
	nodesOfA := func() []string {
		var cls []api.Cluster
		r.must("GET", "/api/clusters", admin, nil, &cls)
		var out []string
		for _, cl := range cls {
			if cl.ID == a.ClusterID {
				for _, n := range cl.Nodes {
					out = append(out, n.Name)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got := nodesOfA(); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("the cluster's nodes are %v", got)
	}

	user := r.newUser(admin, "nodedeleter")
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"as a user", user, "/api/clusters/a/nodes/a1", http.StatusForbidden},
		{"without a token", "", "/api/clusters/a/nodes/a1", http.StatusUnauthorized},
		{"an unknown cluster", admin, "/api/clusters/nosuch/nodes/a1", http.StatusNotFound},
		{"an unknown node", admin, "/api/clusters/a/nodes/nosuch", http.StatusNotFound},
	} {
		if resp := r.do("DELETE", tc.path, tc.token, nil); resp.Status != tc.want {
			t.Errorf("delete a node %s: got %s, want %d", tc.name, resp, tc.want)
		}
	}
	if got := nodesOfA(); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("after refused deletes the cluster's nodes are %v", got)
	}

	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	watched := make(chan wire.ClusterDesired, 1)
	go func() {
		var w wire.ClusterDesired
		r.must("GET", "/api/cluster/desired?delta=1&wait=30s&epoch="+d.Epoch+"&after="+itoa64(d.Generation), a.Credential, nil, &w)
		watched <- w
	}()
	time.Sleep(300 * time.Millisecond) // the watch is waiting
	ctx, cancel := callCtx()
	defer cancel()
	deleted := time.Now()
	if err := r.client(admin).DeleteNode(ctx, "a", "a1"); err != nil { // by names
		t.Fatalf("delete node a1: %v", err)
	}
	select {
	case w := <-watched:
		if !slices.Equal(w.DeletedNodes, []string{"a1-id"}) {
			t.Errorf("the cluster's watch answered deleted_nodes %v, want [a1-id]", w.DeletedNodes)
		}
		t.Logf("the cluster's watch answered %s after the delete", time.Since(deleted).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Error("the cluster's watch did not answer within 5 s")
	}
	if got := nodesOfA(); !slices.Equal(got, []string{"a2"}) {
		t.Errorf("after the delete the cluster's nodes are %v, want [a2]", got)
	}
	// The cluster had not learnt yet: its full report still has the node.
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Nodes: both}, nil)
	if got := nodesOfA(); !slices.Equal(got, []string{"a2"}) {
		t.Errorf("after a report of the deleted node the cluster's nodes are %v, want [a2]", got)
	}
	if resp := r.do("DELETE", "/api/clusters/a/nodes/a1", admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("deleting the node again: got %s, want 404", resp)
	}

	r.restart(false)
	admin = r.login("Admin", "nodedel-admin-password").Token
	if got := nodesOfA(); slices.Contains(got, "a1") {
		t.Errorf("after a restart the deleted node is back: %v", got)
	}
	var full wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &full)
	if !slices.Equal(full.DeletedNodes, []string{"a1-id"}) {
		t.Errorf("after a restart the desired set lists deleted_nodes %v, want [a1-id]", full.DeletedNodes)
	}
}
