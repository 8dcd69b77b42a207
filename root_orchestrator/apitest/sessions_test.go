package apitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// refresh trades a refresh token and returns the status and new tokens.
func (r *root) refresh(tok string) (int, api.Tokens) {
	r.t.Helper()
	var out api.Tokens
	resp := r.do("POST", "/api/auth/refresh", tok, nil)
	if resp.Status == http.StatusOK {
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			r.t.Fatalf("refresh answer: %v", err)
		}
	}
	return resp.Status, out
}

// works reports whether an access token is accepted.
func (r *root) works(tok string) bool {
	r.t.Helper()
	resp := r.do("GET", "/api/applications", tok, nil)
	if resp.Status != http.StatusOK && resp.Status != http.StatusUnauthorized {
		r.t.Fatalf("GET /api/applications: %s", resp)
	}
	return resp.Status == http.StatusOK
}

// kid is the key id in a token's header.
func kid(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}

// TestRefreshRotatesAndReuseRevokesTheSession: a refresh spends its token;
// presenting it again ends the whole session (every access and refresh
// token of it), not other sessions; of concurrent refreshes with one token
// only one wins; all of it survives a restart.
func TestRefreshRotatesAndReuseRevokesTheSession(t *testing.T) {
	r := startRoot(t, "", nil)
	pw := r.adminPassword()
	t0 := r.login("Admin", pw)
	other := r.login("Admin", pw)

	code, t1 := r.refresh(t0.RefreshToken)
	if code != http.StatusOK || t1.RefreshToken == "" || t1.RefreshToken == t0.RefreshToken {
		t.Fatalf("refresh: %d, new refresh token %q", code, t1.RefreshToken)
	}
	code, t2 := r.refresh(t1.RefreshToken)
	if code != http.StatusOK || !r.works(t2.Token) || !r.works(t0.Token) {
		t.Fatalf("second refresh: %d, or the session's access tokens are refused", code)
	}
	// t0's refresh token is spent: the thief or the owner, whoever comes
	// second, ends the session.
	if code, _ := r.refresh(t0.RefreshToken); code != http.StatusUnauthorized {
		t.Fatalf("spent refresh token: %d, want 401", code)
	}
	for name, tok := range map[string]string{"first": t0.Token, "second": t1.Token, "latest": t2.Token} {
		if r.works(tok) {
			t.Errorf("%s access token of the revoked session still works", name)
		}
	}
	if code, _ := r.refresh(t2.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("latest refresh token of the revoked session: %d, want 401", code)
	}
	if !r.works(other.Token) {
		t.Error("another session of the same user was revoked too")
	}

	// Concurrent refreshes with one token: exactly one wins, and the others
	// are reuse, so the session ends.
	race := r.login("Admin", pw)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", r.URL+"/api/auth/refresh", nil)
			req.Header.Set("Authorization", "Bearer "+race.RefreshToken)
			resp, err := r.httpClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusOK] != 1 || codes[http.StatusUnauthorized] != 5 {
		t.Errorf("6 concurrent refreshes with one token: %v, want one 200 and five 401", codes)
	}
	if r.works(race.Token) {
		t.Error("the raced session still works")
	}

	// Across a restart: a live session refreshes, a spent token is still
	// spent, a revoked session stays revoked.
	live := r.login("Admin", pw)
	code, liveNext := r.refresh(live.RefreshToken)
	if code != http.StatusOK {
		t.Fatalf("refresh: %d", code)
	}
	r.restart(false)
	if code, _ := r.refresh(t2.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("revoked session's refresh token after a restart: %d", code)
	}
	if code, _ := r.refresh(liveNext.RefreshToken); code != http.StatusOK {
		t.Errorf("live session's refresh token after a restart: %d", code)
	}
	if code, _ := r.refresh(live.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("spent refresh token after a restart: %d", code)
	}
}

// TestLogout: POST /api/auth/logout ends the session of the access token
// and of the refresh token in the body (either suffices); other sessions
// go on.
func TestLogout(t *testing.T) {
	r := startRoot(t, "", nil)
	pw := r.adminPassword()
	a, b, c := r.login("Admin", pw), r.login("Admin", pw), r.login("Admin", pw)

	if resp := r.do("POST", "/api/auth/logout", "", nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("logout without a token: %s", resp)
	}
	if resp := r.do("POST", "/api/auth/logout", tamper(a.Token), api.LogoutRequest{RefreshToken: tamper(a.RefreshToken)}); resp.Status != http.StatusUnauthorized {
		t.Errorf("logout with forged tokens: %s", resp)
	}
	// The refresh token alone, as a client whose access token expired.
	if resp := r.do("POST", "/api/auth/logout", "", api.LogoutRequest{RefreshToken: c.RefreshToken}); resp.Status != http.StatusNoContent {
		t.Fatalf("logout with the refresh token: %s", resp)
	}
	if r.works(c.Token) {
		t.Error("access token works after a logout with its refresh token")
	}
	if !r.works(a.Token) {
		t.Fatal("a logout ended another session")
	}
	if resp := r.do("POST", "/api/auth/logout", a.Token, nil); resp.Status != http.StatusNoContent {
		t.Fatalf("logout: %s", resp)
	}
	if r.works(a.Token) {
		t.Error("access token works after logout")
	}
	if code, _ := r.refresh(a.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("refresh token after logout: %d", code)
	}
	if !r.works(b.Token) {
		t.Fatal("another session ended with the logout")
	}

	// Another user's refresh token in the body is refused and ends nothing.
	userTok := r.newUser(b.Token, "bob")
	if resp := r.do("POST", "/api/auth/logout", userTok, api.LogoutRequest{RefreshToken: b.RefreshToken}); resp.Status != http.StatusBadRequest {
		t.Errorf("logout with another user's refresh token: %s", resp)
	}
	if !r.works(b.Token) {
		t.Fatal("the refused logout ended the session it named")
	}

	// The client: Logout ends the session at the root and forgets it.
	ctx, cancel := callCtx()
	defer cancel()
	var saved []api.Session
	cl := r.started.API(api.Config{Session: api.Session{Token: b.Token, RefreshToken: b.RefreshToken},
		OnSession: func(s api.Session) error { saved = append(saved, s); return nil }})
	if err := cl.Logout(ctx); err != nil {
		t.Fatalf("client Logout: %v", err)
	}
	if s := cl.Session(); s.Token != "" || s.RefreshToken != "" {
		t.Errorf("client keeps the session after Logout: %+v", s)
	}
	if r.works(b.Token) {
		t.Error("access token works after the client's logout")
	}
	if code, _ := r.refresh(b.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("refresh token after the client's logout: %d", code)
	}
	if err := cl.Logout(ctx); err != api.ErrNotLoggedIn {
		t.Errorf("second Logout = %v, want ErrNotLoggedIn", err)
	}
}

// TestSigningKeyRotation: tokens name their key; after a rotation (through
// the API, then at a restart with --rotate-signing-key) new tokens carry
// the new key's id and tokens of the earlier keys keep working, across
// restarts; a retired key is dropped once its tokens have expired.
func TestSigningKeyRotation(t *testing.T) {
	r := startRoot(t, "", nil)
	pw := r.adminPassword()
	t0 := r.login("Admin", pw)
	var keys []api.SigningKey
	r.must("GET", "/api/auth/keys", t0.Token, nil, &keys)
	if len(keys) != 1 || !keys[0].Current || keys[0].ID != kid(t, t0.Token) {
		t.Fatalf("keys %+v; token's kid %q", keys, kid(t, t0.Token))
	}
	user := r.newUser(t0.Token, "carol")
	if resp := r.do("POST", "/api/auth/keys/rotate", user, nil); resp.Status != http.StatusForbidden {
		t.Errorf("rotation by a user: %s", resp)
	}
	r.must("POST", "/api/auth/keys/rotate", t0.Token, nil, &keys)
	if len(keys) != 2 || keys[0].Current || keys[0].RetiredAt == nil || !keys[1].Current {
		t.Fatalf("keys after rotation: %+v", keys)
	}
	t1 := r.login("Admin", pw)
	if kid(t, t1.Token) != keys[1].ID || kid(t, t1.Token) == kid(t, t0.Token) {
		t.Errorf("new token's kid %q, want the new key %q", kid(t, t1.Token), keys[1].ID)
	}
	if !r.works(t0.Token) || !r.works(t1.Token) {
		t.Fatal("a token of the old or the new key is refused after the rotation")
	}

	r.restart(false)
	if !r.works(t0.Token) || !r.works(t1.Token) {
		t.Fatal("a token of the old or the new key is refused after a restart")
	}
	if code, next := r.refresh(t0.RefreshToken); code != http.StatusOK || kid(t, next.RefreshToken) != keys[1].ID {
		t.Errorf("refresh with a token of the old key: %d", code)
	}

	r.args = []string{"--rotate-signing-key"}
	r.restart(false)
	r.must("GET", "/api/auth/keys", t1.Token, nil, &keys)
	if len(keys) != 3 || !keys[2].Current {
		t.Fatalf("keys after a restart with --rotate-signing-key: %+v", keys)
	}
	t2 := r.login("Admin", pw)
	if kid(t, t2.Token) != keys[2].ID || !r.works(t0.Token) || !r.works(t1.Token) || !r.works(t2.Token) {
		t.Error("tokens of three keys do not all work")
	}

	// Short lifetimes: the retired key goes once its tokens are dead.
	s := startRoot(t, "", nil, "--access-ttl", "1s", "--refresh-ttl", "2s")
	adm := s.login("Admin", s.adminPassword())
	s.must("POST", "/api/auth/keys/rotate", adm.Token, nil, &keys)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fresh := s.login("Admin", s.adminPassword())
		s.must("GET", "/api/auth/keys", fresh.Token, nil, &keys)
		if len(keys) == 1 && keys[0].Current {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retired key not dropped after its tokens expired: %+v", keys)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// loginFrom logs in from a local address (127.0.0.x), with an
// X-Forwarded-For header when xff is not empty.
// clientFrom is an HTTP client of the root from the local address,
// kept per root and address so that its connection is reused (a TLS
// handshake per login would slow the guessing the tests time).
func (r *root) clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	fromMu.Lock()
	defer fromMu.Unlock()
	key := r.URL + " " + local
	if c, ok := fromClients[key]; ok {
		return c
	}
	tc, err := r.started.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}}
	fromClients[key] = c
	return c
}

var (
	fromMu      sync.Mutex
	fromClients = map[string]*http.Client{}
)

func loginFrom(t *testing.T, r *root, local, xff, user, pw string) (int, string) {
	t.Helper()
	client := r.clientFrom(t, local)
	url := r.URL
	body, _ := json.Marshal(api.LoginRequest{Username: user, Password: pw})
	req, _ := http.NewRequestWithContext(context.Background(), "POST", url+"/api/auth/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLoginLimitsPerUserName: wrong passwords for one user name from many
// addresses meet a limit of the name, the same for a name that exists and
// one that does not; other names are not held back, and a successful login
// empties the name's failures.
func TestLoginLimitsPerUserName(t *testing.T) {
	r := startRoot(t, "", nil)
	pw := r.adminPassword()
	r.newUser(r.adminToken(), "dave")
	// 25 failures from 5 addresses (under each address's limit of 10).
	guess := func(user string) map[int]int {
		codes := map[int]int{}
		for i := range 25 {
			code, _ := loginFrom(t, r, "127.0.0."+string(rune('2'+i%5)), "", user, "wrong-password")
			codes[code]++
		}
		return codes
	}
	existing, missing := guess("dave"), guess("nobody")
	if existing[http.StatusUnauthorized] != 20 || existing[http.StatusTooManyRequests] != 5 {
		t.Errorf("25 wrong passwords for dave from 5 addresses: %v, want 20 × 401 and 5 × 429", existing)
	}
	if len(missing) != len(existing) || missing[http.StatusUnauthorized] != existing[http.StatusUnauthorized] {
		t.Errorf("an unknown user name is limited differently (%v) from a known one (%v)", missing, existing)
	}
	if code, body := loginFrom(t, r, "127.0.0.8", "", "dave", "pw-dave-secret"); code != http.StatusTooManyRequests || !strings.Contains(body, "user name") {
		t.Errorf("dave's right password from a fresh address during the limit: %d %s", code, body)
	}
	if code, _ := loginFrom(t, r, "127.0.0.8", "", "Admin", pw); code != http.StatusOK {
		t.Errorf("another user during dave's limit: %d", code)
	}

	// A success empties the name's failures.
	r.newUser(r.adminToken(), "erin")
	for i := range 15 {
		if code, _ := loginFrom(t, r, "127.0.1."+string(rune('1'+i%5)), "", "erin", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d for erin: %d", i, code)
		}
	}
	if code, _ := loginFrom(t, r, "127.0.1.9", "", "erin", "pw-erin-secret"); code != http.StatusOK {
		t.Fatalf("erin's right password: %d", code)
	}
	for i := range 15 {
		if code, _ := loginFrom(t, r, "127.0.2."+string(rune('1'+i%5)), "", "erin", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d for erin after her login: %d, want 401 (the success reset her failures)", i, code)
		}
	}
}

// TestTrustedProxies: X-Forwarded-For names the client only when the
// connection comes from a proxy given in --trusted-proxies.
func TestTrustedProxies(t *testing.T) {
	r := startRoot(t, "", nil, "--trusted-proxies", "127.0.0.1,10.9.0.0/16")
	pw := r.adminPassword()
	for range 10 {
		if code, _ := loginFrom(t, r, "127.0.0.1", "192.0.2.1, 10.9.0.5", "Admin", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password through the proxy: %d", code)
		}
	}
	if code, body := loginFrom(t, r, "127.0.0.1", "192.0.2.1", "Admin", pw); code != http.StatusTooManyRequests || !strings.Contains(body, "address") {
		t.Errorf("client 192.0.2.1 after 10 failures: %d %s, want 429 for its address", code, body)
	}
	if code, _ := loginFrom(t, r, "127.0.0.1", "192.0.2.2", "Admin", pw); code != http.StatusOK {
		t.Errorf("client 192.0.2.2 through the same proxy: %d", code)
	}
	// An untrusted peer's header is ignored: 127.0.0.3 is its own client.
	if code, _ := loginFrom(t, r, "127.0.0.3", "192.0.2.1", "Admin", pw); code != http.StatusOK {
		t.Errorf("untrusted peer claiming 192.0.2.1: %d, want 200 (header ignored)", code)
	}
}
