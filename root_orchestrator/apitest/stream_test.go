package apitest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// watcher collects what a live stream delivers.
type watcher struct {
	mu      sync.Mutex
	batches []api.ChangeBatch
}

func (w *watcher) add(b api.ChangeBatch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batches = append(w.batches, b)
	return nil
}

// has reports whether any batch so far names id (of kind).
func (w *watcher) has(kind, id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.batches {
		for _, c := range b.Changes {
			if c.Kind == kind && c.ID == id {
				return true
			}
		}
	}
	return false
}

func (w *watcher) last() api.ChangeBatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.batches) == 0 {
		return api.ChangeBatch{}
	}
	return w.batches[len(w.batches)-1]
}

// watch follows the stream as the token's user for the test's duration.
func (r *root) watch(t *testing.T, token, after string) *watcher {
	t.Helper()
	w := &watcher{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.client(token).Watch(ctx, after, w.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(300 * time.Millisecond) // connected (the stream starts from now)
	return w
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventStream: the live stream tells each user what changed of their
// own (admins: everything), never of another user's applications; it
// resumes after the id of a batch, and after a restart of the root with a
// reset; bad input and a missing token are refused; streams per user are
// bounded with a clear 429.
func TestEventStream(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=stream-admin-password"})
	admin := r.login("Admin", "stream-admin-password").Token
	alice := r.newUser(admin, "alice")
	bob := r.newUser(admin, "bob")

	wa, wb, wadm := r.watch(t, alice, ""), r.watch(t, bob, ""), r.watch(t, admin, "")
	shop := r.createApp(alice, testSLA("shop"), "shop")
	waitFor(t, "application change for alice", func() bool { return wa.has(api.ChangeApplication, shop.ApplicationID) })
	waitFor(t, "application change for the admin", func() bool { return wadm.has(api.ChangeApplication, shop.ApplicationID) })
	for _, id := range shop.Microservices {
		if !wa.has(api.ChangeService, id) {
			t.Errorf("alice's stream has no change of her service %s", id)
		}
	}
	// Bob's own change reaches him; once it did, alice's had long before.
	var inst api.InstanceAdded
	r.must("POST", "/api/service/"+shop.Microservices[0]+"/instance", alice, nil, &inst)
	key := wire.InstanceKey(shop.Microservices[0], inst.InstanceNumber)
	site := r.createApp(bob, testSLA("site"), "site")
	waitFor(t, "bob's own application change", func() bool { return wb.has(api.ChangeApplication, site.ApplicationID) })
	waitFor(t, "alice's instance event", func() bool { return wa.has(api.ChangeEvent, key) })
	if wb.has(api.ChangeApplication, shop.ApplicationID) || wb.has(api.ChangeService, shop.Microservices[0]) ||
		wb.has(api.ChangeInstance, key) || wb.has(api.ChangeEvent, key) {
		t.Errorf("bob's stream tells of alice's application: %+v", wb.batches)
	}
	if wa.has(api.ChangeApplication, site.ApplicationID) {
		t.Errorf("alice's stream tells of bob's application")
	}

	// Resuming after alice's last batch gives what she missed since.
	from := wa.last().ID
	r.must("DELETE", "/api/application/"+shop.ApplicationID, alice, nil, nil)
	waitFor(t, "the deletion on alice's stream", func() bool { return wa.last().ID != from })
	resumed := r.watch(t, alice, from)
	waitFor(t, "the missed deletion on a resumed stream", func() bool { return resumed.has(api.ChangeApplication, shop.ApplicationID) })
	stale := r.watch(t, alice, "0123456789ab.5")
	waitFor(t, "a reset for another epoch", func() bool { return stale.last().Reset })

	// Refused: no token, a bad resume point.
	hc := r.httpClient()
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", r.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/api/events/stream", "", http.StatusUnauthorized},
		{"/api/events/stream?after=12", alice, http.StatusBadRequest},
		{"/api/events/stream?after=e.x", alice, http.StatusBadRequest},
	} {
		resp := get(tc.path, tc.token)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}

	// At most 8 streams per user (alice holds 3 already); others unaffected.
	var open []*http.Response
	defer func() {
		for _, resp := range open {
			resp.Body.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		resp := get("/api/events/stream", alice)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of alice: %d", i+4, resp.StatusCode)
		}
		open = append(open, resp)
	}
	resp := get("/api/events/stream", alice)
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body[:n]), "at most 8") {
		t.Errorf("9th stream of alice: %d %s, want 429 saying the limit", resp.StatusCode, body[:n])
	}
	if resp := get("/api/events/stream", bob); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's second stream: %d, want 200", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	open[0].Body.Close()
	open = open[1:]
	waitFor(t, "a stream slot after one closed", func() bool {
		resp := get("/api/events/stream", alice)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	for _, resp := range open {
		resp.Body.Close()
	}
	open = nil

	// The root restarts: Watch reconnects, and says to refresh everything.
	r.restart(false)
	waitFor(t, "a reset after the restart", func() bool { return wa.last().Reset })
	again := r.createApp(alice, testSLA("again"), "again")
	waitFor(t, "a change after the restart", func() bool { return wa.has(api.ChangeApplication, again.ApplicationID) })
}
