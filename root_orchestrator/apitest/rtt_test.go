package apitest

import (
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// line is a coordinate ms milliseconds along a line.
func line(ms float64) *wire.Coordinate {
	return &wire.Coordinate{Vec: []float64{ms / 1000, 0}}
}

// TestLatencyAndLocation: coordinates and locations the clusters report
// show on nodes and clusters, GET /api/rtt estimates between any two, and
// latency and geo constraints place instances on the clusters that satisfy
// them, or say which constraint none does.
func TestLatencyAndLocation(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=rtt-admin-password"})
	admin := r.login("Admin", "rtt-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	register := func(name, location string) string {
		var reg wire.ClusterRegisterResponse
		r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: name, Location: location}, &reg)
		return reg.Credential
	}
	near, far := register("near", "48.1374,11.5755"), register("far", "52.52,13.405")
	node := func(name string, c *wire.Coordinate, location string) wire.NodeInfo {
		return wire.NodeInfo{ID: "id-" + name, Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}, Coordinate: c, Location: location}
	}
	sync := func(cred string, s wire.ClusterSync) {
		s.Version = wire.Version
		r.must("POST", "/api/cluster/sync", cred, s, nil)
	}
	cam := node("cam", line(0), "plant")
	cam.Virtualizations = []string{"wasm"} // a target that takes no containers
	sync(near, wire.ClusterSync{Nodes: []wire.NodeInfo{cam, node("n1", line(10), ""),
		node("bad", &wire.Coordinate{Vec: make([]float64, 9)}, "not a location!")}, Coordinate: line(5)})
	sync(far, wire.ClusterSync{Nodes: []wire.NodeInfo{node("f1", line(150), ""), node("blind", nil, "")}, Coordinate: line(150)})

	var cls []api.Cluster
	r.must("GET", "/api/clusters", admin, nil, &cls)
	nodes := map[string]api.Node{}
	for _, c := range cls {
		if c.ClusterName == "near" && (c.Coordinate == nil || c.Coordinate.Vec[0] != 0.005) {
			t.Errorf("cluster near's coordinate %+v, want its centroid", c.Coordinate)
		}
		for _, n := range c.Nodes {
			nodes[n.Name] = n
		}
	}
	if n := nodes["cam"]; n.Location != "plant" || n.Coordinate == nil {
		t.Errorf("node cam: location %q, coordinate %+v", n.Location, n.Coordinate)
	}
	if n := nodes["n1"]; n.Location != "48.1374,11.5755" {
		t.Errorf("node n1 without a location: %q, want its cluster's", n.Location)
	}
	if n := nodes["bad"]; n.Coordinate != nil || n.Location != "48.1374,11.5755" {
		t.Errorf("node bad: an out-of-bounds coordinate and location were taken: %+v, %q", n.Coordinate, n.Location)
	}

	ctx, cancel := callCtx()
	defer cancel()
	est, err := r.client(admin).RTT(ctx, "node:n1", "node:far/f1")
	if err != nil || math.Abs(est.RTTMS-140) > 0.01 || est.From != "node:near/n1" || est.To != "node:far/f1" {
		t.Errorf("RTT n1 → f1 = %+v, %v; want 140 ms", est, err)
	}
	est, err = r.client(admin).RTT(ctx, "cluster:near", "cluster:far")
	if err != nil || math.Abs(est.RTTMS-145) > 0.01 || est.DistanceKM == nil || math.Abs(*est.DistanceKM-504) > 2 {
		t.Errorf("RTT near → far = %+v, %v; want 145 ms and about 504 km", est, err)
	}
	for _, tc := range []struct {
		query  string
		status int
		text   string
	}{
		{"from=n1&to=node:f1", http.StatusBadRequest, "give node:<name>"},
		{"from=node:n1", http.StatusBadRequest, "give node:<name>"},
		{"from=node:ghost&to=node:f1", http.StatusNotFound, "no node ghost"},
		{"from=cluster:ghost&to=node:f1", http.StatusNotFound, "no cluster ghost"},
		{"from=node:blind&to=node:f1", http.StatusConflict, "node:far/blind has no network coordinate yet"},
	} {
		resp := r.do("GET", "/api/rtt?"+tc.query, admin, nil)
		if resp.Status != tc.status || !strings.Contains(resp.errorBody(t).Error, tc.text) {
			t.Errorf("GET /api/rtt?%s = %s, want %d with %q", tc.query, resp, tc.status, tc.text)
		}
	}

	// Placement: each service has one constraint and one instance.
	place := func(name string, constraint map[string]any) api.Instance {
		t.Helper()
		sla := testSLA("rtt" + name)
		ms := sla["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
		svc := ms[0].(map[string]any)
		svc["constraints"] = []any{constraint}
		svc["port"] = ""
		sla["applications"].([]any)[0].(map[string]any)["microservices"] = ms[:1]
		app := r.createApp(admin, sla, "rtt"+name)
		var svcs []api.Service
		r.must("GET", "/api/services/"+app.ApplicationID, admin, nil, &svcs)
		r.must("POST", "/api/service/"+svcs[0].MicroserviceID+"/instance", admin, nil, nil)
		s := r.waitService(admin, svcs[0].MicroserviceID, "judged", func(s api.Service) bool {
			return len(s.InstanceList) == 1 && (s.InstanceList[0].ClusterID != "" || s.InstanceList[0].StatusDetail != "")
		})
		return s.InstanceList[0]
	}
	clusterName := map[string]string{}
	for _, c := range cls {
		clusterName[c.ID] = c.ClusterName
	}
	for _, tc := range []struct {
		name       string
		constraint map[string]any
		cluster    string
		detail     string
	}{
		{"nearf1", map[string]any{"type": "latency", "node": "f1", "threshold": 20}, "far", ""},
		{"nearplant", map[string]any{"type": "latency", "area": "plant", "threshold": "20", "rigidness": 0.99, "convergence_time": 300}, "near", ""},
		{"inberlin", map[string]any{"type": "geo", "location": "52.5,13.4", "threshold": 50}, "far", ""},
		{"nowhere", map[string]any{"type": "latency", "node": "cam", "threshold": 1, "cluster": "far"}, "",
			"cannot be measured against node cam of cluster far (latency constraint 1)"},
		{"toofar", map[string]any{"type": "latency", "node": "cam", "threshold": 5}, "",
			"more than 5 ms from node cam (latency constraint 1; nearest 10.0 ms)"},
	} {
		in := place(tc.name, tc.constraint)
		if clusterName[in.ClusterID] != tc.cluster || !strings.Contains(in.StatusDetail, tc.detail) {
			t.Errorf("%s: instance on cluster %q (%s: %s), want %q with %q", tc.name, clusterName[in.ClusterID], in.Status, in.StatusDetail, tc.cluster, tc.detail)
		}
	}
	// Connectivity: web must be within 20 ms of the same application's db,
	// which is pinned to f1 (cluster far).
	conn := testSLA("rttconn")
	svcs := conn["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
	for _, s := range svcs {
		m := s.(map[string]any)
		m["port"] = ""
		switch m["microservice_name"] {
		case "db":
			m["constraints"] = []any{map[string]any{"type": "direct", "cluster": "far", "node": "f1"}}
		case "web":
			m["constraints"] = []any{map[string]any{"type": "latency", "service": "db", "threshold": 20}}
		}
	}
	connApp := r.createApp(admin, conn, "rttconn")
	var connSvcs []api.Service
	r.must("GET", "/api/services/"+connApp.ApplicationID, admin, nil, &connSvcs)
	byName := map[string]string{}
	for _, s := range connSvcs {
		byName[s.MicroserviceName] = s.MicroserviceID
	}
	scale := func(name string) api.Instance {
		t.Helper()
		r.must("POST", "/api/service/"+byName[name]+"/instance", admin, nil, nil)
		return r.waitService(admin, byName[name], "judged", func(s api.Service) bool {
			return len(s.InstanceList) == 1 && (s.InstanceList[0].ClusterID != "" || s.InstanceList[0].StatusDetail != "")
		}).InstanceList[0]
	}
	if in := scale("web"); in.ClusterID != "" || !strings.Contains(in.StatusDetail, "cannot be measured against service db's instances (latency constraint 1)") {
		t.Errorf("web before db runs anywhere: %s on %q: %s", in.Status, clusterName[in.ClusterID], in.StatusDetail)
	}
	if in := scale("db"); clusterName[in.ClusterID] != "far" {
		t.Fatalf("db on %q (%s), want far", clusterName[in.ClusterID], in.StatusDetail)
	}
	r.must("POST", "/api/service/"+byName["web"]+"/instance", admin, nil, nil)
	web := r.waitService(admin, byName["web"], "placed", func(s api.Service) bool {
		return len(s.InstanceList) == 2 && s.InstanceList[1].ClusterID != ""
	}).InstanceList[1]
	if clusterName[web.ClusterID] != "far" {
		t.Errorf("web near db placed on %q, want far", clusterName[web.ClusterID])
	}

	if resp := r.do("POST", "/api/application/", admin, func() map[string]any {
		s := testSLA("rttbad")
		s["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)["constraints"] = []any{map[string]any{"type": "geo", "location": "95,1", "threshold": 5}}
		return s
	}()); resp.Status != http.StatusBadRequest || !strings.Contains(resp.errorBody(t).Field, "constraints[0].location") {
		t.Errorf("SLA with a bad geo location: %s, want 400 on its location", resp)
	}
}
