package commands

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestAllowFromCommand: allow-from shows a service's list, replaces it
// with the PEERs (or empties it with --none) and shows the root's answer;
// a refusal of the root is an error.
func TestAllowFromCommand(t *testing.T) {
	var mu sync.Mutex
	var last string
	svc := func(allow string) string {
		return `{"microserviceID":"s1","microservice_name":"web","app_name":"site","allow_from":` + allow + `}`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = strings.TrimSpace(r.Method + " " + r.URL.Path + " " + string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "GET /api/service/s1":
			_, _ = w.Write([]byte(svc(`["carol"]`)))
		case "PUT /api/service/s1/allow-from":
			switch b := strings.TrimSpace(string(body)); b {
			case `{"allow_from":["bo b"]}`:
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"allow_from[0]: \"bo b\": user \"bo b\" must match ^[A-Za-z0-9_.-]{1,64}$","field":"allow_from[0]"}`))
			default:
				_, _ = w.Write([]byte(svc(strings.TrimSuffix(strings.TrimPrefix(b, `{"allow_from":`), "}"))))
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
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
		{[]string{"allow-from", "s1"}, ExitOK, "site/web: its owner's instances and carol may connect", "", "GET /api/service/s1"},
		{[]string{"allow-from", "s1", "bob", "dave/shop"}, ExitOK, "and bob, dave/shop may connect", "",
			`PUT /api/service/s1/allow-from {"allow_from":["bob","dave/shop"]}`},
		{[]string{"allow-from", "s1", "--none"}, ExitOK, "site/web: only its owner's instances may connect", "",
			`PUT /api/service/s1/allow-from {"allow_from":[]}`},
		{[]string{"allow-from", "s1", "bo b"}, ExitError, "", "must match", `PUT /api/service/s1/allow-from {"allow_from":["bo b"]}`},
		{[]string{"allow-from", "s1", "bob", "--none"}, ExitUsage, "", "--none takes no PEER", `PUT /api/service/s1/allow-from {"allow_from":["bo b"]}`},
		{[]string{"-o", "json", "allow-from", "s1"}, ExitOK, `"allow_from": [`, "", "GET /api/service/s1"},
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
