package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestLogout: `thicket logout` ends the saved session at its root, with
// its tokens, and deletes it; a root that cannot be reached still gets the
// session deleted, with a warning.
func TestLogout(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	root := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body api.LogoutRequest
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls = append(calls, fmt.Sprintf("%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("Authorization"), body.RefreshToken))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer root.Close()
	down := fmt.Sprintf("http://127.0.0.1:%d", testharness.FreePort(t))

	for _, tc := range []struct {
		name, server, calls, warn string
	}{
		{"root answers", root.URL, "POST /api/auth/logout Bearer access-1 refresh-1", ""},
		{"root down", down, "", "warning: could not end the session at " + down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			dir := t.TempDir()
			err := config.Save(dir, &config.Credentials{Server: tc.server,
				Session: api.Session{Username: "Admin", Token: "access-1", RefreshToken: "refresh-1"}})
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main(context.Background(), "v1", []string{"--config", dir, "logout"}, strings.NewReader(""), &out, &errb)
			if code != ExitOK || !strings.Contains(out.String(), "Logged out.") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
			if got := strings.Join(calls, "\n"); got != tc.calls {
				t.Errorf("calls to the root: %q, want %q", got, tc.calls)
			}
			if tc.warn == "" && errb.Len() != 0 || !strings.Contains(errb.String(), tc.warn) {
				t.Errorf("stderr %q, want ~ %q", errb.String(), tc.warn)
			}
			if _, err := os.Stat(config.Path(dir)); !os.IsNotExist(err) {
				t.Errorf("credentials still saved: %v", err)
			}
		})
	}
}
