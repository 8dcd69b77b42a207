package scheduler

import (
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// at is a coordinate x ms along a line from the origin.
func at(ms float64) *wire.Coordinate {
	return &wire.Coordinate{Vec: []float64{ms / 1000, 0}}
}

func dnode(name string, coord *wire.Coordinate, location string, virts ...string) Node {
	if len(virts) == 0 {
		virts = []string{"container"}
	}
	return Node{NodeInfo: wire.NodeInfo{ID: "id-" + name, Name: name, Active: true, Virtualizations: virts,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}, Coordinate: coord, Location: location}}
}

func latency(threshold float64, node, cluster, area string) wire.Constraint {
	return wire.Constraint{Type: "latency", Threshold: threshold, Node: node, Cluster: cluster, Area: area}
}

func geoC(location string, km float64) wire.Constraint {
	return wire.Constraint{Type: "geo", Location: location, Threshold: km}
}

// TestDistanceConstraintsNodes: a cluster's scheduler filters its nodes by
// latency and geo constraints and picks the nearest feasible one.
func TestDistanceConstraintsNodes(t *testing.T) {
	const munich, berlin = "48.1374,11.5755", "52.52,13.405"
	nodes := []Node{
		dnode("sensor", at(0), "plant", "wasm"), // the target; runs no containers
		dnode("near", at(10), "48.2,11.6"),
		dnode("mid", at(50), berlin),
		dnode("far", at(150), ""),
		dnode("blind", nil, "plant"),
	}
	tests := []struct {
		name    string
		cons    []wire.Constraint
		want    string // node name, or "" for no fit
		wantErr []string
	}{
		{"within 20 ms of a node", []wire.Constraint{latency(20, "sensor", "", "")}, "near", nil},
		{"within 60 ms: the nearest wins", []wire.Constraint{latency(60, "sensor", "", "")}, "near", nil},
		{"within 5 ms: none", []wire.Constraint{latency(5, "sensor", "", "")}, "",
			[]string{"are more than 5 ms from node sensor (latency constraint 1; nearest 10.0 ms)", "1 has no network coordinate yet (latency constraint 1)", "1 does not run container"}},
		{"a target of another cluster is the root's to check", []wire.Constraint{latency(5, "elsewhere", "", "")}, "blind", nil},
		{"within 20 ms of the site plant: a node there is 0 ms away", []wire.Constraint{latency(20, "", "", "plant")}, "blind", nil},
		{"within 20 ms of a node: the target itself is 0 ms away", []wire.Constraint{latency(20, "blind", "", "")}, "blind", nil},
		{"within 20 ms of this cluster", []wire.Constraint{latency(20, "", "edge", "")}, "blind", nil},
		{"within 50 km of Munich", []wire.Constraint{geoC(munich, 50)}, "near", nil},
		{"within 600 km of Munich: the nearest wins", []wire.Constraint{geoC(munich, 600)}, "near", nil},
		{"within 10 km of Berlin", []wire.Constraint{geoC(berlin, 10)}, "mid", nil},
		{"within 10 km of Hamburg: none", []wire.Constraint{geoC("53.55,10.0", 10)}, "",
			[]string{"are more than 10 km from 53.55,10.0 (geo constraint 1; nearest 254.8 km)", "2 have no location (geo constraint 1)"}},
		{"at the site nowhere: none", []wire.Constraint{geoC("nowhere", 0)}, "", []string{"are not at site nowhere (geo constraint 1)"}},
		{"at the site plant", []wire.Constraint{geoC("plant", 0)}, "blind", nil},
		{"both: near the sensor and in Berlin", []wire.Constraint{latency(60, "sensor", "", ""), geoC(berlin, 10)}, "mid", nil},
		{"both, second named", []wire.Constraint{geoC(munich, 100), latency(5, "sensor", "", "")}, "",
			[]string{"(latency constraint 2; nearest 10.0 ms)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := wire.InstanceSpec{Key: "k", Virtualization: "container", Resources: wire.Resources{MemoryMB: 64}, Constraints: tt.cons}
			p, err := PickNode("edge", nodes, spec)
			if tt.want != "" {
				if err != nil || p.NodeName != tt.want {
					t.Fatalf("placed on %q, %v; want %s", p.NodeName, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("placed on %s; want no fit", p.NodeName)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestDistanceConstraintsClusters: the root checks latency targets in any
// cluster and picks the cluster with the nearest feasible node.
func TestDistanceConstraintsClusters(t *testing.T) {
	clusters := []Cluster{
		{ID: "c1", Name: "factory", Active: true, Nodes: []Node{dnode("cam", at(0), "plant", "wasm"), dnode("f1", at(150), "")}},
		{ID: "c2", Name: "metro", Active: true, Nodes: []Node{dnode("m1", at(10), ""), dnode("m2", at(40), "")}},
		{ID: "c3", Name: "cloud", Active: true, Nodes: []Node{dnode("x1", at(5), ""), dnode("x2", at(3), "")}},
	}
	tests := []struct {
		name        string
		cons        []wire.Constraint
		wantCluster string
		wantNode    string
		wantErr     string
	}{
		{"near the camera", []wire.Constraint{latency(20, "cam", "", "")}, "c3", "id-x2", ""},
		{"near the site plant", []wire.Constraint{latency(20, "", "", "plant")}, "c3", "id-x2", ""},
		{"near the camera, not cloud", []wire.Constraint{latency(20, "cam", "", ""), {Type: "clusters", Allowed: []string{"factory", "metro"}}}, "c2", "id-m1", ""},
		{"a node of a named cluster", []wire.Constraint{latency(20, "m1", "metro", "")}, "c2", "id-m1", ""},
		{"an unknown target", []wire.Constraint{latency(20, "ghost", "", "")}, "", "",
			"cannot be measured against node ghost (latency constraint 1): no such node, or none with a network coordinate yet"},
		{"too far for all", []wire.Constraint{latency(2, "cam", "", "")}, "", "", "5 are more than 2 ms from node cam (latency constraint 1; nearest 3.0 ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := wire.InstanceSpec{Key: "k", Virtualization: "container", Resources: wire.Resources{MemoryMB: 64}, Constraints: tt.cons}
			p, err := PickCluster(clusters, spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("placed %+v, error %v; want %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.ClusterID != tt.wantCluster || p.NodeID != tt.wantNode {
				t.Fatalf("placed %+v, %v; want %s/%s", p, err, tt.wantCluster, tt.wantNode)
			}
		})
	}
}

func TestDistanceConstraintsInvalid(t *testing.T) {
	for _, c := range []wire.Constraint{latency(0, "n", "", ""), latency(5, "", "", ""), geoC("99,1", 5), geoC("1,1", 0), geoC("", 5)} {
		_, err := PickNode("edge", []Node{dnode("n", at(0), "")}, wire.InstanceSpec{Key: "k", Virtualization: "container", Constraints: []wire.Constraint{c}})
		if err == nil || !strings.Contains(err.Error(), "invalid instance spec") {
			t.Errorf("%+v: error %v, want an invalid spec", c, err)
		}
	}
}

// TestLatencyToService: a latency constraint may name another service of
// the same application: the nodes running its instances are the target.
func TestLatencyToService(t *testing.T) {
	db := dnode("db", at(0), "", "wasm")
	db.Services = []string{"shop/db", "other/web"}
	clusters := []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: []Node{db, dnode("n2", at(10), ""), dnode("n3", at(50), "")}}}
	tests := []struct {
		name, app string
		want      string
		wantErr   string
	}{
		{"near the shop's db", "shop", "id-n2", ""},
		{"another application's db is no target", "other", "",
			"cannot be measured against service db's instances (latency constraint 1)"},
	}
	for _, tt := range tests {
		spec := wire.InstanceSpec{Key: "k", ApplicationName: tt.app, Virtualization: "container", Resources: wire.Resources{MemoryMB: 64},
			Constraints: []wire.Constraint{{Type: "latency", Service: "db", Threshold: 20}}}
		p, err := PickCluster(clusters, spec)
		switch {
		case tt.wantErr == "" && (err != nil || p.NodeID != tt.want):
			t.Errorf("%s: placed %+v, %v; want %s", tt.name, p, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: placed %+v, %v; want %q", tt.name, p, err, tt.wantErr)
		}
	}
}
