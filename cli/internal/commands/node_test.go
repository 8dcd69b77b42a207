package commands

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestNodeModeCommands: thicket node cordon|drain|uncordon CLUSTER NODE
// send the matching request and print the root's message.
func TestNodeModeCommands(t *testing.T) {
	var mu sync.Mutex
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/auth/login" {
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"Admin","role":"admin"}`))
			return
		}
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/nope/cordon") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
			return
		}
		_, _ = w.Write([]byte(`{"message":"done: ` + r.URL.Path + `"}`))
	}))
	defer srv.Close()
	run := cliAt(t, srv.URL, "-p", "pw")
	for _, tc := range []struct {
		args      []string
		code      int
		req, want string
	}{
		{[]string{"node", "cordon", "edge", "w 1"}, ExitOK, "POST /api/clusters/edge/nodes/w%201/cordon", "done: /api/clusters/edge/nodes/w 1/cordon"},
		{[]string{"node", "drain", "edge", "w1"}, ExitOK, "POST /api/clusters/edge/nodes/w1/drain", "done: /api/clusters/edge/nodes/w1/drain"},
		{[]string{"node", "uncordon", "edge", "w1"}, ExitOK, "POST /api/clusters/edge/nodes/w1/uncordon", "done: /api/clusters/edge/nodes/w1/uncordon"},
		{[]string{"node", "cordon", "edge", "nope"}, ExitError, "POST /api/clusters/edge/nodes/nope/cordon", "cordon node nope of cluster edge: not found"},
		{[]string{"node", "drain", "edge"}, ExitUsage, "", "expected \"<node>\""},
	} {
		mu.Lock()
		n := len(reqs)
		mu.Unlock()
		code, out, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%q: exit %d, out %q, err %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
		mu.Lock()
		got := strings.Join(reqs[n:], ", ")
		mu.Unlock()
		if got != tc.req {
			t.Errorf("%q: sent %q, want %q", tc.args, got, tc.req)
		}
	}
}

// cliAt returns a runner of the CLI against the root at url, with a
// config directory of its own, after `thicket login` with loginArgs.
func cliAt(t *testing.T, url string, loginArgs ...string) func(args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), "v0", append([]string{"--config", dir, "--server", url}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errs := run(append([]string{"login"}, loginArgs...)...); code != ExitOK {
		t.Fatalf("login: %d %s", code, errs)
	}
	return run
}
