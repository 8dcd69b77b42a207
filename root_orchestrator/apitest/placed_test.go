package apitest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// placed is a root with one cluster (as thicket-cluster registers and
// syncs) of one node, and an application named app whose service has one
// instance, #0, placed on that cluster.
type placed struct {
	r     *root
	admin string
	reg   wire.ClusterRegisterResponse
	node  wire.NodeInfo
	app   api.Application
	svc   string
}

func placeOne(t *testing.T, app string) placed {
	t.Helper()
	p := placed{r: startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=" + app + "-admin-password"})}
	p.admin = p.r.login("Admin", app+"-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(p.r.DataDir, "cluster-join-token")))
	p.r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge-" + app,
		Location: "lab", Address: "192.0.2.20", Port: 10100}, &p.reg)
	p.node = wire.NodeInfo{ID: "n1", Name: "n1", Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}
	p.sync(nil)
	p.app = p.r.createApp(p.admin, testSLA(app), app)
	p.svc = p.app.Microservices[0]
	p.r.must("POST", "/api/service/"+p.svc+"/instance", p.admin, nil, nil)
	p.r.waitService(p.admin, p.svc, "assigned to the cluster", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == p.reg.ClusterID
	})
	return p
}

// sync has the cluster report its node, instance statuses and events.
func (p placed) sync(st []wire.InstanceStatus, evs ...wire.Event) {
	p.r.must("POST", "/api/cluster/sync", p.reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{p.node},
		Instances: st, Events: evs}, nil)
}
