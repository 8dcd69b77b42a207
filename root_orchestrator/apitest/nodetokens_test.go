package apitest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeTokens: an admin issues node join tokens for a cluster (by
// name): 24 h by default, "never" only when asked, single-use, scoped to a
// node name; users may not (403), bad input is 400 and stores nothing,
// unknown clusters 404. The token carries the pin the cluster told in its
// sync; the cluster's waiting watch answers at once with the tokens'
// hashes (never a secret); the cluster's report of a use shows the token
// spent; a revoke answers the watch at once without it; after a restart
// of the root the tokens are still there.
func TestNodeTokens(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "nodetokens")
	a := g.mustRegister(join, "a", "")
	pin := "sha256:" + strings.Repeat("ab", 32)
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, CAPin: pin}, nil)

	user := r.newUser(admin, "tokenuser")
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"list as a user", "GET", "/api/clusters/a/node-tokens", user, nil, http.StatusForbidden},
		{"create as a user", "POST", "/api/clusters/a/node-tokens", user, api.NodeTokenRequest{}, http.StatusForbidden},
		{"create without a token", "POST", "/api/clusters/a/node-tokens", "", api.NodeTokenRequest{}, http.StatusUnauthorized},
		{"an unknown cluster", "POST", "/api/clusters/nosuch/node-tokens", admin, api.NodeTokenRequest{}, http.StatusNotFound},
		{"a bad expiry", "POST", "/api/clusters/a/node-tokens", admin, api.NodeTokenRequest{ExpiresIn: "-1h"}, http.StatusBadRequest},
		{"a bad node name", "POST", "/api/clusters/a/node-tokens", admin, api.NodeTokenRequest{NodeName: "a b"}, http.StatusBadRequest},
		{"revoke an unknown token", "DELETE", "/api/clusters/a/node-tokens/nosuch", admin, nil, http.StatusNotFound},
	} {
		if resp := r.do(tc.method, tc.path, tc.token, tc.body); resp.Status != tc.want {
			t.Errorf("%s: got %s, want %d", tc.name, resp, tc.want)
		}
	}
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(admin)
	if toks, err := cl.NodeTokens(ctx, "a"); err != nil || len(toks) != 0 {
		t.Fatalf("after refused requests the tokens are %+v (%v); want none", toks, err)
	}

	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	watch := func(d wire.ClusterDesired) chan wire.ClusterDesired {
		c := make(chan wire.ClusterDesired, 1)
		go func() {
			var w wire.ClusterDesired
			r.must("GET", "/api/cluster/desired?delta=1&wait=30s&epoch="+d.Epoch+"&after="+itoa64(d.Generation), a.Credential, nil, &w)
			c <- w
		}()
		time.Sleep(300 * time.Millisecond) // the watch is waiting
		return c
	}
	watched := watch(d)
	created := time.Now()
	once, err := cl.CreateNodeToken(ctx, "a", api.NodeTokenRequest{SingleUse: true, NodeName: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if !once.Pinned || !strings.HasPrefix(once.Token, "thk1"+strings.Repeat("ab", 32)+"::thn_") || once.Cluster != "a" {
		t.Errorf("the new token is %q (pinned %v, cluster %q); want it with the cluster's pin", once.Token, once.Pinned, once.Cluster)
	}
	if once.ExpiresAt == nil || once.ExpiresAt.Sub(created) < 23*time.Hour || once.ExpiresAt.Sub(created) > 25*time.Hour {
		t.Errorf("the token expires at %v; want in 24 h", once.ExpiresAt)
	}
	if !once.SingleUse || once.NodeName != "w1" || once.State != api.TokenActive {
		t.Errorf("the token is %+v", once.NodeToken)
	}
	select {
	case w := <-watched:
		if len(w.NodeTokens) != 1 || w.NodeTokens[0].ID != once.ID || !w.NodeTokens[0].SingleUse || w.NodeTokens[0].NodeName != "w1" {
			t.Errorf("the watch answered node tokens %+v", w.NodeTokens)
		}
		_, secret, _ := strings.Cut(once.Token, "::")
		if raw, _ := json.Marshal(w); strings.Contains(string(raw), secret) {
			t.Error("the desired set carries the token's secret")
		}
		t.Logf("the watch answered %s after the token was made", time.Since(created).Round(time.Millisecond))
		d = w
	case <-time.After(5 * time.Second):
		t.Fatal("the cluster's watch did not answer within 5 s")
	}
	forever, err := cl.CreateNodeToken(ctx, "a", api.NodeTokenRequest{ExpiresIn: "never"})
	if err != nil || forever.ExpiresAt != nil {
		t.Fatalf("a token that never expires: %+v, %v", forever, err)
	}

	// The cluster admitted w1 with the single-use token and says so.
	r.must("POST", "/api/cluster/sync", a.Credential, wire.ClusterSync{Version: wire.Version, Delta: true,
		NodeTokenUses: []wire.NodeTokenUse{{ID: once.ID, Node: "w1", At: time.Now().UTC()}}}, nil)
	toks, err := cl.NodeTokens(ctx, "a")
	if err != nil || len(toks) != 2 {
		t.Fatalf("tokens %+v, %v; want two", toks, err)
	}
	if toks[0].State != api.TokenSpent || toks[0].UsedBy != "w1" || toks[1].State != api.TokenActive {
		t.Errorf("after the use the tokens are %+v; want the first spent by w1", toks)
	}

	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", a.Credential, nil, &d)
	watched = watch(d)
	revoked := time.Now()
	if err := cl.DeleteNodeToken(ctx, "a", forever.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-watched:
		for _, x := range w.NodeTokens {
			if x.ID == forever.ID {
				t.Error("the watch still lists the revoked token")
			}
		}
		t.Logf("the watch answered %s after the revoke", time.Since(revoked).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the cluster's watch did not answer the revoke within 5 s")
	}

	r.restart(false)
	admin = r.login("Admin", "nodetokens-admin-password").Token
	ctx2, cancel2 := callCtx()
	defer cancel2()
	toks, err = r.client(admin).NodeTokens(ctx2, "a")
	if err != nil || len(toks) != 1 || toks[0].ID != once.ID || toks[0].State != api.TokenSpent {
		t.Errorf("after a restart the tokens are %+v (%v); want the spent one", toks, err)
	}
}
