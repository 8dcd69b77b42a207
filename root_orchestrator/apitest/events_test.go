package apitest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestInstanceEvents: the root keeps what a cluster tells of its own
// instances (naming the cluster, and the node through it), adds its own
// (the request), ignores what a cluster tells of instances that are not
// its own, and answers them oldest first (issue 23, item 1).
func TestInstanceEvents(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=events-admin-password"})
	admin := r.login("Admin", "events-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge-e",
		Location: "lab", Address: "192.0.2.20", Port: 10100}, &reg)
	node := wire.NodeInfo{ID: "n1", Name: "n1", Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}
	sync := func(evs ...wire.Event) {
		r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{node}, Events: evs}, nil)
	}
	sync()
	app := r.createApp(admin, testSLA("evapp"), "evapp")
	svc := app.Microservices[0]
	r.must("POST", "/api/service/"+svc+"/instance", admin, nil, nil)
	r.waitService(admin, svc, "assigned to the cluster", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == reg.ClusterID
	})
	key := wire.InstanceKey(svc, 0)
	t0 := time.Now().UTC()
	sync(
		wire.Event{Key: key, Time: t0.Add(2 * time.Second), Source: "node n1", Message: "started"},
		wire.Event{Key: key, Time: t0.Add(time.Second), Source: "cluster", Message: "placed on node n1"},
		wire.Event{Key: "000000000000000000000000.0", Time: t0, Source: "cluster", Message: "not its instance"},
	)
	var got api.Events
	r.must("GET", "/api/service/"+svc+"/instance/0/events", admin, nil, &got)
	var lines []string
	for _, ev := range got.Events {
		lines = append(lines, ev.Source+": "+ev.Message)
	}
	want := []string{"root: requested by Admin", "cluster edge-e: placed on node n1", "node n1 (cluster edge-e): started"}
	if got.InstanceNumber != 0 || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("events: %q, want %q", lines, want)
	}
	if resp := r.do("GET", "/api/service/"+svc+"/instance/7/events", admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("events of a missing instance: %s", resp)
	}
	if resp := r.do("GET", "/api/service/"+svc+"/instance/x/events", admin, nil); resp.Status != http.StatusBadRequest {
		t.Errorf("events of instance x: %s", resp)
	}
}
