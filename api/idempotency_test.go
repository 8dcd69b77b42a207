package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCreatingCalls(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/application/", true},
		{"POST", "/api/application", true},
		{"POST", "/api/service/", true},
		{"POST", "/api/service/abc/instance", true},
		{"POST", "/api/service/abc/instance/", true},
		{"POST", "/api/users", true},
		{"DELETE", "/api/service/abc/instance/0", false},
		{"POST", "/api/service//instance", false},
		{"POST", "/api/auth/login", false},
		{"POST", "/api/user/alice", false},
		{"PUT", "/api/application/x", false},
		{"GET", "/api/application/", false},
	} {
		if got := creating(tc.method, tc.path); got != tc.want {
			t.Errorf("creating(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestDoSendsKeys: creating calls carry a fresh key each, or the
// context's; other calls none.
func TestDoSendsKeys(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(HeaderIdempotencyKey))
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := NewClient(Config{Address: srv.URL}).WithToken("t")
	ctx := context.Background()
	for _, call := range []func() error{
		func() error { return c.Do(ctx, "POST", "/api/service/s/instance", nil, nil) },
		func() error { return c.Do(ctx, "POST", "/api/service/s/instance", nil, nil) },
		func() error { return c.Do(WithIdempotencyKey(ctx, "mine"), "POST", "/api/application/", "{}", nil) },
		func() error { return c.Do(ctx, "GET", "/api/applications", nil, nil) },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 4 || got[0] == "" || got[1] == "" || got[0] == got[1] || got[2] != "mine" || got[3] != "" {
		t.Errorf("keys sent: %q", got)
	}
}
