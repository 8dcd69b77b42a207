package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

const adminPassword = "dashboard-test-pass"

// bin holds thicket-root, built once by TestMain.
var bin *testharness.Bin

func TestMain(m *testing.M) {
	os.Exit(testharness.Main(m, &bin, testharness.RootProgram))
}

// stack is one thicket-root and the dashboard in front of it.
type stack struct {
	t       *testing.T
	dataDir string
	rootURL string // the root, which serves the dashboard at /
	token   string // an admin access token for checks through the API
	root    *testharness.Root
}

// startStack starts a fresh thicket-root (own data dir and port) and a
// dashboard server for it. Extra arguments go to thicket-root.
func startStack(t *testing.T, args ...string) *stack {
	t.Helper()
	r := bin.MustStartRoot(t, testharness.RootOptions{Env: []string{"THICKET_ADMIN_PASSWORD=" + adminPassword}, Args: args,
		Timeout: 2 * time.Minute})
	s := &stack{t: t, dataDir: r.DataDir, rootURL: r.URL, root: r}

	var tok struct{ Token string }
	if code := s.api("POST", "/api/auth/login", map[string]string{"username": "Admin", "password": adminPassword}, &tok); code != http.StatusOK {
		t.Fatalf("API login: %d", code)
	}
	s.token = tok.Token
	return s
}

// api calls the root's API directly with the admin token and decodes the
// answer into out (when not nil). It answers the status code.
func (s *stack) api(method, path string, body, out any) int {
	s.t.Helper()
	return s.apiWith(s.token, method, path, body, out)
}

// apiWith is api with another token.
func (s *stack) apiWith(token, method, path string, body, out any) int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.root.API(api.Config{}).WithToken(token).Do(ctx, method, path, body, out)
	var se *api.StatusError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &se):
		return se.Status
	}
	s.t.Fatalf("%s %s: %v", method, path, err)
	return 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// newBrowser opens the stack's dashboard in a new Chromium.
// It trusts exactly the key of the root's certificate.
func newBrowser(t *testing.T, s *stack, width, height int) *Browser {
	t.Helper()
	spki, err := s.root.LeafSPKI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return NewTrusting(t, s.rootURL, spki, width, height)
}
