package apitest

import (
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestEventsSurviveRestart: the root keeps the instances' events in its
// store: after a graceful restart, and after a crash a few seconds after
// they came, the API still answers them (issue 23).
func TestEventsSurviveRestart(t *testing.T) {
	p := placeOne(t, "keptev")
	key := wire.InstanceKey(p.svc, 0)
	t0 := time.Now().UTC()
	p.sync(nil, wire.Event{Key: key, Time: t0, Source: "node n1", Message: "started"})
	messages := func() string {
		var got api.Events
		p.r.must("GET", "/api/service/"+p.svc+"/instance/0/events", p.admin, nil, &got)
		var out []string
		for _, ev := range got.Events {
			out = append(out, ev.Message)
		}
		return strings.Join(out, "|")
	}
	want := "requested by Admin|started"
	if got := messages(); got != want {
		t.Fatalf("events before the restart: %q, want %q", got, want)
	}
	p.r.restart(false)
	p.admin = p.r.login("Admin", "keptev-admin-password").Token
	if got := messages(); got != want {
		t.Errorf("after a graceful restart: %q, want %q", got, want)
	}
	p.sync(nil, wire.Event{Key: key, Time: t0.Add(time.Second), Source: "node n1", Message: "exited with code 3"})
	time.Sleep(3 * time.Second) // stored within 2 s
	p.r.restart(true)
	p.admin = p.r.login("Admin", "keptev-admin-password").Token
	if got := messages(); got != want+"|exited with code 3" {
		t.Errorf("after a crash: %q, want %q", got, want+"|exited with code 3")
	}
}
