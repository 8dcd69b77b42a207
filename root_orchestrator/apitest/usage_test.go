package apitest

import (
	"net/http"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestUsage: the root keeps the figures a cluster reports of its running
// instances and active nodes, a sample a minute; unknown ones are 404.
func TestUsage(t *testing.T) {
	p := placeOne(t, "usageapp")
	p.node.CPUPercent, p.node.MemoryPercent = 37.5, 60
	p.sync([]wire.InstanceStatus{{Key: wire.InstanceKey(p.svc, 0), Status: wire.StatusRunning, NodeID: "n1", Node: "n1",
		CPUPercent: 12.5, MemoryMB: 48}})
	type samples struct {
		Step    int `json:"step_s"`
		Samples []struct {
			CPU    float64 `json:"cpu_percent"`
			Memory float64 `json:"memory"`
		} `json:"samples"`
	}
	var in samples
	p.r.must("GET", "/api/service/"+p.svc+"/instance/0/usage", p.admin, nil, &in)
	if in.Step != 60 || len(in.Samples) != 1 || in.Samples[0].CPU != 12.5 || in.Samples[0].Memory != 48 {
		t.Errorf("instance usage: %+v", in)
	}
	var node samples
	p.r.must("GET", "/api/clusters/"+p.reg.ClusterID+"/nodes/n1/usage", p.admin, nil, &node)
	if len(node.Samples) != 1 || node.Samples[0].CPU != 37.5 || node.Samples[0].Memory != 60 {
		t.Errorf("node usage: %+v", node)
	}
	for _, path := range []string{"/api/service/" + p.svc + "/instance/5/usage", "/api/clusters/nope/nodes/n1/usage", "/api/clusters/" + p.reg.ClusterID + "/nodes/nope/usage"} {
		if resp := p.r.do("GET", path, p.admin, nil); resp.Status != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp)
		}
	}
}
