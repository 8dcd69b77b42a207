package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// liveOpen waits until the page's live stream is open.
func liveOpen(b *Browser) {
	b.WaitJS("the live stream", `document.documentElement.dataset.live === "open"`)
}

// TestLiveAdminPages: the Users and Join tokens pages follow the live
// stream instead of polling: no list fetch while nothing changes, one per
// change made elsewhere (through the API); a token that expires is shown
// expired without a change on the stream. A user's dashboard gets none of
// these changes.
func TestLiveAdminPages(t *testing.T) {
	s := startStack(t)
	var alice struct{ Token string }
	if code := s.api("POST", "/api/users/", api.NewUser{Username: "alice", Password: "alice-password", Role: api.RoleUser}, nil); code != http.StatusOK {
		t.Fatalf("create alice: %d", code)
	}
	if code := s.api("POST", "/api/auth/login", map[string]string{"username": "alice", "password": "alice-password"}, &alice); code != http.StatusOK {
		t.Fatalf("alice's login: %d", code)
	}
	// Alice's dashboard records every batch of changes it gets.
	ub := newBrowser(t, s, desktopW, desktopH)
	ub.Login("alice", "alice-password")
	liveOpen(ub)
	if _, err := ub.Eval(`(window.batches = [], import("./js/live.js").then((m) => m.onChange((b) => window.batches.push(b)))), true`); err != nil {
		t.Fatal(err)
	}
	ub.WaitJS("the recorder", `Array.isArray(window.batches)`)

	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	c := countFetches(t, b)
	liveOpen(b)

	const users = "/api/users"
	b.Click(`.nav a[data-nav="users"]`)
	b.WaitText("main .table", "Admin")
	c.quiet(users, "users page")
	c.change(users, "new user", func() {
		s.api("POST", "/api/users/", api.NewUser{Username: "carol", Password: "carol-password"}, nil)
	}, func() { b.WaitText("main .table", "carol") })
	c.change(users, "quota", func() {
		s.api("PUT", "/api/users/carol/quota", api.Quota{Instances: 7}, nil)
	}, func() { b.WaitText("main .table", "7 instances") })
	c.change(users, "role", func() {
		s.api("PUT", "/api/user/carol", api.UserUpdate{Role: api.RoleAdmin}, nil)
	}, func() {
		b.WaitJS("carol an admin", `[...document.querySelectorAll("main .table tr")].some((r) => r.textContent.includes("carol") && r.textContent.includes("admin"))`)
	})
	c.change(users, "deleted user", func() { s.api("DELETE", "/api/user/carol", nil, nil) }, func() { b.WaitGone("main .table", "carol") })
	c.quiet(users, "users page after the changes")

	const tokens = "/api/clusters/tokens"
	b.Click(`.nav a[data-nav="tokens"]`)
	b.WaitText("main .table", "default")
	c.quiet(tokens, "join tokens page")
	var tok struct{ ID, Token string }
	c.change(tokens, "new token", func() {
		s.api("POST", tokens, map[string]any{"name": "site-munich"}, &tok)
	}, func() { b.WaitText("main .table", "site-munich") })
	c.change(tokens, "revoked token", func() { s.api("DELETE", tokens+"/"+tok.ID, nil, nil) }, func() { b.WaitGone("main .table", "site-munich") })
	c.quiet(tokens, "join tokens page after the changes")
	// A token's expiry is no change on the stream: the page refreshes then.
	s.api("POST", tokens, map[string]any{"name": "short-lived", "expires_in": "4s"}, nil)
	b.WaitText("main .table", "short-lived")
	b.WaitJS("the short-lived token shown expired", `[...document.querySelectorAll("main .table tr")].some((r) => r.textContent.includes("short-lived") && r.querySelector('[data-state="expired"]'))`)
	b.Screenshot("tokens")

	// Alice's own change reaches her dashboard; by then the admin's would
	// have, had her stream carried them.
	s.token = alice.Token
	s.deployNamed("aliceapp")
	ub.WaitText("main", "aliceapp")
	var got []struct {
		Changes []struct{ Kind, ID string }
	}
	ub.EvalInto(`window.batches`, &got)
	seen := map[string]bool{}
	for _, batch := range got {
		for _, ch := range batch.Changes {
			seen[ch.Kind] = true
		}
	}
	if !seen[api.ChangeApplication] {
		t.Errorf("alice's dashboard recorded no change of her own application: %+v", got)
	}
	if seen[api.ChangeUser] || seen[api.ChangeJoinToken] {
		t.Errorf("alice's dashboard got changes of users or join tokens: %+v", got)
	}
}

// syncer is a cluster that reports its one instance every second, as
// thicket-cluster does, so that the root never finds it lost; the test
// changes what it reports.
type syncer struct {
	mu   sync.Mutex
	node wire.NodeInfo
	st   wire.InstanceStatus
	evs  []wire.Event
}

func (y *syncer) set(fn func(st *wire.InstanceStatus)) {
	y.mu.Lock()
	defer y.mu.Unlock()
	fn(&y.st)
}

func (y *syncer) event(ev wire.Event) {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.evs = append(y.evs, ev)
}

func (s *stack) startSyncer(t *testing.T, reg wire.ClusterRegisterResponse, y *syncer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	client := s.root.API(api.Config{}).WithToken(reg.Credential)
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			y.mu.Lock()
			sync := wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{y.node}, Instances: []wire.InstanceStatus{y.st}, Events: y.evs}
			y.evs = nil
			y.mu.Unlock()
			if err := client.Do(ctx, "POST", "/api/cluster/sync", sync, nil); err != nil && ctx.Err() == nil {
				t.Logf("sync: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestLiveDrawers: the log and events drawers follow the live stream
// instead of polling: no fetch while nothing changes, one or two per
// change of the instance (new log lines, new events, usage).
func TestLiveDrawers(t *testing.T) {
	s := startStack(t)
	node := workerNode("n1")
	reg := s.registerCluster("edge", node)
	a, svc := s.placedNginx(reg.ClusterID, 1)
	key := wire.InstanceKey(svc, 0)
	t0 := time.Now().UTC()
	log := wire.AppendLogRecord(nil, t0, wire.StreamStdout, false, []byte("first line"))
	y := &syncer{node: node, st: wire.InstanceStatus{Key: key, Status: wire.StatusRunning, NodeID: node.ID, Node: node.Name, Logs: string(log), CPUPercent: 10, MemoryMB: 40}}
	s.startSyncer(t, reg, y)

	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	c := countFetches(t, b)
	liveOpen(b)
	b.Open("#/apps/" + a.ID)
	b.WaitText(`.service tr[data-row="0"]`, "RUNNING")

	logs := fmt.Sprintf("/api/service/%s/instance/0/logs", svc)
	b.Click(`[data-action="logs"]`)
	b.WaitText("#log-text", "first line")
	c.quiet(logs, "log drawer")
	for i, line := range []string{"second line", "third line"} {
		c.change(logs, fmt.Sprintf("log line %d", i+2), func() {
			y.set(func(st *wire.InstanceStatus) {
				st.Logs = string(wire.AppendLogRecord([]byte(st.Logs), time.Now().UTC(), wire.StreamStdout, false, []byte(line)))
			})
		}, func() { b.WaitText("#log-text", line) })
	}
	c.quiet(logs, "log drawer after the changes")
	b.Screenshot("logs")
	b.Click(`[aria-label="Close logs"]`)
	b.WaitJS("the log drawer closed", `!document.querySelector("dialog.drawer")`)

	events := fmt.Sprintf("/api/service/%s/instance/0/events", svc)
	b.Click(`[data-action="events"]`)
	b.Visible("#event-list")
	b.WaitJS("the events loaded", `document.querySelector("#instance-usage [data-graph]")`)
	c.quiet(events, "events drawer")
	c.change(events, "new event", func() {
		y.event(wire.Event{Key: key, Time: time.Now().UTC(), Source: "node n1", Message: "health check failed twice"})
	}, func() { b.WaitText("#event-list", "health check failed twice") })
	// Usage is refreshed too, less eagerly (at most every 5 s).
	y.set(func(st *wire.InstanceStatus) { st.CPUPercent = 55 })
	b.WaitText(`#instance-usage [data-graph="CPU"]`, "55 %")
	c.quiet(events, "events drawer after the changes")
	b.Screenshot("events")
}
