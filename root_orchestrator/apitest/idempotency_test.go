package apitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// keyed sends a request with an Idempotency-Key.
func (r *root) keyed(key, method, path, token string, body any) response {
	r.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := r.client(token).Raw(api.WithIdempotencyKey(ctx, key), method, path, body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return response{Status: resp.Status, Body: resp.Body, Header: resp.Header}
}

// TestIdempotencyKeys: a create repeated with the same Idempotency-Key
// creates once and answers the same, also after a restart; the key is
// per user; another request under a used key is 422; a failed request
// leaves its key free; a malformed key is 400; an answer sent survives a
// crash right after it, and so does what it created.
func TestIdempotencyKeys(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice, bob := r.newUser(admin, "alice"), r.newUser(admin, "bob")
	app := r.createApp(alice, testSLA("idem"), "idem")
	bobApp := r.createApp(bob, testSLA("idem"), "idem")
	svc := app.Microservices[0]
	instances := func(token, id string) int {
		var s api.Service
		r.must("GET", "/api/service/"+id, token, nil, &s)
		return len(s.InstanceList)
	}

	first := r.keyed("retry-1", "POST", "/api/service/"+svc+"/instance", alice, nil)
	if first.Status != http.StatusOK || first.Header.Get(api.HeaderIdempotentReplayed) != "" {
		t.Fatalf("first: %s (replayed %q)", first, first.Header.Get(api.HeaderIdempotentReplayed))
	}
	for i := range 2 {
		again := r.keyed("retry-1", "POST", "/api/service/"+svc+"/instance", alice, nil)
		if again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) || again.Header.Get(api.HeaderIdempotentReplayed) != "true" {
			t.Errorf("repeat %d: %s (replayed %q), want the first answer %s", i, again, again.Header.Get(api.HeaderIdempotentReplayed), first)
		}
	}
	if n := instances(alice, svc); n != 1 {
		t.Errorf("three posts with one key made %d instances, want 1", n)
	}

	// Another request under the same key: 422, and nothing created.
	other := r.keyed("retry-1", "POST", "/api/service/"+app.Microservices[1]+"/instance", alice, nil)
	if other.Status != http.StatusUnprocessableEntity || other.errorBody(t).Field != api.HeaderIdempotencyKey {
		t.Errorf("same key, other request: %s, want 422", other)
	}
	if n := instances(alice, app.Microservices[1]); n != 0 {
		t.Errorf("the refused request made %d instances", n)
	}
	// Keys are per user: bob's "retry-1" is his own.
	if resp := r.keyed("retry-1", "POST", "/api/service/"+bobApp.Microservices[0]+"/instance", bob, nil); resp.Status != http.StatusOK ||
		resp.Header.Get(api.HeaderIdempotentReplayed) != "" {
		t.Errorf("bob's first use of the key: %s", resp)
	}

	// A failed request does not keep its key.
	if resp := r.keyed("retry-2", "POST", "/api/service/nosuchservice/instance", alice, nil); resp.Status != http.StatusNotFound {
		t.Errorf("unknown service: %s", resp)
	}
	if resp := r.keyed("retry-2", "POST", "/api/service/"+app.Microservices[1]+"/instance", alice, nil); resp.Status != http.StatusOK {
		t.Errorf("a key whose request failed, used again: %s", resp)
	}

	// Creating an application: the repeat answers as the first did (not
	// 409 for the name now taken).
	body := testSLA("idem2")
	a1 := r.keyed("app-1", "POST", "/api/application/", alice, body)
	a2 := r.keyed("app-1", "POST", "/api/application/", alice, body)
	if a1.Status != http.StatusOK || a2.Status != http.StatusOK || !bytes.Equal(a1.Body, a2.Body) {
		t.Errorf("repeated application create: %s then %s", a1, a2)
	}

	for _, bad := range []string{strings.Repeat("k", 256), "tab\there", "ü"} {
		if resp := r.keyed(bad, "POST", "/api/service/"+svc+"/instance", alice, nil); resp.Status != http.StatusBadRequest {
			t.Errorf("key %q: %s, want 400", bad, resp)
		}
	}
	if n := instances(alice, svc); n != 1 {
		t.Errorf("refused requests changed the instances: %d", n)
	}

	// Kept in the store: a restarted root still knows the key.
	r.restart(false)
	alice = r.login("alice", "pw-alice-secret").Token
	if again := r.keyed("retry-1", "POST", "/api/service/"+svc+"/instance", alice, nil); again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("after a restart: %s, want the first answer", again)
	}
	if n := instances(alice, svc); n != 1 {
		t.Errorf("after a restart and a repeat: %d instances, want 1", n)
	}

	// An answer is sent once the instance and the kept answer are both
	// stored: a crash (SIGKILL) right after it loses neither.
	crashed := r.keyed("crash-1", "POST", "/api/service/"+svc+"/instance", alice, nil)
	if crashed.Status != http.StatusOK {
		t.Fatalf("before the crash: %s", crashed)
	}
	r.restart(true)
	alice = r.login("alice", "pw-alice-secret").Token
	if again := r.keyed("crash-1", "POST", "/api/service/"+svc+"/instance", alice, nil); again.Status != http.StatusOK ||
		!bytes.Equal(again.Body, crashed.Body) || again.Header.Get(api.HeaderIdempotentReplayed) != "true" {
		t.Errorf("after a crash: %s (replayed %q), want the answer before it %s", again, again.Header.Get(api.HeaderIdempotentReplayed), crashed)
	}
	if n := instances(alice, svc); n != 2 {
		t.Errorf("after a crash and a repeat: %d instances, want 2", n)
	}
}

// losingTransport delivers every request and loses the first answer of
// each creating one, as a network that drops a response would.
type losingTransport struct {
	// next delivers the requests (trusting the root's CA).
	next http.RoundTripper
	lost atomic.Int32
	keys []string
}

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/instance") {
		l.keys = append(l.keys, req.Header.Get(api.HeaderIdempotencyKey))
		if l.lost.Add(1) == 1 {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil, errors.New("connection reset (test)")
		}
	}
	return resp, err
}

// TestClientRetriesCreatesWithOneKey: the Go client sends a key with a
// creating call and retries with the same key when the answer is lost:
// one instance, not two.
func TestClientRetriesCreatesWithOneKey(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")
	app := r.createApp(alice, testSLA("lossy"), "lossy")
	lt := &losingTransport{next: r.started.HTTPClient().Transport}
	c := api.NewClient(api.Config{Address: r.URL, HTTPClient: &http.Client{Transport: lt}}).WithToken(alice)
	n, err := c.AddInstance(context.Background(), app.Microservices[0])
	if err != nil {
		t.Fatalf("AddInstance over a lossy network: %v", err)
	}
	if len(lt.keys) != 2 || lt.keys[0] == "" || lt.keys[0] != lt.keys[1] {
		t.Errorf("keys sent: %q, want one key twice", lt.keys)
	}
	var s api.Service
	r.must("GET", "/api/service/"+app.Microservices[0], alice, nil, &s)
	if len(s.InstanceList) != 1 || s.InstanceList[0].InstanceNumber != n {
		t.Errorf("instances after a retried add: %+v (answered number %d)", s.InstanceList, n)
	}
}
