package commands

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestLogsCommand: thicket logs asks for --tail and --since, prints stdout
// lines on stdout and stderr lines on stderr, with their times under -t; a
// bad --since is refused before any request.
func TestLogsCommand(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "/api/service/svc1":
			_, _ = w.Write([]byte(`{"microserviceID":"svc1","microservice_name":"web","app_name":"shop","instance_list":[{"instance_number":0}]}`))
		case "/api/service/svc1/instance/0/logs":
			mu.Lock()
			queries = append(queries, r.URL.RawQuery)
			mu.Unlock()
			_, _ = w.Write([]byte(`{"instance_number":0,"status":"RUNNING","logs":"boot\nready\nslow disk\n","lines":[
				{"text":"boot"},
				{"time":"2026-12-06T07:00:00.5Z","stream":"stdout","text":"ready"},
				{"time":"2026-12-06T07:00:01Z","stream":"stderr","text":"slow disk"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	run := cliAt(t, srv.URL, "-u", "alice", "-p", "pw")
	for _, tc := range []struct {
		name          string
		args          []string
		code          int
		out, err, req string
	}{
		{"streams apart", []string{"logs", "svc1"}, ExitOK, "boot\nready\n", "slow disk\n", "tail=100"},
		{"since and tail", []string{"logs", "svc1", "--since", "10m", "-n", "5"}, ExitOK, "boot\nready\n", "slow disk\n", "since=10m&tail=5"},
		{"timestamps", []string{"logs", "svc1", "-t"}, ExitOK, "- boot\n2026-12-06T07:00:00.5Z ready\n", "2026-12-06T07:00:01Z slow disk\n", "tail=100"},
		{"since a time", []string{"logs", "svc1", "--since", "2026-12-06T07:00:00Z"}, ExitOK, "boot\nready\n", "", "since=2026-12-06T07%3A00%3A00Z&tail=100"},
		{"bad since", []string{"logs", "svc1", "--since", "yesterday"}, ExitUsage, "", `--since "yesterday" is neither a duration`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			n := len(queries)
			mu.Unlock()
			code, out, errs := run(tc.args...)
			if code != tc.code || (tc.code == ExitOK && out != tc.out) || !strings.Contains(errs, tc.err) {
				t.Errorf("exit %d, out %q, err %q; want %d, %q, %q", code, out, errs, tc.code, tc.out, tc.err)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tc.req == "" && len(queries) > n:
				t.Errorf("asked %q", queries[n:])
			case tc.req != "" && (len(queries) != n+1 || queries[n] != tc.req):
				t.Errorf("asked %q, want %q", queries[n:], tc.req)
			}
		})
	}
}
