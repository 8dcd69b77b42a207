package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cli/internal/config"
)

func TestNormalizeServer(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:10000":          "http://localhost:10000",
		"http://10.0.0.1:10000/":   "http://10.0.0.1:10000",
		" https://root.example ":   "https://root.example",
		"http://root/prefix/":      "http://root/prefix",
		"ftp://root":               "",
		"":                         "",
		"http://":                  "",
		"http://root:10000/?a=b":   "",
		"http://[::1]:10000":       "http://[::1]:10000",
		"root.example.org":         "http://root.example.org",
		"HTTP://Root.Example:8080": "http://Root.Example:8080",
	} {
		got, err := NormalizeServer(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizeServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want []string
	}{
		{"applications[0].application_name: must match ^[a-zA-Z0-9]{1,30}$",
			[]string{"applications[0].application_name: must match ^[a-zA-Z0-9]{1,30}$"}},
		{"sla_version: must be v2.0; applications[0].microservices[1].port: bad port \"x\"",
			[]string{"sla_version: must be v2.0", "applications[0].microservices[1].port: bad port \"x\""}},
		{"applications[0].microservices[0].port: want host:container; got 1:2:3; sla_version: missing",
			[]string{"applications[0].microservices[0].port: want host:container; got 1:2:3", "sla_version: missing"}},
		{"malformed JSON: unexpected EOF", []string{"malformed JSON: unexpected EOF"}},
	} {
		if got := FieldErrors(tc.msg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FieldErrors(%q)\n got %q\nwant %q", tc.msg, got, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   APIError
	}{
		{404, `{"error":"not found"}`, APIError{Status: 404, Message: "not found"}},
		{400, `{"error":"port: bad","field":"applications[0].port"}`, APIError{Status: 400, Message: "port: bad", Field: "applications[0].port"}},
		{502, `Bad Gateway`, APIError{Status: 502, Message: "Bad Gateway"}},
		{500, ``, APIError{Status: 500}},
	} {
		err := decode(tc.status, []byte(tc.body), nil)
		var ae *APIError
		if !errors.As(err, &ae) || *ae != tc.want {
			t.Errorf("decode(%d, %q) = %#v, want %#v", tc.status, tc.body, err, tc.want)
		}
	}
	if got := (&APIError{Status: 500}).Error(); got != "server answered 500 Internal Server Error" {
		t.Errorf("message of a bodiless error: %q", got)
	}
}

// tokenServer answers login, refresh and one authenticated path the way
// thicket-root does, accepting only the access token it issued last.
type tokenServer struct {
	issued, refreshes int
	valid             string
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch r.URL.Path {
	case "/api/auth/refresh":
		if auth != "refresh" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"missing, invalid or expired token"}`))
			return
		}
		s.refreshes++
		s.issued++
		s.valid = "access" + string(rune('0'+s.issued))
		w.Write([]byte(`{"token":"` + s.valid + `","refresh_token":"refresh","expires_in":900,"username":"Admin","role":"admin"}`))
	case "/api/applications/":
		if auth != s.valid {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"missing, invalid or expired token"}`))
			return
		}
		w.Write([]byte(`[{"applicationID":"a1","application_name":"shop"}]`))
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not found"}`))
	}
}

func TestRefresh(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		creds         config.Credentials
		valid         string
		wantRefreshes int
		wantErr       error
	}{
		{"valid token: no refresh", config.Credentials{Token: "access0", RefreshToken: "refresh", ExpiresAt: now.Add(time.Hour)}, "access0", 0, nil},
		{"expired by the clock", config.Credentials{Token: "access0", RefreshToken: "refresh", ExpiresAt: now.Add(-time.Hour)}, "access0", 1, nil},
		{"refused by the server (revoked)", config.Credentials{Token: "old", RefreshToken: "refresh", ExpiresAt: now.Add(time.Hour)}, "access0", 1, nil},
		{"refresh token refused", config.Credentials{Token: "old", RefreshToken: "bad", ExpiresAt: now.Add(time.Hour)}, "access0", 0, ErrSessionExpired},
	} {
		ts := &tokenServer{valid: tc.valid}
		srv := httptest.NewServer(ts)
		var saved *config.Credentials
		creds := tc.creds
		c := New(srv.URL, &creds, func(c *config.Credentials) error { saved = c; return nil })
		c.Now = func() time.Time { return now }
		apps, err := c.Applications(context.Background())
		srv.Close()
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if ts.refreshes != tc.wantRefreshes {
			t.Errorf("%s: %d refreshes, want %d", tc.name, ts.refreshes, tc.wantRefreshes)
		}
		if tc.wantErr != nil {
			continue
		}
		if len(apps) != 1 || apps[0].ApplicationName != "shop" {
			t.Errorf("%s: applications %+v", tc.name, apps)
		}
		if tc.wantRefreshes > 0 {
			if saved == nil || saved.Token != ts.valid || saved.Username != "Admin" || !saved.ExpiresAt.Equal(now.Add(900*time.Second)) {
				t.Errorf("%s: saved credentials %+v", tc.name, saved)
			}
		} else if saved != nil {
			t.Errorf("%s: credentials saved without a refresh", tc.name)
		}
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := New(url, nil, nil).Health(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Health of a closed server: %v", err)
	}
	if want := "cannot reach " + url + ": connect: connection refused"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := New(url, nil, nil).Applications(context.Background()); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("an authenticated call without credentials: %v", err)
	}
}
