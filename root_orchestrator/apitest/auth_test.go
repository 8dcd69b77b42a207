package apitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

func TestFirstStartCreatesAdminWithPrivatePasswordFile(t *testing.T) {
	r := startRoot(t, "", nil)
	fi, err := os.Stat(filepath.Join(r.DataDir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-password mode = %v, want 0600", fi.Mode().Perm())
	}
	pw := r.adminPassword()
	if len(pw) < 16 {
		t.Errorf("generated password %q is too short", pw)
	}
	if strings.Contains(r.logs.String(), pw) {
		t.Errorf("the admin password appears in the log")
	}
	tok := r.login("Admin", pw)
	if tok.Token == "" || tok.RefreshToken == "" || tok.Role != api.RoleAdmin {
		t.Errorf("login answer %+v lacks tokens or admin role", tok)
	}
	// The well-known default of the reference must not work.
	if resp := r.do("POST", "/api/auth/login", "", api.LoginRequest{Username: "Admin", Password: "Admin"}); resp.Status != http.StatusUnauthorized {
		t.Errorf("Admin/Admin: want 401, got %s", resp)
	}
}

func TestAdminPasswordFromEnvironment(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=correct-horse-battery"})
	if _, err := os.Stat(filepath.Join(r.DataDir, "admin-password")); !os.IsNotExist(err) {
		t.Errorf("admin-password file written although the password came from the environment (err=%v)", err)
	}
	r.login("Admin", "correct-horse-battery")
	if strings.Contains(r.logs.String(), "correct-horse-battery") {
		t.Errorf("the admin password appears in the log")
	}
}

func TestLoginFailures(t *testing.T) {
	r := startRoot(t, "", nil)
	cases := []struct {
		name string
		body any
		want int
	}{
		{"wrong password", api.LoginRequest{Username: "Admin", Password: "not-the-password"}, http.StatusUnauthorized},
		{"unknown user", api.LoginRequest{Username: "nobody", Password: "whatever-it-is"}, http.StatusUnauthorized},
		{"empty password", api.LoginRequest{Username: "Admin"}, http.StatusBadRequest},
		{"malformed JSON", "{\"username\":", http.StatusBadRequest},
		{"empty body", nil, http.StatusBadRequest},
		{"wrong type", `{"username": 5, "password": "x"}`, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := r.do("POST", "/api/auth/login", "", c.body)
			if resp.Status != c.want {
				t.Fatalf("want %d, got %s", c.want, resp)
			}
			resp.errorBody(t)
		})
	}
}

// tamper changes one character of a token's signature.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 5
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestTokensAreChecked(t *testing.T) {
	r := startRoot(t, "", nil)
	tok := r.login("Admin", r.adminPassword())
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"Admin","role":"admin","kind":"access","iss":"thicket-root","exp":4102444800}`))
	other := startRoot(t, "", nil) // a root with another signing key
	cases := []struct{ name, token string }{
		{"missing", ""},
		{"garbage", "not-a-jwt"},
		{"tampered signature", tamper(tok.Token)},
		{"alg none", header + "." + claims + "."},
		{"refresh token used as access token", tok.RefreshToken},
		{"signed by another root", other.adminToken()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/api/applications/", "/api/services/", "/api/clusters/", "/api/users/"} {
				if resp := r.do("GET", path, c.token, nil); resp.Status != http.StatusUnauthorized {
					t.Errorf("GET %s: want 401, got %s", path, resp)
				}
			}
		})
	}
	if resp := r.do("GET", "/api/applications/", tok.Token, nil); resp.Status != http.StatusOK {
		t.Errorf("valid token refused: %s", resp)
	}
}

func TestExpiredTokensAreRefusedAndRefreshWorks(t *testing.T) {
	r := startRoot(t, "", nil, "--access-ttl", "1s")
	tok := r.login("Admin", r.adminPassword())
	if tok.ExpiresIn != 1 {
		t.Errorf("expires_in = %d, want 1", tok.ExpiresIn)
	}
	time.Sleep(2100 * time.Millisecond)
	if resp := r.do("GET", "/api/applications/", tok.Token, nil); resp.Status != http.StatusUnauthorized {
		t.Fatalf("expired token: want 401, got %s", resp)
	}
	// The reference takes the refresh token as a bearer token.
	var fresh api.Tokens
	r.must("POST", "/api/auth/refresh", tok.RefreshToken, nil, &fresh)
	r.must("GET", "/api/applications/", fresh.Token, nil, nil)
	// It may also come in the body.
	var fresh2 api.Tokens
	r.must("POST", "/api/auth/refresh/", "", map[string]string{"refresh_token": fresh.RefreshToken}, &fresh2)
	r.must("GET", "/api/applications/", fresh2.Token, nil, nil)
	// An access token is no refresh token.
	if resp := r.do("POST", "/api/auth/refresh", fresh2.Token, nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("access token accepted for refresh: %s", resp)
	}
	if resp := r.do("POST", "/api/auth/refresh", tamper(fresh2.RefreshToken), nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("tampered refresh token accepted: %s", resp)
	}
}

func TestUsersAndRoles(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")

	// Users cannot manage users.
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/users"}, {"POST", "/api/users/"}, {"DELETE", "/api/user/Admin"}, {"PUT", "/api/user/Admin"},
	} {
		if resp := r.do(req.method, req.path, alice, map[string]string{"username": "x", "password": "long-enough-pw"}); resp.Status != http.StatusForbidden {
			t.Errorf("%s %s as user: want 403, got %s", req.method, req.path, resp)
		}
	}
	// Bad input for a new user.
	for _, body := range []api.NewUser{
		{Username: "bob", Password: "short"},
		{Username: "bad name!", Password: "long-enough-pw"},
		{Username: "bob", Password: "long-enough-pw", Role: "root"},
	} {
		if resp := r.do("POST", "/api/users", admin, body); resp.Status != http.StatusBadRequest {
			t.Errorf("create %+v: want 400, got %s", body, resp)
		}
	}
	if resp := r.do("POST", "/api/users", admin, api.NewUser{Username: "alice", Password: "another-password"}); resp.Status != http.StatusConflict {
		t.Errorf("duplicate user: want 409, got %s", resp)
	}
	var users []api.User
	r.must("GET", "/api/users/", admin, nil, &users)
	if len(users) != 2 || users[0].Username != "Admin" || users[1].Username != "alice" || users[1].Role != api.RoleUser {
		t.Errorf("users = %+v", users)
	}
	if strings.Contains(string(r.do("GET", "/api/users", admin, nil).Body), "$2") {
		t.Errorf("user list exposes password hashes")
	}
	// A user sees their own account, not others'.
	r.must("GET", "/api/user/alice", alice, nil, nil)
	if resp := r.do("GET", "/api/user/Admin", alice, nil); resp.Status != http.StatusForbidden {
		t.Errorf("alice reads Admin: want 403, got %s", resp)
	}
	// A role change applies to tokens already issued.
	r.must("PUT", "/api/user/alice", admin, map[string]string{"role": "admin"}, nil)
	r.must("GET", "/api/users", alice, nil, nil)
	r.must("PUT", "/api/user/alice", admin, map[string]string{"role": "user"}, nil)
	if resp := r.do("GET", "/api/users", alice, nil); resp.Status != http.StatusForbidden {
		t.Errorf("demoted alice lists users: want 403, got %s", resp)
	}

	// Alice changes her own password (reference field names); her tokens
	// issued before stop working.
	old := r.login("alice", "pw-alice-secret")
	if resp := r.do("POST", "/api/user/alice", alice, map[string]string{"oldPassword": "wrong-old-pw", "newPassword": "alice-new-password"}); resp.Status != http.StatusBadRequest {
		t.Errorf("wrong old password: want 400, got %s", resp)
	}
	r.must("POST", "/api/user/alice", alice, map[string]string{"oldPassword": "pw-alice-secret", "newPassword": "alice-new-password"}, nil)
	if resp := r.do("POST", "/api/auth/login", "", api.LoginRequest{Username: "alice", Password: "pw-alice-secret"}); resp.Status != http.StatusUnauthorized {
		t.Errorf("old password still works: %s", resp)
	}
	if resp := r.do("POST", "/api/auth/refresh", old.RefreshToken, nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("refresh token from before the password change still works: %s", resp)
	}
	if resp := r.do("GET", "/api/applications", old.Token, nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("access token from before the password change still works: %s", resp)
	}
	alice = r.login("alice", "alice-new-password").Token
	r.must("GET", "/api/applications", alice, nil, nil)
	// Thicket's own field names work too.
	r.must("POST", "/api/user/alice", alice, map[string]string{"old_password": "alice-new-password", "password": "alice-newer-password"}, nil)
	alice = r.login("alice", "alice-newer-password").Token
	// Users cannot change another user's password.
	if resp := r.do("POST", "/api/user/Admin", alice, map[string]string{"oldPassword": "x", "newPassword": "alice-new-password"}); resp.Status != http.StatusForbidden {
		t.Errorf("alice changes Admin's password: want 403, got %s", resp)
	}

	// The admin resets her password and makes her an admin.
	r.must("PUT", "/api/user/alice/", admin, map[string]string{"password": "reset-by-admin", "role": "admin"}, nil)
	if tok := r.login("alice", "reset-by-admin"); tok.Role != api.RoleAdmin {
		t.Errorf("role after update = %q", tok.Role)
	}
	if resp := r.do("PUT", "/api/user/nobody", admin, map[string]string{"password": "reset-by-admin"}); resp.Status != http.StatusNotFound {
		t.Errorf("reset unknown user: want 404, got %s", resp)
	}
	// Delete answers the remaining users; an admin cannot delete themself,
	// nor a user who still owns applications.
	if resp := r.do("DELETE", "/api/user/Admin", admin, nil); resp.Status != http.StatusBadRequest {
		t.Errorf("self-delete: want 400, got %s", resp)
	}
	alice = r.login("alice", "reset-by-admin").Token
	app := r.createApp(alice, testSLA("owned"), "owned")
	if resp := r.do("DELETE", "/api/user/alice", admin, nil); resp.Status != http.StatusConflict {
		t.Errorf("delete a user owning applications: want 409, got %s", resp)
	}
	r.must("DELETE", "/api/application/"+app.ApplicationID, alice, nil, nil)
	r.must("DELETE", "/api/user/alice", admin, nil, &users)
	if resp := r.do("GET", "/api/applications", alice, nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("deleted user's token still works: %s", resp)
	}
	if len(users) != 1 || users[0].Username != "Admin" {
		t.Errorf("after delete users = %+v", users)
	}
	if resp := r.do("POST", "/api/auth/login", "", api.LoginRequest{Username: "alice", Password: "reset-by-admin"}); resp.Status != http.StatusUnauthorized {
		t.Errorf("deleted user logs in: %s", resp)
	}
	if resp := r.do("DELETE", "/api/user/alice", admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("delete twice: want 404, got %s", resp)
	}
}

func TestResetAdminPassword(t *testing.T) {
	r := startRoot(t, "", nil)
	old := r.adminPassword()
	oldTok := r.login("Admin", old)
	r.args = []string{"--reset-admin-password"}
	r.restart(false)
	pw := r.adminPassword()
	if pw == old {
		t.Fatalf("password not changed by --reset-admin-password")
	}
	if resp := r.do("POST", "/api/auth/login", "", api.LoginRequest{Username: "Admin", Password: old}); resp.Status != http.StatusUnauthorized {
		t.Errorf("old password still works: %s", resp)
	}
	if resp := r.do("GET", "/api/applications", oldTok.Token, nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("token from before the reset still works: %s", resp)
	}
	r.login("Admin", pw)
	// Without the flag a restart changes nothing.
	r.args = nil
	r.restart(false)
	if r.adminPassword() != pw {
		t.Errorf("password changed by a plain restart")
	}
	r.login("Admin", pw)
}

// TestPasswordGuessingIsLimited: a client guessing passwords as fast as it
// can gets 429 with Retry-After once it had its share of failures (then
// even the right password waits), while another address still logs in and
// the root keeps answering.
func TestPasswordGuessingIsLimited(t *testing.T) {
	r := startRoot(t, "", nil)
	login := func(client *http.Client, pw string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"username": "Admin", "password": pw})
		resp, err := client.Post(r.URL+"/api/auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	// 8 guessers at once from 127.0.0.1, 60 guesses; /healthz meanwhile.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60/8; i++ {
				code, ra := login(r.httpClient(), fmt.Sprintf("guess-%d-%d", g, i))
				mu.Lock()
				codes[code]++
				if code == http.StatusTooManyRequests {
					retryAfter = ra
				}
				mu.Unlock()
			}
		}()
	}
	var slowest time.Duration
	for done := false; !done; {
		t0 := time.Now()
		if res := r.do("GET", "/healthz", "", nil); res.Status != http.StatusOK {
			t.Errorf("healthz during the guessing: %s", res)
		}
		slowest = max(slowest, time.Since(t0))
		ch := make(chan struct{})
		go func() { wg.Wait(); close(ch) }()
		select {
		case <-ch:
			done = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	if codes[http.StatusUnauthorized] < 5 || codes[http.StatusUnauthorized] > 20 || codes[http.StatusTooManyRequests] < 30 {
		t.Errorf("answers to 56 wrong passwords from one address: %v, want about 10 × 401 and the rest 429", codes)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("429 with Retry-After %q", retryAfter)
	}
	if slowest > 5*time.Second {
		t.Errorf("healthz took up to %s while passwords were guessed", slowest)
	}
	if code, _ := login(r.httpClient(), r.adminPassword()); code != http.StatusTooManyRequests {
		t.Errorf("the right password from the guessing address: %d, want 429 until its bucket refills", code)
	}

	// Another address is not held back.
	tc, err := r.started.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	if code, _ := login(other, r.adminPassword()); code != http.StatusOK {
		t.Errorf("login from another address during the limit: %d", code)
	}
}
