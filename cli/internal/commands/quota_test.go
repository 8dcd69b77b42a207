package commands

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestQuotaCommands: quota get shows the caller's or a user's quota with
// its use; quota set sends the flags; a refusal of the root is an error.
func TestQuotaCommands(t *testing.T) {
	var mu sync.Mutex
	var last string
	status := `{"username":"alice","quota":{"instances":10,"milli_cpu":4000,"memory_mb":0},"used":{"instances":2,"milli_cpu":2000,"memory_mb":200}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = strings.TrimSpace(r.Method + " " + r.URL.Path + " " + string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "GET /api/quota", "GET /api/users/alice/quota", "PUT /api/users/alice/quota":
			_, _ = w.Write([]byte(status))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"not allowed for your role"}`))
		}
	}))
	defer srv.Close()
	run := cliAt(t, srv.URL, "-p", "pw")
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
		req      string
	}{
		{[]string{"quota", "get"}, ExitOK, "memory (MiB)      200   -", "", "GET /api/quota"},
		{[]string{"quota", "get", "alice"}, ExitOK, "instances         2     10", "", "GET /api/users/alice/quota"},
		{[]string{"quota", "set", "alice", "--instances", "10", "--cpu", "4000"}, ExitOK, "quota of alice", "",
			`PUT /api/users/alice/quota {"instances":10,"milli_cpu":4000,"memory_mb":0}`},
		{[]string{"quota", "set", "bob", "--memory", "512"}, ExitError, "", "not allowed for your role",
			`PUT /api/users/bob/quota {"instances":0,"milli_cpu":0,"memory_mb":512}`},
		{[]string{"-o", "json", "quota", "get"}, ExitOK, `"milli_cpu": 4000`, "", "GET /api/quota"},
	} {
		code, out, errs := run(tc.args...)
		mu.Lock()
		req := last
		mu.Unlock()
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) || req != tc.req {
			t.Errorf("thicket %s: exit %d, stdout %q, stderr %q, last request %q; want %d, %q, %q, %q",
				strings.Join(tc.args, " "), code, out, errs, req, tc.code, tc.out, tc.err, tc.req)
		}
	}
}
