package apitest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestTopologyForAdminsOnly: a non-admin sees each cluster's name,
// location, state and aggregate capacity, but neither its address nor its
// nodes (their names and addresses); the admin sees everything. The fields
// stay in the document, empty, for clients written for the reference.
func TestTopologyForAdminsOnly(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=topology-admin-password"})
	admin := r.login("Admin", "topology-admin-password").Token
	alice := r.newUser(admin, "alice")
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge-a",
		Location: "site-a", Address: "192.0.2.10", Port: 10100}, &reg)
	node := wire.NodeInfo{ID: "secret-node-7", Name: "secret-node-7", Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 2048},
		Network:  &wire.NodeNetwork{NodeID: "secret-node-7", Subnet: "10.64.0.0/24", VTEPMAC: "02:00:00:00:00:07", PublicIP: "198.51.100.7", PublicPort: 4789}}
	r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{node}}, nil)

	for _, path := range []string{"/api/clusters", "/api/clusters/active"} {
		var asAdmin, asUser []api.Cluster
		r.must("GET", path, admin, nil, &asAdmin)
		if len(asAdmin) != 1 || len(asAdmin[0].Nodes) != 1 || asAdmin[0].Nodes[0].Name != "secret-node-7" || asAdmin[0].IP != "192.0.2.10" {
			t.Fatalf("GET %s as admin: %+v", path, asAdmin)
		}
		resp := r.do("GET", path, alice, nil)
		if resp.Status != http.StatusOK {
			t.Fatalf("GET %s as user: %s", path, resp)
		}
		for _, leak := range []string{"secret-node-7", "192.0.2.10", "198.51.100.7"} {
			if strings.Contains(string(resp.Body), leak) {
				t.Errorf("GET %s as user shows %s: %s", path, leak, resp.Body)
			}
		}
		for _, field := range []string{`"nodes":[]`, `"ip":""`, `"port":0`} {
			if !strings.Contains(string(resp.Body), field) {
				t.Errorf("GET %s as user lacks %s: %s", path, field, resp.Body)
			}
		}
		r.must("GET", path, alice, nil, &asUser)
		if len(asUser) != 1 {
			t.Fatalf("GET %s as user: %+v", path, asUser)
		}
		u, a := asUser[0], asAdmin[0]
		if u.ClusterName != a.ClusterName || u.ClusterLocation != a.ClusterLocation || u.ActiveNodes != 1 ||
			u.TotalCPUCores != a.TotalCPUCores || u.MemoryInMB != a.MemoryInMB || !u.Active {
			t.Errorf("GET %s as user lost the aggregate: %+v, admin sees %+v", path, u, a)
		}
	}
}

// TestMetricsNeedToken: /metrics answers 401 without the metrics token from
// the data dir (file mode 0600), also to an admin's access token, and
// serves the metrics with it.
func TestMetricsNeedToken(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=metrics-admin-password"})
	admin := r.login("Admin", "metrics-admin-password").Token
	file := filepath.Join(r.DataDir, "metrics-token")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("metrics token file: %v %v, want mode 0600", fi, err)
	}
	tok := strings.TrimSpace(readFile(t, file))
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"admin access token", admin, http.StatusUnauthorized},
		{"wrong token", tok + "x", http.StatusUnauthorized},
		{"metrics token", tok, http.StatusOK},
	} {
		resp := r.do("GET", "/metrics", tc.token, nil)
		if resp.Status != tc.status || (tc.status == http.StatusOK) != strings.Contains(string(resp.Body), "go_goroutines") {
			t.Errorf("%s: GET /metrics = %s", tc.name, resp)
		}
	}
}
