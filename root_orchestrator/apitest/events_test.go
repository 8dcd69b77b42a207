package apitest

import (
	"net/http"
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
	p := placeOne(t, "evapp")
	r, admin, svc := p.r, p.admin, p.svc
	sync := func(evs ...wire.Event) { p.sync(nil, evs...) }
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
	want := []string{"root: requested by Admin", "cluster edge-evapp: placed on node n1", "node n1 (cluster edge-evapp): started"}
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
