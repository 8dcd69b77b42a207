package apitest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCordonDrainNode: admins cordon, drain and uncordon a node (cluster
// and node by id or name); users may not (403), unknown ones are 404 and
// change nothing. A waiting watch of the cluster answers at once with the
// node's mode, the root's own scheduler passes a cordoned node over (an
// instance that fits only there waits, saying why), and the mode survives a
// restart of the root.
func TestCordonDrainNode(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "cordon")
	a := g.mustRegister(join, "a", "")
	n1 := wire.NodeInfo{ID: "a1-id", Name: "a1", Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: []wire.NodeInfo{n1}}, nil)
	modeOf := func() string {
		var cls []api.Cluster
		r.must("GET", "/api/clusters", admin, nil, &cls)
		for _, cl := range cls {
			for _, n := range cl.Nodes {
				if n.ID == "a1-id" {
					return n.Mode
				}
			}
		}
		return "?"
	}
	user := r.newUser(admin, "cordoner")
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"as a user", user, "/api/clusters/a/nodes/a1/cordon", http.StatusForbidden},
		{"without a token", "", "/api/clusters/a/nodes/a1/drain", http.StatusUnauthorized},
		{"an unknown cluster", admin, "/api/clusters/nosuch/nodes/a1/cordon", http.StatusNotFound},
		{"an unknown node", admin, "/api/clusters/a/nodes/nosuch/drain", http.StatusNotFound},
		{"an unknown action", admin, "/api/clusters/a/nodes/a1/pause", http.StatusNotFound},
	} {
		if resp := r.do("POST", tc.path, tc.token, nil); resp.Status != tc.want {
			t.Errorf("%s: got %s, want %d", tc.name, resp, tc.want)
		}
	}
	if m := modeOf(); m != "" {
		t.Fatalf("after refused requests the node's mode is %q", m)
	}

	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	watched := make(chan wire.ClusterDesired, 1)
	go func() {
		var w wire.ClusterDesired
		r.must("GET", "/api/cluster/desired?delta=1&wait=30s&epoch="+d.Epoch+"&after="+itoa64(d.Generation), a.Credential, nil, &w)
		watched <- w
	}()
	var msg api.Message
	r.must("POST", "/api/clusters/a/nodes/a1/cordon", admin, nil, &msg)
	if !strings.Contains(msg.Message, "node a1 of cluster a cordoned") {
		t.Errorf("cordon answered %q", msg.Message)
	}
	if w := <-watched; len(w.CordonedNodes) != 1 || w.CordonedNodes[0] != "a1-id" {
		t.Errorf("the watch answered cordoned %v", w.CordonedNodes)
	}
	if m := modeOf(); m != "cordoned" {
		t.Errorf("mode %q, want cordoned", m)
	}

	// The root's scheduler passes it over: the only node is cordoned.
	app := r.createApp(admin, testSLA("cordonapp"), "cordonapp")
	svc := app.Microservices[0]
	r.must("POST", "/api/service/"+svc+"/instance", admin, nil, nil)
	r.waitService(admin, svc, "waiting, because the node is cordoned", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == "" && strings.Contains(s.InstanceList[0].StatusDetail, "is cordoned")
	})

	r.must("POST", "/api/clusters/"+a.ClusterID+"/nodes/a1-id/drain", admin, nil, nil)
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	if len(d.DrainedNodes) != 1 || len(d.CordonedNodes) != 0 {
		t.Errorf("after drain the desired set says cordoned %v drained %v", d.CordonedNodes, d.DrainedNodes)
	}
	r.restart(false)
	admin = r.login("Admin", "cordon-admin-password").Token
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{n1}}, nil)
	if m := modeOf(); m != "drained" {
		t.Errorf("after a restart the mode is %q, want drained", m)
	}
	r.must("POST", "/api/clusters/a/nodes/a1/uncordon", admin, nil, nil)
	if m := modeOf(); m != "" {
		t.Errorf("after uncordon the mode is %q", m)
	}
	r.waitService(admin, svc, "placed once the node takes placements again", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == a.ClusterID
	})
}
