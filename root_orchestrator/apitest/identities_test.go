package apitest

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// registrar registers clusters with the root's cluster protocol.
type registrar struct {
	t *testing.T
	r *root
}

// rootForClusters starts a root and returns it, an admin's token, the
// first start's join token and a registrar.
func rootForClusters(t *testing.T, name string) (*root, string, string, registrar) {
	t.Helper()
	pw := name + "-admin-password"
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=" + pw})
	return r, r.login("Admin", pw).Token, strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token"))), registrar{t, r}
}

func (g registrar) register(token, name, credential string) (wire.ClusterRegisterResponse, response) {
	g.t.Helper()
	resp := g.r.do("POST", "/api/cluster/register", token, wire.ClusterRegisterRequest{Version: wire.Version, Name: name, Credential: credential})
	var reg wire.ClusterRegisterResponse
	if resp.Status == http.StatusOK {
		if err := json.Unmarshal(resp.Body, &reg); err != nil {
			g.t.Fatalf("register %s: %v", name, err)
		}
	}
	return reg, resp
}

func (g registrar) mustRegister(token, name, credential string) wire.ClusterRegisterResponse {
	g.t.Helper()
	reg, resp := g.register(token, name, credential)
	if resp.Status != http.StatusOK {
		g.t.Fatalf("register %s: want 200, got %s", name, resp)
	}
	return reg
}

// refused checks that a registration is refused with status and an error
// saying want.
func (g registrar) refused(token, name, credential string, status int, want string) {
	g.t.Helper()
	_, resp := g.register(token, name, credential)
	if resp.Status != status || !strings.Contains(resp.errorBody(g.t).Error, want) {
		g.t.Errorf("register %s: want %d saying %q, got %s", name, status, want, resp)
	}
}

func (g registrar) syncStatus(cred string) int {
	g.t.Helper()
	return g.r.do("POST", "/api/cluster/sync", cred, wire.ClusterSync{Version: wire.Version, Delta: true}).Status
}

func tokenByID(t *testing.T, r *root, admin, id string) api.JoinToken {
	t.Helper()
	var toks []api.JoinToken
	r.must("GET", "/api/clusters/tokens", admin, nil, &toks)
	for _, tk := range toks {
		if tk.ID == id {
			return tk
		}
	}
	t.Fatalf("no join token %s in %+v", id, toks)
	return api.JoinToken{}
}

// TestJoinTokens: tokens expire (24 h unless asked), can be single-use and
// scoped to a cluster name, are listed with their state and stop working
// as soon as they are revoked, expired or spent; bad requests change
// nothing.
func TestJoinTokens(t *testing.T) {
	r, admin, _, g := rootForClusters(t, "tokens")
	pin, err := r.started.Pin()
	if err != nil {
		t.Fatal(err)
	}
	create := func(req api.JoinTokenRequest) api.NewJoinToken {
		t.Helper()
		var nt api.NewJoinToken
		r.must("POST", "/api/clusters/tokens", admin, req, &nt)
		return nt
	}

	// The first start's token, in the data dir, never expires (the quick
	// start's attach commands read it); it is listed as such.
	var toks []api.JoinToken
	r.must("GET", "/api/clusters/tokens", admin, nil, &toks)
	if len(toks) != 1 || toks[0].Name != "default" || toks[0].ExpiresAt != nil || toks[0].State != api.TokenActive || toks[0].SingleUse {
		t.Fatalf("tokens at first start: %+v", toks)
	}

	// Default: 24 h, multi-use, any name.
	before := time.Now()
	plain := create(api.JoinTokenRequest{Name: "plain"})
	if plain.ExpiresAt == nil || plain.ExpiresAt.Sub(before) < 24*time.Hour-time.Minute || plain.ExpiresAt.Sub(before) > 24*time.Hour+time.Minute ||
		plain.State != api.TokenActive || !strings.HasPrefix(plain.Token, "thk1"+strings.TrimPrefix(pin, "sha256:")+"::thj_") {
		t.Errorf("a token made with defaults: %+v", plain)
	}
	g.mustRegister(plain.Token, "p1", "")
	// The secret alone is the token too (the pin is the cluster's to check).
	_, secret, _ := strings.Cut(plain.Token, "::")
	g.mustRegister(secret, "p2", "")
	if never := create(api.JoinTokenRequest{ExpiresIn: "never"}); never.ExpiresAt != nil {
		t.Errorf(`expires_in "never": expires at %v`, never.ExpiresAt)
	}

	// Bad requests: 400 naming the field, no token made.
	r.must("GET", "/api/clusters/tokens", admin, nil, &toks)
	n := len(toks)
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"expires_in": "soon"}, "expires_in"},
		{map[string]any{"expires_in": "0s"}, "expires_in"},
		{map[string]any{"expires_in": "-1h"}, "expires_in"},
		{map[string]any{"expires_in": "10000h"}, "expires_in"},
		{map[string]any{"cluster_name": "no spaces"}, "cluster_name"},
		{map[string]any{"single_use": "yes"}, "single_use"},
	} {
		resp := r.do("POST", "/api/clusters/tokens", admin, tc.body)
		if resp.Status != http.StatusBadRequest || resp.errorBody(t).Field != tc.field {
			t.Errorf("create %v: want 400 on %s, got %s", tc.body, tc.field, resp)
		}
	}
	user := r.newUser(admin, "tokenuser")
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/clusters/tokens"}, {"POST", "/api/clusters/tokens"}, {"DELETE", "/api/clusters/tokens/" + plain.ID},
	} {
		if resp := r.do(req.method, req.path, user, nil); resp.Status != http.StatusForbidden {
			t.Errorf("%s %s as a user: want 403, got %s", req.method, req.path, resp)
		}
	}
	r.must("GET", "/api/clusters/tokens", admin, nil, &toks)
	if len(toks) != n {
		t.Errorf("refused requests made tokens: %d, want %d", len(toks), n)
	}

	// Expiry: works until it expires, then is refused and listed expired.
	short := create(api.JoinTokenRequest{Name: "short", ExpiresIn: "2s"})
	g.mustRegister(short.Token, "s1", "")
	time.Sleep(time.Until(*short.ExpiresAt) + 100*time.Millisecond)
	g.refused(short.Token, "s2", "", http.StatusUnauthorized, "expired")
	if st := tokenByID(t, r, admin, short.ID).State; st != api.TokenExpired {
		t.Errorf("expired token listed as %q", st)
	}

	// Single use: of concurrent registrations exactly one gets through.
	once := create(api.JoinTokenRequest{Name: "once", SingleUse: true})
	var wg sync.WaitGroup
	status := make([]int, 6)
	for i := range status {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, resp := g.register(once.Token, "once-"+itoa(i), "")
			status[i] = resp.Status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range status {
		if s == http.StatusOK {
			ok++
		} else if s != http.StatusUnauthorized {
			t.Errorf("a concurrent use of a single-use token answered %d", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent registrations with a single-use token succeeded (%v), want 1", ok, status)
	}
	g.refused(once.Token, "once-late", "", http.StatusUnauthorized, "spent")
	if tk := tokenByID(t, r, admin, once.ID); tk.State != api.TokenSpent || tk.UsedAt == nil || !strings.HasPrefix(tk.UsedBy, "once-") {
		t.Errorf("spent token listed as %+v", tk)
	}
	// A single-use token refused for another reason is not spent.
	taken := create(api.JoinTokenRequest{SingleUse: true})
	g.refused(taken.Token, "p1", "", http.StatusConflict, "taken")
	g.mustRegister(taken.Token, "fresh", "")

	// Scope: only the name it was made for.
	scoped := create(api.JoinTokenRequest{ClusterName: "site-a"})
	g.refused(scoped.Token, "site-b", "", http.StatusUnauthorized, `only a cluster named "site-a"`)
	g.mustRegister(scoped.Token, "site-a", "")

	// Revoked: refused at once; a second revoke is 404.
	r.must("DELETE", "/api/clusters/tokens/"+plain.ID, admin, nil, nil)
	g.refused(plain.Token, "p3", "", http.StatusUnauthorized, "invalid join token")
	if resp := r.do("DELETE", "/api/clusters/tokens/"+plain.ID, admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("revoke a revoked token: want 404, got %s", resp)
	}
}

// TestClusterTakeoverIsRefused: a registered name is taken again only by
// the cluster that shows its credential, or with a token an admin scoped to
// the name; anyone else gets 409 and the cluster keeps its identity.
func TestClusterTakeoverIsRefused(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "takeover")
	edge := g.mustRegister(join, "edge", "")
	other := g.mustRegister(join, "other", "")

	g.refused(join, "edge", "", http.StatusConflict, `cluster name "edge" is taken`)
	g.refused(join, "edge", other.Credential, http.StatusConflict, "taken")
	g.refused(join, "edge", edge.ClusterID+".forged", http.StatusConflict, "taken")
	if s := g.syncStatus(edge.Credential); s != http.StatusOK {
		t.Fatalf("the cluster's credential after refused takeovers: %d", s)
	}

	// The cluster itself, showing its credential: same id, new credential,
	// the old one revoked.
	again := g.mustRegister(join, "edge", edge.Credential)
	if again.ClusterID != edge.ClusterID || again.Credential == edge.Credential || again.Block != edge.Block {
		t.Errorf("registering again with the credential: %+v, was %+v", again, edge)
	}
	if s := g.syncStatus(edge.Credential); s != http.StatusUnauthorized {
		t.Errorf("the replaced credential: %d, want 401", s)
	}

	// An admin's reset for a cluster that lost its data dir: a token scoped
	// to the name; the identity (id, block) stays.
	var reset api.NewJoinToken
	r.must("POST", "/api/clusters/tokens", admin, api.JoinTokenRequest{ClusterName: "edge", SingleUse: true, ExpiresIn: "1h"}, &reset)
	rejoined := g.mustRegister(reset.Token, "edge", "")
	if rejoined.ClusterID != edge.ClusterID || rejoined.Block != edge.Block {
		t.Errorf("rejoined with a scoped token as %+v, was %+v", rejoined, edge)
	}
	if s := g.syncStatus(again.Credential); s != http.StatusUnauthorized {
		t.Errorf("the credential before the reset: %d, want 401", s)
	}
	if s := g.syncStatus(rejoined.Credential); s != http.StatusOK {
		t.Errorf("the credential after the reset: %d, want 200", s)
	}
}

// TestDeleteCluster: an admin deletes a cluster; its credential stops at
// once (a waiting watch answers 401), its address block is free for the
// next cluster, its instances are placed on another cluster, and its name
// can register again.
func TestDeleteCluster(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "delete")
	node := func(id string) []wire.NodeInfo {
		return []wire.NodeInfo{{ID: id, Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}}
	}
	a := g.mustRegister(join, "a", "")
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: node("a1")}, nil)
	app := r.createApp(admin, testSLA("moved"), "moved")
	svc := app.Microservices[0]
	r.must("POST", "/api/service/"+svc+"/instance", admin, nil, nil)
	r.waitService(admin, svc, "placed on a", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == a.ClusterID
	})
	b := g.mustRegister(join, "b", "")
	r.must("POST", "/api/cluster/sync", b.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: node("b1")}, nil)

	user := r.newUser(admin, "deleter")
	if resp := r.do("DELETE", "/api/clusters/"+a.ClusterID, user, nil); resp.Status != http.StatusForbidden {
		t.Errorf("delete a cluster as a user: want 403, got %s", resp)
	}
	if resp := r.do("DELETE", "/api/clusters/nosuch", admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("delete an unknown cluster: want 404, got %s", resp)
	}

	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	watched := make(chan response, 1)
	go func() {
		watched <- r.do("GET", "/api/cluster/desired?delta=1&wait=30s&epoch="+d.Epoch+"&after="+itoa64(d.Generation), a.Credential, nil)
	}()
	time.Sleep(300 * time.Millisecond) // the watch is waiting
	ctx, cancel := callCtx()
	defer cancel()
	deleted := time.Now()
	if err := r.client(admin).DeleteCluster(ctx, "a"); err != nil { // by name
		t.Fatalf("delete cluster a: %v", err)
	}
	select {
	case resp := <-watched:
		if resp.Status != http.StatusUnauthorized {
			t.Errorf("the deleted cluster's watch answered %s, want 401", resp)
		}
		t.Logf("the deleted cluster's watch ended %s after the delete: %s", time.Since(deleted).Round(time.Millisecond), resp)
	case <-time.After(5 * time.Second):
		t.Error("the deleted cluster's watch did not end within 5 s")
	}
	if s := g.syncStatus(a.Credential); s != http.StatusUnauthorized {
		t.Errorf("the deleted cluster's sync: %d, want 401", s)
	}
	var cls []api.Cluster
	r.must("GET", "/api/clusters", admin, nil, &cls)
	if len(cls) != 1 || cls[0].ClusterName != "b" {
		t.Errorf("clusters after the delete: %+v", cls)
	}
	r.waitService(admin, svc, "placed on b", func(s api.Service) bool {
		return len(s.InstanceList) == 1 && s.InstanceList[0].ClusterID == b.ClusterID
	})

	// The block is free: the next cluster gets it; the name is free too.
	c := g.mustRegister(join, "c", "")
	if c.Block != a.Block {
		t.Errorf("the next cluster got block %s, want the deleted cluster's %s", c.Block, a.Block)
	}
	if a2 := g.mustRegister(join, "a", ""); a2.ClusterID == a.ClusterID {
		t.Errorf("a cluster registered under a deleted name got the deleted id")
	}

	// It stays deleted after a restart of the root.
	r.restart(false)
	admin = r.login("Admin", "delete-admin-password").Token
	r.must("GET", "/api/clusters", admin, nil, &cls)
	for _, cl := range cls {
		if cl.ID == a.ClusterID {
			t.Errorf("the deleted cluster is back after a restart: %+v", cl)
		}
	}
}
