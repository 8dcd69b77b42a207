// Package apitest runs thicket-root as a real process, with its embedded
// store, and checks its REST API as a client would.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

var rootBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thicket-apitest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rootBin = filepath.Join(dir, "thicket-root")
	build := exec.Command("go", "build", "-o", rootBin, "../cmd/thicket-root")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build thicket-root:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// root is a running thicket-root process.
type root struct {
	t       testing.TB
	URL     string
	DataDir string
	args    []string
	env     []string
	cmd     *exec.Cmd
	logs    *syncBuffer
	waited  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRoot starts thicket-root on a fresh data dir (or dataDir if given)
// and waits until it is healthy. It is stopped when the test ends.
func startRoot(t testing.TB, dataDir string, env []string, args ...string) *root {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	r := &root{t: t, DataDir: dataDir, args: args, env: env}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *root) start() {
	t := r.t
	t.Helper()
	addr := freePort(t)
	r.URL = "http://" + addr
	args := append([]string{"--listen", addr, "--data-dir", r.DataDir}, r.args...)
	r.cmd = exec.Command(rootBin, args...)
	r.cmd.Env = append(os.Environ(), r.env...)
	r.logs = &syncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start thicket-root: %v", err)
	}
	r.waited = make(chan struct{})
	go func() { r.cmd.Wait(); close(r.waited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(r.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.waited:
			t.Fatalf("thicket-root exited during start:\n%s", r.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("thicket-root not healthy after 60s:\n%s", r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process gracefully (SIGTERM) and waits for it.
func (r *root) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.waited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.waited
		r.t.Errorf("thicket-root did not stop within 30s of SIGTERM")
	}
	r.cmd = nil
}

// kill ends the process with SIGKILL, as a crash would.
func (r *root) kill() {
	_ = r.cmd.Process.Kill()
	<-r.waited
	r.cmd = nil
}

// restart stops (gracefully or not) and starts again on the same data dir.
func (r *root) restart(crash bool) {
	if crash {
		r.kill()
	} else {
		r.stop()
	}
	r.start()
}

func (r *root) adminPassword() string {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.DataDir, "admin-password"))
	if err != nil {
		r.t.Fatalf("read admin password: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// response is an HTTP answer.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// errorBody decodes the JSON error body.
func (r response) errorBody(t *testing.T) api.Error {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error body (%v): %s", err, r)
	}
	return e
}

// callCtx bounds one call to the API.
func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// client is a client of the root that sends token as it is (none when
// empty) and never renews it.
func (r *root) client(token string) *api.Client {
	return api.NewClient(api.Config{Address: r.URL}).WithToken(token)
}

// do sends a request and returns the answer, whatever its status. body may
// be nil, a []byte or string sent as it is, or a value to marshal.
func (r *root) do(method, path, token string, body any) response {
	r.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := r.client(token).Raw(ctx, method, path, body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return response{Status: resp.Status, Body: resp.Body, Header: resp.Header}
}

// must sends a request and fails the test unless the answer is 200; it
// decodes the body into out if out is not nil.
func (r *root) must(method, path, token string, body, out any) {
	r.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	if err := r.client(token).Do(ctx, method, path, body, out); err != nil {
		r.t.Fatalf("%s %s: want 200, got %v", method, path, err)
	}
}

func (r *root) login(user, pw string) api.Tokens {
	r.t.Helper()
	var tok api.Tokens
	r.must("POST", "/api/auth/login", "", api.LoginRequest{Username: user, Password: pw}, &tok)
	return tok
}

func (r *root) adminToken() string {
	r.t.Helper()
	return r.login("Admin", r.adminPassword()).Token
}

// newUser creates a user through the admin and returns a token for it.
func (r *root) newUser(admin, name string) string {
	r.t.Helper()
	pw := "pw-" + name + "-secret"
	ctx, cancel := callCtx()
	defer cancel()
	if _, err := r.client(admin).CreateUser(ctx, api.NewUser{Username: name, Password: pw, Role: api.RoleUser}); err != nil {
		r.t.Fatalf("create user %s: %v", name, err)
	}
	return r.login(name, pw).Token
}

// testSLA returns a valid SLA with one application of the given name whose two
// services use no fixed service IP.
func testSLA(app string) map[string]any {
	svc := func(name string) map[string]any {
		return map[string]any{
			"microserviceID": "", "microservice_name": name, "microservice_namespace": "test",
			"virtualization": "container", "cmd": []string{}, "memory": 100, "vcpus": 1,
			"vgpus": 0, "vtpus": 0, "bandwidth_in": 0, "bandwidth_out": 0, "storage": 0,
			"code": "docker.io/library/nginx:latest", "state": "", "port": "80:80/tcp",
			"added_files": []string{}, "constraints": []any{},
		}
	}
	return map[string]any{
		"sla_version": "v2.0", "customerID": "Admin",
		"applications": []any{map[string]any{
			"applicationID": "", "application_name": app, "application_namespace": "test",
			"application_desc": "test application", "microservices": []any{svc("web"), svc("db")},
		}},
	}
}

// createApp posts an SLA and returns the created application (by name).
func (r *root) createApp(token string, body any, name string) api.Application {
	r.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	app, err := r.client(token).CreateApplication(ctx, body, name)
	if err != nil {
		r.t.Fatalf("create application %q: %v", name, err)
	}
	return *app
}

// snapshot returns everything the admin can see, to compare before and
// after a failed request.
func (r *root) snapshot(admin string) string {
	r.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	c := r.client(admin)
	apps, err := c.Applications(ctx)
	if err != nil {
		r.t.Fatalf("applications: %v", err)
	}
	var b strings.Builder
	for _, a := range apps {
		j, _ := json.Marshal(a)
		b.Write(j)
		svcs, err := c.Services(ctx, a.ApplicationID)
		if err != nil {
			r.t.Fatalf("services of %s: %v", a.ApplicationID, err)
		}
		for _, s := range svcs {
			j, _ := json.Marshal(s)
			b.Write(j)
		}
	}
	return b.String()
}

// waitService polls GET /api/service/{id} until cond holds, for at most a
// minute, and returns the service.
func (r *root) waitService(token, id, what string, cond func(api.Service) bool) api.Service {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	c := r.client(token)
	for {
		ctx, cancel := callCtx()
		s, err := c.Service(ctx, id)
		cancel()
		if err != nil {
			r.t.Fatalf("service %s: %v", id, err)
		}
		if cond(*s) {
			return *s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("service %s: not %s within a minute: %+v", id, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allInstances reports whether every instance of s has the status.
func allInstances(s api.Service, status string) bool {
	for _, in := range s.InstanceList {
		if in.Status != status {
			return false
		}
	}
	return true
}
