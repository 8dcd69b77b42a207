package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRoot answers login, refresh and a few API paths the way thicket-root
// does, accepting only the access token it issued last.
type fakeRoot struct {
	mu                sync.Mutex
	issued, refreshes int
	logins            int
	valid             string
	// last request's method, path, body and content type
	method, path, body, ctype string
}

func (s *fakeRoot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	s.method, s.path, s.body, s.ctype = r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Content-Type")
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	issue := func() {
		s.issued++
		s.valid = "access" + string(rune('0'+s.issued))
		w.Write([]byte(`{"token":"` + s.valid + `","refresh_token":"refresh","expires_in":900,"username":"Admin","role":"admin"}`))
	}
	switch {
	case r.URL.Path == "/api/auth/login":
		if !strings.Contains(string(b), `"password":"pw"`) {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"wrong username or password"}`))
			return
		}
		s.logins++
		issue()
		return
	case r.URL.Path == "/api/auth/refresh":
		if auth != "refresh" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"missing, invalid or expired token"}`))
			return
		}
		s.refreshes++
		issue()
		return
	case r.URL.Path == "/healthz":
		w.Write([]byte(`{"status":"ok"}`))
		return
	case auth != s.valid:
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"missing, invalid or expired token"}`))
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /api/applications/":
		w.Write([]byte(`[{"applicationID":"a1","application_name":"shop","microservices":["s1"]}]`))
	case "POST /api/application/":
		w.Write([]byte(`[{"applicationID":"a0","application_name":"old"},{"applicationID":"a1","application_name":"shop"}]`))
	case "GET /api/service/s1":
		w.Write([]byte(`{"microserviceID":"s1","instance_list":[{"instance_number":0,"status":"RUNNING"},{"instance_number":2,"status":"FAILED"}]}`))
	case "POST /api/service/s1/instance":
		w.Write([]byte(`{"message":"ok","instance_number":3,"instance":{"instance_number":3,"status":"REQUESTED"}}`))
	case "GET /api/service/s1/instance/0/logs":
		w.Write([]byte(`{"instance_number":0,"status":"RUNNING","logs":"hello\n"}`))
	case "POST /api/clusters/tokens":
		w.Write([]byte(`{"id":"ab12cd34","name":"edge","created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-02T00:00:00Z",` +
			`"single_use":true,"cluster_name":"c1","state":"active","token":"secret"}`))
	case "DELETE /api/application/a1":
		w.Write([]byte(`{"message":"Application Deleted"}`))
	case "DELETE /api/clusters/c1":
		w.Write([]byte(`{"message":"cluster c1 deleted"}`))
	case "DELETE /api/clusters/c1/nodes/n 1":
		w.Write([]byte(`{"message":"node n 1 of cluster c1 deleted"}`))
	case "POST /api/clusters/c1/nodes/n 1/drain":
		w.Write([]byte(`{"message":"node n 1 of cluster c1 is drained"}`))
	case "POST /api/users/":
		w.WriteHeader(400)
		w.Write([]byte(`{"error":"username must match ^[a-z]+$","field":"username"}`))
	case "GET /api/service/bad":
		w.Write([]byte(`{not json`))
	case "GET /api/service/gateway":
		w.WriteHeader(502)
		w.Write([]byte("Bad Gateway\n"))
	case "GET /api/service/slow":
		s.mu.Unlock()
		<-r.Context().Done()
		s.mu.Lock()
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not found"}`))
	}
}

// loggedIn returns a client of a fake root holding a valid session.
func loggedIn(t *testing.T) (*Client, *fakeRoot) {
	t.Helper()
	fr := &fakeRoot{}
	srv := httptest.NewServer(fr)
	t.Cleanup(srv.Close)
	c := NewClient(Config{Address: srv.URL + "/", Username: "Admin", Password: "pw"})
	if _, err := c.Login(context.Background(), "Admin", "pw"); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

func TestTypedCalls(t *testing.T) {
	ctx := context.Background()
	c, fr := loggedIn(t)
	for _, tc := range []struct {
		name, wantReq string
		call          func() (any, error)
		want          any
	}{
		{"applications", "GET /api/applications/", func() (any, error) { return c.Applications(ctx) },
			[]Application{{ApplicationID: "a1", ApplicationName: "shop", Microservices: []string{"s1"}}}},
		{"create application", `POST /api/application/ {"sla_version":"v2.0"}`,
			func() (any, error) { return c.CreateApplication(ctx, []byte(`{"sla_version":"v2.0"}`), "shop") },
			&Application{ApplicationID: "a1", ApplicationName: "shop"}},
		{"instance", "GET /api/service/s1", func() (any, error) {
			in, ok, err := c.Instance(ctx, "s1", 2)
			return []any{in.Status, ok}, err
		}, []any{"FAILED", true}},
		{"absent instance", "GET /api/service/s1", func() (any, error) {
			in, ok, err := c.Instance(ctx, "s1", 1)
			return []any{in.Status, ok}, err
		}, []any{"", false}},
		{"add instance", "POST /api/service/s1/instance", func() (any, error) { return c.AddInstance(ctx, "s1") }, 3},
		{"logs", "GET /api/service/s1/instance/0/logs", func() (any, error) { return c.Logs(ctx, "s1", 0, 0) },
			&Logs{InstanceNumber: 0, Status: "RUNNING", Logs: "hello\n"}},
		{"join token", `POST /api/clusters/tokens {"name":"edge","expires_in":"1h","single_use":true,"cluster_name":"c1"}`,
			func() (any, error) {
				return c.CreateJoinToken(ctx, JoinTokenRequest{Name: "edge", ExpiresIn: "1h", SingleUse: true, ClusterName: "c1"})
			},
			&NewJoinToken{JoinToken{ID: "ab12cd34", Name: "edge", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				ExpiresAt: ptr(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)), SingleUse: true, ClusterName: "c1", State: TokenActive}, "secret"}},
		{"delete cluster", "DELETE /api/clusters/c1", func() (any, error) { return nil, c.DeleteCluster(ctx, "c1") }, nil},
		{"delete node", "DELETE /api/clusters/c1/nodes/n%201", func() (any, error) { return nil, c.DeleteNode(ctx, "c1", "n 1") }, nil},
		{"drain node", "POST /api/clusters/c1/nodes/n%201/drain", func() (any, error) {
			return c.SetNodeMode(ctx, "c1", "n 1", Drain)
		}, "node n 1 of cluster c1 is drained"},
		{"delete application", "DELETE /api/application/a1", func() (any, error) { return nil, c.DeleteApplication(ctx, "a1") }, nil},
	} {
		got, err := tc.call()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) && !(tc.want == nil && reflect.ValueOf(got).IsZero()) {
			t.Errorf("%s: got %#v, want %#v", tc.name, got, tc.want)
		}
		req := fr.method + " " + fr.path
		if fr.body != "" {
			req += " " + fr.body
			if fr.ctype != "application/json" {
				t.Errorf("%s: content type %q", tc.name, fr.ctype)
			}
		}
		if req != tc.wantReq {
			t.Errorf("%s: request %q, want %q", tc.name, req, tc.wantReq)
		}
	}
}

func TestErrorShape(t *testing.T) {
	ctx := context.Background()
	c, _ := loggedIn(t)
	for _, tc := range []struct {
		name string
		call func() error
		want StatusError
	}{
		{"not found", func() error { _, err := c.Service(ctx, "nope"); return err },
			StatusError{Status: 404, Message: "not found"}},
		{"field error", func() error { _, err := c.CreateUser(ctx, NewUser{Username: "X"}); return err },
			StatusError{Status: 400, Message: "username must match ^[a-z]+$", Field: "username"}},
		{"text body", func() error { _, err := c.Service(ctx, "gateway"); return err },
			StatusError{Status: 502, Message: "Bad Gateway"}},
		{"wrong password", func() error { _, err := c.Login(ctx, "Admin", "nope"); return err },
			StatusError{Status: 401, Message: "wrong username or password"}},
	} {
		err := tc.call()
		var se *StatusError
		if !errors.As(err, &se) || *se != tc.want {
			t.Errorf("%s: error %#v, want %#v", tc.name, err, tc.want)
		}
	}
	if _, err := c.Service(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	if _, err := c.Service(ctx, "bad"); err == nil || !strings.HasPrefix(err.Error(), "unexpected answer from the server: ") {
		t.Errorf("a 200 that is no JSON: %v", err)
	}
	for _, tc := range []struct {
		e    StatusError
		want string
	}{
		{StatusError{Status: 500}, "server answered 500 Internal Server Error"},
		{StatusError{Status: 404, Message: "not found"}, "not found"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("message of %#v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestDecodeBodies(t *testing.T) {
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		status int
		body   string
		want   StatusError
	}{
		{404, `{"error":"not found"}`, StatusError{Status: 404, Message: "not found"}},
		{400, `{"error":"port: bad","field":"applications[0].port"}`, StatusError{Status: 400, Message: "port: bad", Field: "applications[0].port"}},
		{502, "Bad Gateway\n", StatusError{Status: 502, Message: "Bad Gateway"}},
		{500, ``, StatusError{Status: 500}},
		{500, long, StatusError{Status: 500}},
	} {
		err := decode(&Response{Status: tc.status, Body: []byte(tc.body)}, nil)
		var se *StatusError
		if !errors.As(err, &se) || *se != tc.want {
			t.Errorf("decode(%d, %.20q) = %#v, want %#v", tc.status, tc.body, err, tc.want)
		}
	}
}

func TestRenew(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		session       Session
		password      string
		valid         string
		wantRefreshes int
		wantLogins    int
		wantErr       error
	}{
		{"valid token: no refresh", Session{Token: "access0", RefreshToken: "refresh", ExpiresAt: now.Add(time.Hour)}, "", "access0", 0, 0, nil},
		{"expired by the clock", Session{Token: "access0", RefreshToken: "refresh", ExpiresAt: now.Add(-time.Hour)}, "", "access0", 1, 0, nil},
		{"refused by the server (revoked)", Session{Token: "old", RefreshToken: "refresh", ExpiresAt: now.Add(time.Hour)}, "", "access0", 1, 0, nil},
		{"refresh token refused", Session{Token: "old", RefreshToken: "bad", ExpiresAt: now.Add(time.Hour)}, "", "access0", 0, 0, ErrSessionExpired},
		{"refresh token refused: log in again", Session{Token: "old", RefreshToken: "bad"}, "pw", "access0", 0, 1, nil},
		{"no session: log in", Session{}, "pw", "access0", 0, 1, nil},
		{"no session, no password", Session{}, "", "access0", 0, 0, ErrNotLoggedIn},
	} {
		fr := &fakeRoot{valid: tc.valid}
		srv := httptest.NewServer(fr)
		var saved []Session
		c := NewClient(Config{Address: srv.URL, Session: tc.session, Username: "Admin", Password: tc.password,
			OnSession: func(s Session) error { saved = append(saved, s); return nil },
			Now:       func() time.Time { return now }})
		apps, err := c.Applications(context.Background())
		srv.Close()
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if fr.refreshes != tc.wantRefreshes || fr.logins != tc.wantLogins {
			t.Errorf("%s: %d refreshes and %d logins, want %d and %d", tc.name, fr.refreshes, fr.logins, tc.wantRefreshes, tc.wantLogins)
		}
		if tc.wantErr != nil {
			continue
		}
		if len(apps) != 1 || apps[0].ApplicationName != "shop" {
			t.Errorf("%s: applications %+v", tc.name, apps)
		}
		if renewed := tc.wantRefreshes + tc.wantLogins; renewed > 0 {
			want := Session{Username: "Admin", Role: "admin", Token: fr.valid, RefreshToken: "refresh", ExpiresAt: now.Add(900 * time.Second)}
			if len(saved) != 1 || saved[0] != want || c.Session() != want {
				t.Errorf("%s: saved sessions %+v, session %+v, want %+v", tc.name, saved, c.Session(), want)
			}
		} else if saved != nil {
			t.Errorf("%s: sessions saved without a renewal: %+v", tc.name, saved)
		}
	}
}

func TestFixedToken(t *testing.T) {
	c, fr := loggedIn(t)
	// A fixed token the root refuses is a 401, not a renewal.
	_, err := c.WithToken("forged").Applications(context.Background())
	if !HasStatus(err, http.StatusUnauthorized) || fr.refreshes+fr.logins != 1 {
		t.Errorf("a refused fixed token: %v after %d refreshes, %d logins", err, fr.refreshes, fr.logins)
	}
	if _, err := c.WithToken(c.Session().Token).Applications(context.Background()); err != nil {
		t.Errorf("a valid fixed token: %v", err)
	}
	// No token at all is sent as none.
	if _, err := c.WithToken("").Applications(context.Background()); !HasStatus(err, http.StatusUnauthorized) {
		t.Errorf("no fixed token: %v", err)
	}
	var tok Tokens
	if err := c.WithToken("").Do(context.Background(), "POST", "/api/auth/login", LoginRequest{Username: "Admin", Password: "pw"}, &tok); err != nil || tok.ExpiresIn != 900 {
		t.Errorf("login through Do without a token: %+v, %v", tok, err)
	}
}

func TestRaw(t *testing.T) {
	c, fr := loggedIn(t)
	for _, tc := range []struct {
		name       string
		client     *Client
		body       any
		wantStatus int
		wantBody   string
	}{
		{"with the session", c, nil, 200, `[{"applicationID":"a0","application_name":"old"},{"applicationID":"a1","application_name":"shop"}]`},
		{"malformed body as it is", c, "{not json", 200, "{not json"},
		{"without a token", c.WithToken(""), nil, 401, `{"error":"missing, invalid or expired token"}`},
		{"logged in first", NewClient(Config{Address: c.Address(), Username: "Admin", Password: "pw"}), nil, 200, `[{"applicationID":"a0","application_name":"old"},{"applicationID":"a1","application_name":"shop"}]`},
		{"not logged in", NewClient(Config{Address: c.Address()}), nil, 401, `{"error":"missing, invalid or expired token"}`},
	} {
		r, err := tc.client.Raw(context.Background(), "POST", "/api/application/", tc.body)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if r.Status != tc.wantStatus || (tc.body == nil && string(r.Body) != tc.wantBody) || (tc.body != nil && fr.body != tc.wantBody) {
			t.Errorf("%s: %s (sent %q)", tc.name, r, fr.body)
		}
	}
}

func TestContextCancel(t *testing.T) {
	c, _ := loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Service(ctx, "slow")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a call past its deadline: %v after %s", err, time.Since(start))
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := c.DeleteApplication(ctx, "a1"); !errors.Is(err, context.Canceled) {
		t.Errorf("a call with a cancelled context: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := NewClient(Config{Address: url}).Health(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Health of a closed server: %v", err)
	}
	if want := "cannot reach " + url + ": connect: connection refused"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := NewClient(Config{Address: url}).Applications(context.Background()); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("an authenticated call without a session: %v", err)
	}
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{200, `{"status":"ok"}`, ""},
		{503, `{"status":"store unavailable"}`, "server unhealthy: store unavailable"},
		{500, `{"error":"boom"}`, "boom"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		err := NewClient(Config{Address: srv.URL}).Health(context.Background())
		srv.Close()
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("health %d %s: %v, want %q", tc.status, tc.body, err, tc.want)
		}
	}
}

func TestExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    Session
		want bool
	}{
		{"no token", Session{}, true},
		{"unknown expiry", Session{Token: "t"}, false},
		{"valid", Session{Token: "t", ExpiresAt: now.Add(10 * time.Minute)}, false},
		{"about to expire", Session{Token: "t", ExpiresAt: now.Add(10 * time.Second)}, true},
		{"expired", Session{Token: "t", ExpiresAt: now.Add(-time.Minute)}, true},
	} {
		if got := tc.s.Expired(now); got != tc.want {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.want)
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

// TestConcurrentRenew: calls that find the session expired at once renew
// it once.
func TestConcurrentRenew(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fr := &fakeRoot{valid: "access0"}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	c := NewClient(Config{Address: srv.URL, Now: func() time.Time { return now },
		Session: Session{Token: "access0", RefreshToken: "refresh", ExpiresAt: now.Add(-time.Minute)}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Applications(context.Background())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if fr.refreshes != 1 {
		t.Errorf("%d refreshes, want 1", fr.refreshes)
	}
}

func ptr[T any](v T) *T { return &v }
