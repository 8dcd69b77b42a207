// Package apitest runs thicket-root as a real process, with its embedded
// store, and checks its REST API as a client would.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// bin holds thicket-root, built once by TestMain.
var bin *testharness.Bin

func TestMain(m *testing.M) {
	os.Exit(testharness.Main(m, &bin, testharness.RootProgram))
}

// root is a running thicket-root process.
type root struct {
	t       testing.TB
	URL     string
	DataDir string
	// args are the command line's extra flags, at the next start too.
	args    []string
	started *testharness.Root
	logs    *testharness.Log
}

// startRoot starts thicket-root on a fresh data dir (or dataDir if given)
// and waits until it is healthy. It is stopped when the test ends.
func startRoot(t testing.TB, dataDir string, env []string, args ...string) *root {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	started, err := bin.StartRoot(context.Background(), testharness.RootOptions{DataDir: dataDir, Env: env, Args: args})
	if err != nil {
		t.Fatalf("start thicket-root: %v", err)
	}
	started.Proc.StopTimeout = 30 * time.Second
	r := &root{t: t, URL: started.URL, DataDir: dataDir, args: args, started: started, logs: started.Proc.Log()}
	t.Cleanup(r.stop)
	return r
}

// start starts the stopped root again on its data dir and waits until it
// is healthy.
func (r *root) start() {
	r.t.Helper()
	r.started.Args = r.args
	if err := r.started.Start(context.Background()); err != nil {
		r.t.Fatalf("start thicket-root: %v", err)
	}
	r.URL = r.started.URL
}

// stop ends the process gracefully (SIGTERM) and waits for it.
func (r *root) stop() {
	if err := r.started.Proc.Stop(); err != nil {
		r.t.Errorf("%v", err)
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (r *root) kill() { r.started.Proc.Kill() }

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
	pw, err := r.started.AdminPassword()
	if err != nil {
		r.t.Fatalf("read admin password: %v", err)
	}
	return pw
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
	return r.started.API(api.Config{}).WithToken(token)
}

// httpClient is an HTTP client that trusts the root's CA.
func (r *root) httpClient() *http.Client { return r.started.HTTPClient() }

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
