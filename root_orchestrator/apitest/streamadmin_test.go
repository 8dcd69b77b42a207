package apitest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// rawStream is a live stream read as the bytes the root sends.
type rawStream struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{} // closed when the root ends the stream
}

func (s *rawStream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *rawStream) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// openRaw opens GET /api/events/stream with token and reads it until the
// root ends it or the test does; it returns once the hello arrived.
func (r *root) openRaw(t *testing.T, token string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", r.URL+"/api/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.httpClient().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("open a stream: %d", resp.StatusCode)
	}
	s := &rawStream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		b := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	waitFor(t, "the stream's hello", func() bool { return strings.Contains(s.text(), "event: hello") })
	return s
}

// count is how many batches so far name id (of kind).
func (w *watcher) count(kind, id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, b := range w.batches {
		for _, c := range b.Changes {
			if c.Kind == kind && c.ID == id {
				n++
			}
		}
	}
	return n
}

// kinds is the set of kinds of change the watcher got.
func (w *watcher) kinds() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for _, b := range w.batches {
		for _, c := range b.Changes {
			out[c.Kind] = true
		}
	}
	return out
}

// TestStreamAdminChanges: changes of users (created, quota, role, deleted)
// and of cluster join tokens (created, spent by a registration, revoked)
// reach admins' streams, named by the user's name and the token's id, never
// with the token's secret; a user's stream carries none of them, not even
// of their own account.
func TestStreamAdminChanges(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=stream-admin-password"})
	admin := r.login("Admin", "stream-admin-password").Token
	alice := r.newUser(admin, "alice")

	wadm, wa := r.watch(t, admin, ""), r.watch(t, alice, "")
	rawAdm, rawAlice := r.openRaw(t, admin), r.openRaw(t, alice)

	ctx, cancel := callCtx()
	defer cancel()
	if _, err := r.client(admin).CreateUser(ctx, api.NewUser{Username: "carol", Password: "carol-password", Role: api.RoleUser}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "carol's creation on the admin's stream", func() bool { return wadm.count(api.ChangeUser, "carol") >= 1 })
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 3}, nil)
	waitFor(t, "alice's quota on the admin's stream", func() bool { return wadm.count(api.ChangeUser, "alice") >= 1 })
	r.must("PUT", "/api/user/carol", admin, api.UserUpdate{Role: api.RoleAdmin}, nil)
	waitFor(t, "carol's role on the admin's stream", func() bool { return wadm.count(api.ChangeUser, "carol") >= 2 })
	r.must("DELETE", "/api/user/carol", admin, nil, nil)
	waitFor(t, "carol's deletion on the admin's stream", func() bool { return wadm.count(api.ChangeUser, "carol") >= 3 })

	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	r.must("POST", "/api/clusters/tokens", admin, map[string]any{"name": "site", "single_use": true}, &tok)
	waitFor(t, "the new join token on the admin's stream", func() bool { return wadm.count(api.ChangeJoinToken, tok.ID) >= 1 })
	r.must("POST", "/api/cluster/register", tok.Token, wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge1"}, nil)
	waitFor(t, "the spent join token on the admin's stream", func() bool { return wadm.count(api.ChangeJoinToken, tok.ID) >= 2 })
	r.must("DELETE", "/api/clusters/tokens/"+tok.ID, admin, nil, nil)
	waitFor(t, "the revoked join token on the admin's stream", func() bool { return wadm.count(api.ChangeJoinToken, tok.ID) >= 3 })
	waitFor(t, "the token's id in the admin's raw stream", func() bool { return strings.Contains(rawAdm.text(), tok.ID) })

	// Alice's own change reaches her after all of the above: by then she
	// would have had them.
	shop := r.createApp(alice, testSLA("shop"), "shop")
	waitFor(t, "alice's own application", func() bool { return wa.has(api.ChangeApplication, shop.ApplicationID) })
	waitFor(t, "alice's own application, raw", func() bool { return strings.Contains(rawAlice.text(), shop.ApplicationID) })
	for kind := range wa.kinds() {
		if kind == api.ChangeUser || kind == api.ChangeJoinToken {
			t.Errorf("alice's stream carries changes of kind %s: %+v", kind, wa.batches)
		}
	}
	for _, leak := range []string{"carol", `"alice"`, tok.ID, api.ChangeUser, api.ChangeJoinToken} {
		if strings.Contains(rawAlice.text(), leak) {
			t.Errorf("alice's raw stream contains %q:\n%s", leak, rawAlice.text())
		}
	}
	_, secret, _ := strings.Cut(tok.Token, "::")
	for name, raw := range map[string]string{"admin": rawAdm.text(), "alice": rawAlice.text()} {
		if secret == "" || strings.Contains(raw, secret) || strings.Contains(raw, tok.Token) {
			t.Errorf("the %s's raw stream contains the join token's secret (%q):\n%s", name, tok.Token, raw)
		}
	}
}

// TestStreamEndsAtOnce: a user's streams end at once (not at the next ping,
// 20 s later) when the user is deleted, their role or password changes, and
// a session's when it logs out; other users' and other sessions' streams
// go on.
func TestStreamEndsAtOnce(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=stream-admin-password"})
	admin := r.login("Admin", "stream-admin-password").Token
	bystander := r.openRaw(t, r.newUser(admin, "bob"))

	tests := []struct {
		name string
		act  func(user string, tok api.Tokens)
	}{
		{"deleted", func(user string, _ api.Tokens) { r.must("DELETE", "/api/user/"+user, admin, nil, nil) }},
		{"role changed", func(user string, _ api.Tokens) {
			r.must("PUT", "/api/user/"+user, admin, api.UserUpdate{Role: api.RoleAdmin}, nil)
		}},
		{"password reset by an admin", func(user string, _ api.Tokens) {
			r.must("PUT", "/api/user/"+user, admin, api.UserUpdate{Password: "another-password"}, nil)
		}},
		{"own password changed", func(user string, tok api.Tokens) {
			r.must("POST", "/api/user/"+user, tok.Token, api.PasswordChange{OldPassword: "pw-" + user + "-secret", NewPassword: "another-password"}, nil)
		}},
		{"logged out", func(_ string, tok api.Tokens) {
			if resp := r.do("POST", "/api/auth/logout", tok.Token, nil); resp.Status != http.StatusNoContent {
				t.Fatalf("logout: %s", resp)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "u" + string(rune('a'+i))
			r.newUser(admin, user)
			tok := r.login(user, "pw-"+user+"-secret")
			other := r.login(user, "pw-"+user+"-secret") // another session
			st, st2 := r.openRaw(t, tok.Token), r.openRaw(t, other.Token)
			tt.act(user, tok)
			select {
			case <-st.done:
			case <-time.After(5 * time.Second):
				t.Fatalf("the stream is still open 5 s later:\n%s", st.text())
			}
			if tt.name == "logged out" {
				time.Sleep(300 * time.Millisecond)
				if st2.ended() {
					t.Error("a logout ended the stream of another session")
				}
			} else {
				select {
				case <-st2.done:
				case <-time.After(5 * time.Second):
					t.Error("the stream of the user's other session is still open 5 s later")
				}
			}
		})
	}
	if bystander.ended() {
		t.Error("another user's stream ended")
	}
}
