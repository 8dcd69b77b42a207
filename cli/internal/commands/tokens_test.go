package commands

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeTokenRoot answers the login and the join token and cluster routes,
// recording each request.
type fakeTokenRoot struct {
	mu   sync.Mutex
	reqs []string // "METHOD path body"
}

func (f *fakeTokenRoot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "POST /api/auth/login":
		_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"Admin","role":"admin"}`))
	case "POST /api/clusters/tokens":
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		exp := `"2026-01-02T00:00:00Z"`
		if req["expires_in"] == "never" {
			exp = "null"
		}
		_, _ = w.Write([]byte(`{"id":"ab12cd34","name":"n","created_at":"2026-01-01T00:00:00Z","expires_at":` + exp +
			`,"single_use":true,"cluster_name":"edge2","state":"active","token":"thj_secret"}`))
	case "GET /api/clusters/tokens":
		_, _ = w.Write([]byte(`[{"id":"id-solo","name":"solo","created_at":"2026-01-01T00:00:00Z","expires_at":null,"single_use":false,"state":"active"},
			{"id":"id-dup1","name":"dup","created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-02T00:00:00Z","single_use":true,"used_by":"edge9","state":"spent"},
			{"id":"id-dup2","name":"dup","created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-02T00:00:00Z","single_use":false,"state":"expired"}]`))
	case "POST /api/clusters/edge1/node-tokens":
		_, _ = w.Write([]byte(`{"id":"ee12cd34","created_at":"2026-01-01T00:00:00Z","expires_at":null,"single_use":true,"node_name":"w1",` +
			`"state":"active","token":"thk1aa::thn_secret","pinned":true,"cluster":"edge1","cluster_url":"https://192.0.2.1:10100"}`))
	case "GET /api/clusters/edge1/node-tokens":
		_, _ = w.Write([]byte(`[{"id":"ee12cd34","created_at":"2026-01-01T00:00:00Z","expires_at":null,"single_use":true,"node_name":"w1","used_by":"w1","state":"spent"}]`))
	case "DELETE /api/clusters/tokens/id-solo", "DELETE /api/clusters/edge1", "DELETE /api/clusters/edge1/node-tokens/ee12cd34":
		_, _ = w.Write([]byte(`{"message":"ok"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}`))
	}
}

func (f *fakeTokenRoot) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

// TestTokenAndClusterCommands: token create sends what the flags say and
// prints the token alone on stdout; list shows state and expiry; revoke
// takes an id or a unique name; delete cluster calls the root.
func TestTokenAndClusterCommands(t *testing.T) {
	f := &fakeTokenRoot{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	run := cliAt(t, srv.URL, "-p", "pw")
	for _, tc := range []struct {
		args          []string
		code          int
		out, err, req string
	}{
		{[]string{"token", "create", "--single-use", "--cluster", "edge2", "--expires-in", "1h"}, ExitOK, "thj_secret\n", "single-use, only for cluster edge2",
			`POST /api/clusters/tokens {"expires_in":"1h","single_use":true,"cluster_name":"edge2"}`},
		{[]string{"token", "create", "--expires-in", "never"}, ExitOK, "thj_secret\n", "never expires", `POST /api/clusters/tokens {"expires_in":"never"}`},
		{[]string{"token", "create"}, ExitOK, "thj_secret\n", "", `POST /api/clusters/tokens {"expires_in":"24h"}`},
		{[]string{"token", "list"}, ExitOK, "spent", "", "GET /api/clusters/tokens"},
		{[]string{"token", "revoke", "solo"}, ExitOK, "join token id-solo revoked", "", "DELETE /api/clusters/tokens/id-solo"},
		{[]string{"token", "revoke", "dup"}, ExitError, "", "2 join tokens are named", "GET /api/clusters/tokens"},
		{[]string{"token", "revoke", "nosuch"}, ExitError, "", `no join token "nosuch"`, "GET /api/clusters/tokens"},
		{[]string{"node-token", "create", "--cluster", "edge1", "--single-use", "--node", "w1", "--expires-in", "never"}, ExitOK, "thk1aa::thn_secret\n",
			"--cluster-url https://192.0.2.1:10100 --token-file node-join-token --name w1",
			`POST /api/clusters/edge1/node-tokens {"expires_in":"never","single_use":true,"node_name":"w1"}`},
		{[]string{"node-token", "create", "--cluster", "edge1"}, ExitOK, "thn_secret", "", `POST /api/clusters/edge1/node-tokens {"expires_in":"24h"}`},
		{[]string{"node-token", "create"}, ExitUsage, "", "missing flags: --cluster", `POST /api/clusters/edge1/node-tokens {"expires_in":"24h"}`},
		{[]string{"node-token", "list", "--cluster", "edge1"}, ExitOK, "spent", "", "GET /api/clusters/edge1/node-tokens"},
		{[]string{"node-token", "revoke", "--cluster", "edge1", "ee12cd34"}, ExitOK, "node join token ee12cd34 of cluster edge1 revoked", "",
			"DELETE /api/clusters/edge1/node-tokens/ee12cd34"},
		{[]string{"node-token", "revoke", "--cluster", "edge1", "nosuch"}, ExitError, "", "revoke node join token nosuch", "DELETE /api/clusters/edge1/node-tokens/nosuch"},
		{[]string{"delete", "cluster", "edge1"}, ExitOK, "cluster edge1 deleted", "", "DELETE /api/clusters/edge1"},
		{[]string{"delete", "cluster", "other"}, ExitError, "", "delete cluster other", "DELETE /api/clusters/other"},
	} {
		code, out, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) || f.last() != tc.req {
			t.Errorf("thicket %s: exit %d, stdout %q, stderr %q, last request %q; want %d, %q, %q, %q",
				strings.Join(tc.args, " "), code, out, errs, f.last(), tc.code, tc.out, tc.err, tc.req)
		}
	}
	if _, out, _ := run("token", "create"); out != "thj_secret\n" {
		t.Errorf("token create printed %q on stdout, want the token alone", out)
	}
	if _, out, _ := run("token", "list"); !strings.Contains(out, "never") || !strings.Contains(out, "edge9") {
		t.Errorf("token list:\n%s", out)
	}
}
