package commands

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// cliCase is a command line run against a fake root: its exit code, what
// stdout and stderr must contain, and the last request the root saw
// ("METHOD PATH BODY").
type cliCase struct {
	args     []string
	code     int
	out, err string
	req      string
}

// recordingRoot starts a fake root that logs alice in and hands every
// other request to answer (with its body); it returns a CLI logged in to
// it and the last request it saw.
func recordingRoot(t *testing.T, answer func(w http.ResponseWriter, method, path, body string)) (func(args ...string) (int, string, string), func() string) {
	t.Helper()
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = strings.TrimSpace(r.Method + " " + r.URL.Path + " " + string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method+" "+r.URL.Path == "POST /api/auth/login" {
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
			return
		}
		answer(w, r.Method, r.URL.Path, strings.TrimSpace(string(body)))
	}))
	t.Cleanup(srv.Close)
	return cliAt(t, srv.URL, "-p", "pw"), func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// checkCLI runs each case and compares.
func checkCLI(t *testing.T, run func(args ...string) (int, string, string), last func() string, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		code, out, errs := run(tc.args...)
		req := last()
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) || req != tc.req {
			t.Errorf("thicket %s: exit %d, stdout %q, stderr %q, last request %q; want %d, %q, %q, %q",
				strings.Join(tc.args, " "), code, out, errs, req, tc.code, tc.out, tc.err, tc.req)
		}
	}
}
