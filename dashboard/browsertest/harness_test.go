package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

const adminPassword = "dashboard-test-pass"

// rootBin is the thicket-root binary that TestMain builds.
var rootBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thicket-dashboard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rootBin = filepath.Join(dir, "thicket-root")
	if err := buildRoot(rootBin); err != nil {
		fmt.Fprintln(os.Stderr, "browsertest: building thicket-root:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildRoot builds thicket-root from the repository this package is in.
func buildRoot(out string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	ws := wd
	for {
		if _, err := os.Stat(filepath.Join(ws, "root_orchestrator", "cmd", "thicket-root")); err == nil {
			break
		}
		parent := filepath.Dir(ws)
		if parent == ws {
			return fmt.Errorf("no Thicket checkout above %s", wd)
		}
		ws = parent
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./root_orchestrator/cmd/thicket-root")
	cmd.Dir = ws
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// stack is one thicket-root and the dashboard in front of it.
type stack struct {
	t       *testing.T
	dataDir string
	rootURL string // the root, which serves the dashboard at /
	token   string // an admin access token for checks through the API
}

// startStack starts a fresh thicket-root (own data dir and port) and a
// dashboard server for it. Extra arguments go to thicket-root.
func startStack(t *testing.T, args ...string) *stack {
	t.Helper()
	dataDir := t.TempDir()
	addr := freePort(t)
	logFile, err := os.Create(filepath.Join(dataDir, "thicket-root.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rootBin, append([]string{"--listen", addr, "--data-dir", dataDir}, args...)...)
	cmd.Env = append(envWithout("THICKET_ADMIN_PASSWORD", "THICKET_LISTEN", "THICKET_DATA_DIR", "THICKET_MONGO_URL"),
		"THICKET_ADMIN_PASSWORD="+adminPassword)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("thicket-root log (last lines):\n%s", strings.Join(lines, "\n"))
		}
	})
	s := &stack{t: t, dataDir: dataDir, rootURL: "http://" + addr}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := http.Get(s.rootURL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("thicket-root exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("thicket-root not healthy after 2 minutes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := api.NewClient(api.Config{Address: s.rootURL}).WithToken(s.token).Do(ctx, method, path, body, out)
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
func newBrowser(t *testing.T, s *stack, width, height int) *Browser {
	return New(t, s.rootURL, width, height)
}
