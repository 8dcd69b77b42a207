package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRotatedRefreshTokens: each refresh answers a new refresh token and
// spends the old one; the client uses and saves the new one every time.
func TestRotatedRefreshTokens(t *testing.T) {
	n := 0
	current := "r0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/auth/refresh" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+current {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"missing, invalid or expired token"}`))
			return
		}
		n++
		current = fmt.Sprintf("r%d", n)
		json.NewEncoder(w).Encode(Tokens{Token: fmt.Sprintf("a%d", n), RefreshToken: current, ExpiresIn: 900})
	}))
	defer srv.Close()
	var saved []string
	c := NewClient(Config{Address: srv.URL, Session: Session{Username: "Admin", Token: "a0", RefreshToken: "r0"},
		OnSession: func(s Session) error { saved = append(saved, s.Token+"/"+s.RefreshToken); return nil }})
	for range 3 {
		if err := c.Refresh(context.Background()); err != nil {
			t.Fatalf("refresh %d: %v", n+1, err)
		}
	}
	if got := strings.Join(saved, " "); got != "a1/r1 a2/r2 a3/r3" {
		t.Errorf("saved sessions %q, want each new refresh token", got)
	}
	if s := c.Session(); s.RefreshToken != "r3" || s.Username != "Admin" {
		t.Errorf("session %+v", s)
	}
}

// TestLogout: Logout sends both tokens, and forgets the session when the
// root ended it or no longer knows it, without calling OnSession.
func TestLogout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr bool
	}{
		{"ended", http.StatusNoContent, false},
		{"already over", http.StatusUnauthorized, false},
		{"root fails", http.StatusInternalServerError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body LogoutRequest
				_ = json.NewDecoder(r.Body).Decode(&body)
				got = r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + body.RefreshToken
				w.WriteHeader(tc.status)
				if tc.status >= 400 {
					w.Write([]byte(`{"error":"nope"}`))
				}
			}))
			defer srv.Close()
			calls := 0
			// The access token has expired: no refresh before the logout.
			c := NewClient(Config{Address: srv.URL, Session: Session{Token: "a", RefreshToken: "r", ExpiresAt: time.Now().Add(-time.Hour)},
				OnSession: func(Session) error { calls++; return nil }})
			err := c.Logout(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Logout = %v", err)
			}
			if got != "POST /api/auth/logout Bearer a r" {
				t.Errorf("request %q", got)
			}
			if forgotten := c.Session() == (Session{}); forgotten == tc.wantErr {
				t.Errorf("session after Logout: %+v", c.Session())
			}
			if calls != 0 {
				t.Errorf("OnSession called %d times", calls)
			}
			if !tc.wantErr {
				if err := c.Logout(context.Background()); !errors.Is(err, ErrNotLoggedIn) {
					t.Errorf("second Logout = %v", err)
				}
			}
		})
	}
}

// TestReload: before renewing, the client takes up a session another
// process saved meanwhile, rather than refresh with a spent token.
func TestReload(t *testing.T) {
	for _, tc := range []struct {
		name          string
		saved         Session
		wantRefreshes int
		wantToken     string
	}{
		{"saved session still fresh: used as it is", Session{Token: "access1", RefreshToken: "r1", ExpiresAt: time.Now().Add(time.Hour)}, 0, "access1"},
		{"saved session expired: refreshed with its token", Session{Token: "access1", RefreshToken: "r1", ExpiresAt: time.Now().Add(-time.Hour)}, 1, "access2"},
		{"nothing newer saved", Session{Token: "access0", RefreshToken: "r0"}, 1, "access2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refreshes := 0
			valid := map[string]bool{"r0": true, "r1": true} // which refresh tokens the root takes
			if tc.saved.RefreshToken == "r1" {
				valid["r0"] = false // spent by the other process
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				switch strings.TrimSuffix(r.URL.Path, "/") {
				case "/api/auth/refresh":
					if !valid[auth] {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					refreshes++
					json.NewEncoder(w).Encode(Tokens{Token: "access2", RefreshToken: "r2", ExpiresIn: 900})
				case "/api/applications":
					if auth != tc.wantToken {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					w.Write([]byte(`[]`))
				}
			}))
			defer srv.Close()
			c := NewClient(Config{Address: srv.URL,
				Session: Session{Token: "access0", RefreshToken: "r0", ExpiresAt: time.Now().Add(-time.Minute)},
				Reload:  func() (Session, error) { return tc.saved, nil }})
			if _, err := c.Applications(context.Background()); err != nil {
				t.Fatalf("Applications: %v", err)
			}
			if refreshes != tc.wantRefreshes || c.Session().Token != tc.wantToken {
				t.Errorf("%d refreshes, token %q; want %d, %q", refreshes, c.Session().Token, tc.wantRefreshes, tc.wantToken)
			}
		})
	}
}
