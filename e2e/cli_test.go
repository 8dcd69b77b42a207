package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// buildCLI builds the thicket CLI once per test binary, beside the daemons.
func buildCLI(t *testing.T) string {
	t.Helper()
	if err := bin.Build(context.Background(), testharness.CLIProgram); err != nil {
		t.Fatal(err)
	}
	return bin.Path(testharness.CLIProgram)
}

// thicketCLI runs the CLI with its own config directory and an environment
// without THICKET_* variables.
type thicketCLI struct {
	t      *testing.T
	bin    string
	config string
}

func newCLI(t *testing.T) *thicketCLI {
	// A directory login creates, to see its mode.
	return &thicketCLI{t: t, bin: buildCLI(t), config: filepath.Join(t.TempDir(), "thicket")}
}

func (c *thicketCLI) cmd(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--config", c.config}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "THICKET_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// run runs the CLI to its end and returns stdout, stderr and the exit code.
func (c *thicketCLI) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		c.t.Fatalf("thicket %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("$ thicket %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// ok runs the CLI and fails the test unless it exits 0.
func (c *thicketCLI) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("thicket %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs the CLI, expects exit code 1 and returns stderr.
func (c *thicketCLI) fails(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code != 1 {
		c.t.Fatalf("thicket %s: exit %d, want 1\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return errs
}

// json runs the CLI with -o json and decodes its output into v.
func (c *thicketCLI) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("thicket %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mustContain fails unless s contains every one of want.
func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// exampleSLA is sla_examples/nginx.json with the test image and a host
// port of its own.
func exampleSLA(t *testing.T, s *system, hostPort int) string {
	raw, err := os.ReadFile(filepath.Join("..", "sla_examples", "nginx.json"))
	if err != nil {
		t.Fatal(err)
	}
	sla := strings.Replace(string(raw), `"docker.io/library/nginx:latest"`, fmt.Sprintf("%q", s.image), 1)
	sla = strings.Replace(sla, `"80:80/tcp"`, fmt.Sprintf(`"%d:8080/tcp"`, hostPort), 1)
	if !strings.Contains(sla, s.image) || !strings.Contains(sla, fmt.Sprintf("%d:8080", hostPort)) {
		t.Fatal("sla_examples/nginx.json no longer has the image and port this test replaces")
	}
	return sla
}

// slaOf is a one-application SLA of the test image.
func slaOf(s *system, app string, services ...map[string]any) string {
	for _, m := range services {
		m["microservice_namespace"] = "cli"
		m["virtualization"] = "container"
		if m["code"] == nil {
			m["code"] = s.image
		}
	}
	b, _ := json.Marshal(map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
		"application_name": app, "application_namespace": "cli", "application_desc": "cli e2e", "microservices": services}}})
	return string(b)
}

func writeSLA(t *testing.T, sla string) string {
	path := filepath.Join(t.TempDir(), "sla.json")
	writeFile(t, path, sla)
	return path
}

// TestCLI runs every command of the thicket CLI against a whole system: a
// root, a cluster and an overlay node running real containers.
func TestCLI(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("clicl", "")
	n := s.addOverlayNode(c, "c1", 51, 1024)
	s.waitNodes(map[string]int{"clicl": 1})
	th := newCLI(t)
	password := readFile(t, filepath.Join(s.rootDir, "admin-password"))
	creds := filepath.Join(th.config, "credentials.json")

	t.Run("login", func(t *testing.T) {
		th.t = t
		if _, errs, code := th.run("", "status", "--server", "http://127.0.0.1:1"); code != 1 ||
			!strings.Contains(errs, "cannot reach http://127.0.0.1:1") || strings.Count(errs, "\n") != 1 {
			t.Errorf("status of an unreachable server: exit %d, stderr %q", code, errs)
		}
		errs := th.fails("wrong-password\n", "login", "--server", s.rootURL, "--ca-file", s.started.CAFile(), "--password-stdin")
		mustContain(t, "wrong password", errs, "wrong username or password")
		if _, err := os.Stat(creds); err == nil {
			t.Error("a failed login saved credentials")
		}
		mustContain(t, "get before login", th.fails("", "get", "apps"), "not logged in")

		_, errs, code := th.run(password+"\n", "login", "--server", s.rootURL, "--ca-file", s.started.CAFile(), "-u", "Admin", "--password-stdin")
		if code != 0 {
			t.Fatalf("login: exit %d: %s", code, errs)
		}
		fi, err := os.Stat(creds)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("credentials file: %v %v", fi, err)
		}
		if fi, err := os.Stat(th.config); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("config directory: %v %v, want mode 0700", fi, err)
		}
		// Later commands use the saved server: no --server from here on.
		mustContain(t, "status", th.ok("status"), s.rootURL+" (ok)", "Admin (admin)", "1 active / 1", "applications  0")
		var st struct {
			Health   string `json:"health"`
			User     string `json:"user"`
			Clusters struct{ Active, Total int }
			Nodes    struct{ Active, Total int }
		}
		th.json(&st, "status")
		if st.Health != "ok" || st.User != "Admin" || st.Clusters.Active != 1 || st.Nodes.Total != 1 {
			t.Errorf("status -o json: %+v", st)
		}
	})

	// apply: progress until RUNNING, then the app answers on its host port.
	var nginxID string
	t.Run("apply", func(t *testing.T) {
		th.t = t
		out, errs, code := th.run(exampleSLA(t, s, 18091), "apply", "-f", "-", "--timeout", "2m")
		if code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
		}
		mustContain(t, "apply output", out, "application test/nginx created", "service nginx/nginx: ",
			"nginx/nginx #0  ", "-> RUNNING on node "+n.name+" (cluster clicl) 10.", "published "+n.addr+":18091",
			"1 instance running after")
		var svcs []api.Service
		th.json(&svcs, "get", "services", "nginx")
		if len(svcs) != 1 || len(svcs[0].InstanceList) != 1 || svcs[0].InstanceList[0].Status != wire.StatusRunning {
			t.Fatalf("get services nginx -o json: %+v", svcs)
		}
		nginxID = svcs[0].MicroserviceID
		if body, err := serves(svcs[0].InstanceList[0]); err != nil || !strings.Contains(body, "hello from") {
			t.Fatalf("the applied instance does not serve: %q %v", body, err)
		}
		// The validator's field errors reach the user.
		bad := strings.Replace(exampleSLA(t, s, 18092), `"application_name": "nginx"`, `"application_name": "bad name!"`, 1)
		bad = strings.Replace(bad, `"port": "18092:8080/tcp"`, `"port": "99999:1"`, 1)
		errs = th.fails("", "apply", "-f", writeSLA(t, bad))
		mustContain(t, "apply of an invalid SLA", errs, "invalid input", "applications[0].application_name", "applications[0].microservices[0].port")
	})
	if nginxID == "" {
		t.FailNow()
	}

	t.Run("get", func(t *testing.T) {
		th.t = t
		mustContain(t, "get apps", th.ok("get", "apps"), "ID", "NAME", "nginx", "Admin")
		var apps []api.Application
		th.json(&apps, "get", "apps")
		if len(apps) != 1 || apps[0].ApplicationName != "nginx" {
			t.Fatalf("get apps -o json: %+v", apps)
		}
		mustContain(t, "get services", th.ok("get", "services"), nginxID, "nginx/nginx", "RUNNING", "1/1", "10.30.0.80", s.image)
		mustContain(t, "get services APP-ID", th.ok("get", "services", apps[0].ApplicationID), nginxID)
		inst := th.ok("get", "instances")
		mustContain(t, "get instances", inst, "SERVICE_ID", nginxID, "RUNNING", n.name, "clicl", n.addr+":18091")
		if !regexp.MustCompile(`(?m)^nginx/nginx\s+` + nginxID + `\s+0\s+RUNNING\s`).MatchString(inst) {
			t.Errorf("get instances: no aligned row for instance 0:\n%s", inst)
		}
		for _, ref := range []string{nginxID, "nginx/nginx", "nginx"} {
			var docs []struct {
				ServiceID string `json:"microserviceID"`
				api.Instance
			}
			th.json(&docs, "get", "instances", ref)
			if len(docs) != 1 || docs[0].ServiceID != nginxID || docs[0].Status != wire.StatusRunning || docs[0].NodeName != n.name {
				t.Errorf("get instances %s -o json: %+v", ref, docs)
			}
		}
		mustContain(t, "get clusters", th.ok("get", "clusters"), "clicl", "lab-clicl", "yes", "1/1")
		var cls []api.Cluster
		th.json(&cls, "get", "clusters")
		if len(cls) != 1 || cls[0].ClusterName != "clicl" || !cls[0].Active {
			t.Errorf("get clusters -o json: %+v", cls)
		}
		mustContain(t, "get nodes", th.ok("get", "nodes"), n.name, "clicl", "yes", "1024")
		var nodes []struct {
			ClusterName string `json:"cluster_name"`
			api.Node
		}
		th.json(&nodes, "get", "nodes")
		if len(nodes) != 1 || nodes[0].Name != n.name || nodes[0].ClusterName != "clicl" || nodes[0].MemoryInMB != 1024 {
			t.Errorf("get nodes -o json: %+v", nodes)
		}
		mustContain(t, "get services of an unknown app", th.fails("", "get", "services", "nope"), `no application "nope"`)
	})

	t.Run("logs and logs -f", func(t *testing.T) {
		th.t = t
		testharness.WaitFor(t, 30*time.Second, "listening line in thicket logs", func() (bool, string) {
			out, _, _ := th.run("", "logs", "nginx/nginx")
			return strings.Contains(out, "listening on"), out
		})
		// Each line as the node read it, with its time: --since and -t
		// through a real node's log writer (issue 23, item 6).
		past, _, _ := th.run("", "logs", "nginx/nginx", "--since", "10m", "-n", "5", "-t")
		if l := lineWith(past, "listening on"); len(l) < 20 || !regexp.MustCompile(`^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d`).MatchString(l) {
			t.Errorf("thicket logs --since 10m -t: the listening line has no time:\n%s", past)
		}
		if out, _, _ := th.run("", "logs", "nginx/nginx", "--since", "2000-01-01T00:00:00Z", "-n", "1"); strings.Count(out, "\n") != 1 {
			t.Errorf("thicket logs -n 1 printed:\n%s", out)
		}
		in, _ := s.api.instance(nginxID, 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := th.cmd(ctx, "", "logs", nginxID, "0", "-f")
		var out, errb testharness.Log
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 20*time.Second, "logs -f prints the past", func() (bool, string) {
			return strings.Contains(out.String(), "listening on"), out.String()
		})
		path := fmt.Sprintf("/cli-follow-%d", time.Now().UnixNano())
		testharness.WaitFor(t, 30*time.Second, "logs -f shows a new request", func() (bool, string) {
			httpGet(fmt.Sprintf("http://%s:%d%s", in.HostIP, in.HostPort, path))
			return strings.Contains(out.String(), "GET "+path), out.String()
		})
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if err != nil {
			t.Errorf("logs -f after Ctrl-C: %v\n%s", err, errb.String())
		}
		if strings.Count(out.String(), "listening on") != 1 {
			t.Errorf("logs -f repeated old lines:\n%s", out.String())
		}
	})

	t.Run("scale up and down", func(t *testing.T) {
		th.t = t
		// Registered only: no instance, no wait.
		out := th.ok("apply", "-f", writeSLA(t, slaOf(s, "web", map[string]any{"microservice_name": "web", "memory": 32})),
			"--instances", "0", "--wait=false")
		mustContain(t, "apply --instances 0", out, "application cli/web created", "service web/web")
		mustContain(t, "get services web", th.ok("get", "services", "web"), "web/web", "CREATED", "0/0")

		out = th.ok("scale", "web/web", "3", "--timeout", "2m")
		mustContain(t, "scale up", out, "web/web #0 requested", "web/web #2 requested", "web/web #1  ", "-> RUNNING on node "+n.name,
			"3 instances running after")
		var docs []api.Instance
		th.json(&docs, "get", "instances", "web")
		if len(docs) != 3 {
			t.Fatalf("after scale 3: %d instances", len(docs))
		}

		// Follow instance 2, which scaling down removes: -f ends by itself.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		follow := th.cmd(ctx, "", "logs", "web", "2", "-f")
		var fout, ferr testharness.Log
		follow.Stdout, follow.Stderr = &fout, &ferr
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 30*time.Second, "logs -f of instance 2 prints its output", func() (bool, string) {
			return strings.Contains(fout.String(), "listening on"), fout.String() + ferr.String()
		})
		out = th.ok("scale", "web", "1")
		mustContain(t, "scale down", out, "web/web #2 removed", "web/web #1 removed", "web/web #0  RUNNING", "1 instance running")
		if strings.Contains(out, "#0 removed") {
			t.Errorf("scale down removed the lowest instance:\n%s", out)
		}
		th.json(&docs, "get", "instances", "web/web")
		if len(docs) != 1 || docs[0].InstanceNumber != 0 {
			t.Errorf("after scale 1: %+v", docs)
		}
		if err := follow.Wait(); err != nil || !strings.Contains(ferr.String(), "web/web #2 was removed") {
			t.Errorf("logs -f of a removed instance: %v, stderr %q", err, ferr.String())
		}
		mustContain(t, "scale of an unknown service", th.fails("", "scale", "nope/web", "2"), `no service "nope/web"`)
	})

	t.Run("failing deployments exit non-zero with the reason", func(t *testing.T) {
		th.t = t
		big := slaOf(s, "big", map[string]any{"microservice_name": "big", "memory": 4096})
		out, errs, code := th.run(big, "apply", "-f", "-", "--timeout", "15s")
		if code != 1 {
			t.Fatalf("apply beyond every node's memory: exit %d\n%s%s", code, out, errs)
		}
		mustContain(t, "NO_CAPACITY output", out, "big/big #0  ", "NO_CAPACITY")
		mustContain(t, "NO_CAPACITY error", errs, "not running after 15s: big/big #0 NO_CAPACITY: ", "memory")

		missing := slaOf(s, "ghost", map[string]any{"microservice_name": "ghost", "memory": 16, "code": s.registry + "/e2e/does-not-exist:v1"})
		out, errs, code = th.run(missing, "apply", "-f", "-", "--timeout", "90s")
		if code != 1 {
			t.Fatalf("apply of a missing image: exit %d\n%s%s", code, out, errs)
		}
		mustContain(t, "FAILED output", out, "ghost/ghost #0  ", "FAILED")
		mustContain(t, "FAILED error", errs, "ghost/ghost #0 failed: ")
	})

	t.Run("expired and revoked access tokens are refreshed", func(t *testing.T) {
		th.t = t
		var saved map[string]any
		read := func() {
			b, err := os.ReadFile(creds)
			if err != nil {
				t.Fatal(err)
			}
			saved = map[string]any{}
			json.Unmarshal(b, &saved)
		}
		read()
		first := saved["token"]
		saved["expires_at"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		b, _ := json.Marshal(saved)
		writeFile(t, creds, string(b))
		th.ok("get", "apps")
		read()
		if saved["token"] == first || saved["token"] == "" {
			t.Errorf("an expired token was not refreshed: %v", saved)
		}
		saved["token"] = "not-a-token"
		b, _ = json.Marshal(saved)
		writeFile(t, creds, string(b))
		th.ok("get", "apps")
		if read(); saved["token"] == "not-a-token" {
			t.Error("a token the server refused was not refreshed")
		}
	})

	t.Run("delete", func(t *testing.T) {
		th.t = t
		mustContain(t, "delete service", th.ok("delete", "service", "web/web"), "service web/web deleted")
		mustContain(t, "delete app by name", th.ok("delete", "app", "web"), "application cli/web deleted")
		mustContain(t, "delete app big", th.ok("delete", "app", "big"), "application cli/big deleted")
		mustContain(t, "delete app ghost", th.ok("delete", "app", "ghost"), "application cli/ghost deleted")
		var apps []api.Application
		th.json(&apps, "get", "apps")
		if len(apps) != 1 {
			t.Fatalf("apps after deletes: %+v", apps)
		}
		mustContain(t, "status", th.ok("status"), "applications  1", "instances     1: 1 RUNNING")
		mustContain(t, "delete app by id", th.ok("delete", "app", apps[0].ApplicationID), "application test/nginx deleted")
		mustContain(t, "delete unknown", th.fails("", "delete", "app", apps[0].ApplicationID), "no application")
		th.json(&apps, "get", "apps")
		if len(apps) != 0 {
			t.Errorf("apps after deleting all: %+v", apps)
		}
		// The node stops every instance and releases its network.
		testharness.WaitFor(t, time.Minute, "no instance left on the node", func() (bool, string) {
			cs, nss := containers(t, s.ctrNS, ""), n.instanceNetns()
			return len(cs) == 0 && len(nss) == 0, fmt.Sprintf("containers %v, namespaces %v", cs, nss)
		})
	})

	t.Run("logout", func(t *testing.T) {
		th.t = t
		var saved api.Session
		if b, err := os.ReadFile(creds); err != nil || json.Unmarshal(b, &saved) != nil || saved.RefreshToken == "" {
			t.Fatalf("saved session: %v %+v", err, saved)
		}
		mustContain(t, "logout", th.ok("logout"), "Logged out.")
		if _, err := os.Stat(creds); !os.IsNotExist(err) {
			t.Errorf("credentials left after logout: %v", err)
		}
		// The root ended the session: its tokens no longer work.
		rc := api.NewClient(api.Config{Address: s.rootURL, CAFile: s.started.CAFile(), Session: saved})
		if err := rc.Refresh(context.Background()); !errors.Is(err, api.ErrSessionExpired) {
			t.Errorf("refresh with the logged-out session's token: %v, want it refused", err)
		}
		if _, err := api.NewClient(api.Config{Address: s.rootURL, CAFile: s.started.CAFile()}).WithToken(saved.Token).Applications(context.Background()); err == nil {
			t.Error("the logged-out session's access token still works")
		}
		mustContain(t, "get after logout", th.fails("", "get", "apps"), "not logged in")
		mustContain(t, "version", th.ok("version"), "thicket ")
	})
}

// lineWith is the first line of out that holds s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
