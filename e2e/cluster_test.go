package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// system is a whole Thicket on this machine.
type system struct {
	t        *testing.T
	net      *network
	api      *rootAPI
	root     *proc
	started  *testharness.Root // root is its process
	rootDir  string
	rootURL  string
	clusters map[string]*cluster
	nodes    map[string]*node
	registry string // host:port
	image    string
	ctrNS    string // containerd namespace of this run
	// prepareHost, if set, runs on a node's new host (its network
	// namespace's name) before anything starts there.
	prepareHost func(ns string)
}

type cluster struct {
	name      string
	proc      *proc
	dir       string
	nodeURL   string
	nodeToken string
	started   *testharness.Cluster
}

// client is an HTTP client of the cluster's node API that verifies it as
// nodes do (by the pin in the node join token).
func (c *cluster) client(t *testing.T) *http.Client {
	t.Helper()
	hc, err := c.started.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// brokerTLS is how a node that registered with creds verifies the broker:
// with the CA the registration answer carried (nil for a plain broker).
func brokerTLS(t *testing.T, creds wire.NodeRegisterResponse) *tls.Config {
	t.Helper()
	if creds.MQTTCAPEM == "" {
		return nil
	}
	u, err := url.Parse(creds.MQTTURL)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.CAClient([]byte(creds.MQTTCAPEM), u.Hostname())
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

type node struct {
	name, ns, addr, dir string
	proc                *proc
	net                 *proc // thicket-net, on overlay nodes
	netSocket           string
	started             *testharness.Node
}

// instanceNetns lists the instance network namespaces the node's
// thicket-net holds.
func (n *node) instanceNetns() []string { return n.started.InstanceNetns() }

// newSystem starts a root (with extra flags, if any) and a registry
// holding the test image.
func newSystem(t *testing.T, rootArgs ...string) *system {
	return newSystemWith(t, testharness.RootOptions{Args: rootArgs})
}

// newSystemWith is newSystem with the root's options.
func newSystemWith(t *testing.T, ro testharness.RootOptions) *system {
	s := &system{t: t, clusters: map[string]*cluster{}, nodes: map[string]*node{}, ctrNS: "thicket-e2e-" + runID}
	t.Cleanup(func() {
		// After every process stopped (cleanups run last-in first-out): what
		// the data plane keeps when its control plane stops.
		testharness.CleanContainerd(context.Background(), s.ctrNS)
		for _, n := range s.nodes {
			testharness.KillWasmSandboxes(n.dir)
			for _, p := range n.instanceNetns() {
				exec.Command("ip", "netns", "del", filepath.Base(p)).Run()
			}
		}
	})
	s.net = newNetwork(t)

	// Nodes pull from inside their namespaces (containerd's client
	// fetches in the calling process): the registry listens on the bridge.
	reg, err := testimage.StartRegistry(bridgeAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if s.image, err = reg.PushTestApp(ctx, "e2e/testapp", "v1"); err != nil {
		t.Fatal(err)
	}
	s.registry = reg.Host()

	r := bin.MustStartRoot(t, ro)
	s.started, s.root, s.rootDir, s.rootURL = r, &proc{Proc: r.Proc, t: t}, r.DataDir, r.URL
	s.api = &rootAPI{t: t, url: s.rootURL, ca: r.CAFile()}
	s.api.login("Admin", readFile(t, filepath.Join(s.rootDir, "admin-password")))
	return s
}

// addCluster starts a thicket-cluster listening on every address; mqttURL
// empty embeds the broker.
func (s *system) addCluster(name, mqttURL string) *cluster {
	return s.addClusterOn("0.0.0.0", name, mqttURL)
}

// addClusterOn starts a thicket-cluster whose node API and embedded broker
// listen on one address only (bind), as on a multi-homed host, with extra
// flags if any.
func (s *system) addClusterOn(bind, name, mqttURL string, extra ...string) *cluster {
	return s.addClusterWith(testharness.ClusterOptions{Name: name, Bind: bind, MQTTURL: mqttURL, Args: extra})
}

// addClusterWith starts a thicket-cluster with options o, advertised at
// the bridge address unless o says otherwise.
func (s *system) addClusterWith(o testharness.ClusterOptions) *cluster {
	t := s.t
	if o.Advertise == "" {
		o.Advertise = bridgeAddr
	}
	started := bin.MustStartCluster(t, s.started, o)
	c := &cluster{name: o.Name, proc: &proc{Proc: started.Proc, t: t}, dir: started.DataDir, nodeURL: started.NodeURL, nodeToken: started.NodeToken,
		started: started}
	s.clusters[o.Name] = c
	return c
}

// addNode starts a thicket-node in a new network namespace. Its instances
// share the node's network (no net manager).
func (s *system) addNode(c *cluster, short string, octet int, memoryMB int, token string) *node {
	return s.startNode(c, short, octet, memoryMB, token, false)
}

// addOverlayNode starts thicket-net and thicket-node in a new network
// namespace: instances get their own addresses on the overlay.
func (s *system) addOverlayNode(c *cluster, short string, octet int, memoryMB int) *node {
	return s.startNode(c, short, octet, memoryMB, c.nodeToken, true)
}

// startNodeWith starts an overlay node with extra thicket-node flags.
func (s *system) startNodeWith(c *cluster, short string, octet int, memoryMB int, extra ...string) *node {
	return s.startNode(c, short, octet, memoryMB, c.nodeToken, true, extra...)
}

func (s *system) startNode(c *cluster, short string, octet int, memoryMB int, token string, overlay bool, extra ...string) *node {
	t := s.t
	h := s.net.MustAddHost(t, octet)
	if s.prepareHost != nil {
		s.prepareHost(h.Netns)
	}
	started := bin.MustStartNode(t, testharness.NodeOptions{Name: "e2e" + runID + short, Label: short, Host: h,
		ClusterURL: c.nodeURL, Token: token, Namespace: s.ctrNS, Registry: s.registry, MemoryMB: memoryMB,
		Overlay: overlay, Args: extra, InsecurePlaintext: c.started.Insecure})
	n := &node{name: started.Name, ns: h.Netns, addr: h.Addr, dir: started.DataDir, proc: &proc{Proc: started.Engine, t: t},
		netSocket: started.NetSocket, started: started}
	if started.Net != nil {
		n.net = &proc{Proc: started.Net, t: t}
	}
	s.nodes[short] = n
	return n
}

// rootHealthy waits until the root answers its health check.
func (s *system) rootHealthy(t *testing.T) {
	t.Helper()
	testharness.WaitFor(t, time.Minute, "root healthy again", func() (bool, string) {
		code, b := s.api.do("GET", "/healthz", nil)
		return code == http.StatusOK, string(b)
	})
}

// waitNodes waits until the root sees the given number of active nodes in
// each named cluster.
func (s *system) waitNodes(want map[string]int) {
	testharness.WaitFor(s.t, 90*time.Second, fmt.Sprintf("active nodes %v", want), func() (bool, string) {
		var cls []api.Cluster
		code, b := s.api.do("GET", "/api/clusters/active", nil)
		if code != http.StatusOK || json.Unmarshal(b, &cls) != nil {
			return false, string(b)
		}
		got := map[string]int{}
		for _, c := range cls {
			got[c.ClusterName] = c.ActiveNodes
		}
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
}

// app posts an application with the given services and returns the ids of
// its services by name.
func (s *system) app(name string, services ...map[string]any) map[string]string {
	return s.appAs(s.api, name, services...)
}

// appAs is app as the user a is logged in as.
func (s *system) appAs(a *rootAPI, name string, services ...map[string]any) map[string]string {
	return s.appWith(a, name, nil, services...)
}

// appWith is appAs with more fields of the application (e.g. isolation).
func (s *system) appWith(a *rootAPI, name string, fields map[string]any, services ...map[string]any) map[string]string {
	for _, m := range services {
		m["microservice_namespace"] = "e2e"
		if m["virtualization"] == nil {
			m["virtualization"] = "container"
		}
		if m["code"] == nil {
			m["code"] = s.image
		}
	}
	app := map[string]any{"application_name": name, "application_namespace": "e2e", "application_desc": "e2e", "microservices": services}
	for k, v := range fields {
		app[k] = v
	}
	body := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{app}}
	var apps []api.Application
	a.must("POST", "/api/application/", body, &apps)
	ids := map[string]string{}
	for _, app := range apps {
		if app.ApplicationName != name {
			continue
		}
		ids["app"] = app.ApplicationID
		for _, id := range app.Microservices {
			ids[a.service(id).MicroserviceName] = id
		}
	}
	return ids
}

func (s *system) scaleUp(id string) int { return s.scaleUpAs(s.api, id) }

// scaleUpAs is scaleUp as the user a is logged in as.
func (s *system) scaleUpAs(a *rootAPI, id string) int {
	var ans struct {
		InstanceNumber int `json:"instance_number"`
	}
	a.must("POST", "/api/service/"+id+"/instance", nil, &ans)
	return ans.InstanceNumber
}

// serves fetches the test app's answer from an instance's node.
func serves(in api.Instance) (string, error) {
	return httpGet(fmt.Sprintf("http://%s:%d/", in.HostIP, in.HostPort))
}

// instanceContainers are the containers of one instance, on any node.
func (s *system) instanceContainers(serviceID string, n int) []string {
	return containers(s.t, s.ctrNS, "labels.\"thicket.instance\"=="+wire.InstanceKey(serviceID, n))
}

// TestClustersAndNodes runs the cluster issue's scenarios on one system of
// a root, two clusters (embedded broker; Mosquitto) and three nodes, with a
// fourth joining later.
func TestClustersAndNodes(t *testing.T) {
	s := newSystem(t)
	// Beta uses Mosquitto over TLS: the cluster verifies it with
	// --mqtt-ca-file, and nodes with the CA the cluster hands them.
	mosq := mqttctest.StartMosquittoTLS(t, bridgeAddr)
	a := s.addCluster("alpha", "")
	b := s.addClusterWith(testharness.ClusterOptions{Name: "beta", Bind: "0.0.0.0", MQTTURL: mosq.URL, MQTTCAFile: mosq.CAFile})
	s.addNode(a, "n1", 11, 1024, a.nodeToken)
	s.addNode(a, "n2", 12, 1024, a.nodeToken)
	s.addNode(b, "n3", 13, 1024, b.nodeToken)
	s.waitNodes(map[string]int{"alpha": 2, "beta": 1})
	t.Run("no secret in a command line; /metrics needs its token", func(t *testing.T) {
		checkNoSecretInCmdlines(t, s)
		for base, dir := range map[string]string{s.rootURL: s.rootDir, a.nodeURL: a.dir} {
			if m, err := scrape(base, dir); err != nil || !strings.Contains(m, "go_goroutines") {
				t.Errorf("%s/metrics: %v %s", base, err, testharness.Tail(m, 300))
			}
		}
	})

	web := map[string]any{"microservice_name": "web", "memory": 64, "vcpus": 1, "port": "8080:8080",
		"environment": []string{"INSTANCE=web"}}
	ids := s.app("shop", web)
	webID := ids["web"]

	t.Run("deploy reaches RUNNING and serves", func(t *testing.T) {
		s.scaleUp(webID)
		in := s.api.waitInstance(webID, 0, 2*time.Minute, "running", running)
		if in.HostPort != 8080 || in.HostIP == "" || in.ClusterID == "" || in.NodeName == "" {
			t.Errorf("instance lacks placement details: %+v", in)
		}
		body, err := serves(in)
		if err != nil || !strings.Contains(body, "hello from web") {
			t.Fatalf("GET %s:%d: %q %v", in.HostIP, in.HostPort, body, err)
		}
		// Its resource use reaches the API (measured from its cgroup).
		testharness.WaitFor(t, 30*time.Second, "memory use of instance 0", func() (bool, string) {
			in, _ := s.api.instance(webID, 0)
			pct, _ := strconv.ParseFloat(in.MemoryPercent, 64)
			return pct > 0, in.MemoryPercent
		})
		// Its output reaches the API.
		testharness.WaitFor(t, 30*time.Second, "request in the instance log", func() (bool, string) {
			var l struct {
				Logs string `json:"logs"`
			}
			s.api.must("GET", "/api/service/"+webID+"/instance/0/logs?lines=50", nil, &l)
			return strings.Contains(l.Logs, "GET /"), l.Logs
		})
	})

	t.Run("scale to 3 and back to 1", func(t *testing.T) {
		s.scaleUp(webID)
		s.scaleUp(webID)
		nodes := map[string]bool{}
		for n := range 3 {
			in := s.api.waitInstance(webID, n, 2*time.Minute, "running", running)
			nodes[in.NodeName] = true
			if body, err := serves(in); err != nil || !strings.Contains(body, "hello from web") {
				t.Errorf("instance %d on %s does not serve: %q %v", n, in.NodeName, body, err)
			}
		}
		// All three publish host port 8080: one per node, across both clusters.
		if len(nodes) != 3 {
			t.Errorf("3 instances with one host port on %d nodes: %v", len(nodes), nodes)
		}
		for _, n := range []int{1, 2} {
			s.api.must("DELETE", fmt.Sprintf("/api/service/%s/instance/%d", webID, n), nil, nil)
		}
		for _, n := range []int{1, 2} {
			testharness.WaitFor(t, time.Minute, fmt.Sprintf("containers of instance %d removed", n), func() (bool, string) {
				c := s.instanceContainers(webID, n)
				return len(c) == 0, strings.Join(c, ",")
			})
		}
		if c := s.instanceContainers(webID, 0); len(c) != 1 {
			t.Errorf("instance 0 has %d containers, want 1", len(c))
		}
	})

	t.Run("direct constraint lands on the named node", func(t *testing.T) {
		n2 := s.nodes["n2"].name
		ids := s.app("pinned", map[string]any{"microservice_name": "pin", "memory": 32, "port": "9001:9001",
			"environment": []string{"PORT=9001", "INSTANCE=pin"},
			"constraints": []any{map[string]any{"type": "direct", "cluster": "alpha", "node": n2}}})
		s.scaleUp(ids["pin"])
		in := s.api.waitInstance(ids["pin"], 0, 2*time.Minute, "running", running)
		if in.NodeName != n2 {
			t.Errorf("pinned instance runs on %s, want %s", in.NodeName, n2)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("no capacity until a fitting node joins", func(t *testing.T) {
		ids := s.app("big", map[string]any{"microservice_name": "big", "memory": 2048, "port": "9002:9002",
			"environment": []string{"PORT=9002", "INSTANCE=big"}})
		s.scaleUp(ids["big"])
		in := s.api.waitInstance(ids["big"], 0, time.Minute, "without capacity", func(in api.Instance) bool {
			return in.Status == wire.StatusNoCapacity
		})
		if !strings.Contains(in.StatusDetail, "memory") {
			t.Errorf("NO_CAPACITY detail %q does not name memory", in.StatusDetail)
		}
		s.addNode(s.clusters["beta"], "n4", 14, 4096, s.clusters["beta"].nodeToken)
		in = s.api.waitInstance(ids["big"], 0, 2*time.Minute, "running once n4 joined", running)
		if in.NodeName != s.nodes["n4"].name {
			t.Errorf("big instance on %s, want n4", in.NodeName)
		}
		if body, err := serves(in); err != nil || !strings.Contains(body, "hello from big") {
			t.Errorf("big instance does not serve: %q %v", body, err)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("one-shot completes, crashing service restarts", func(t *testing.T) {
		ids := s.app("jobs",
			map[string]any{"microservice_name": "job", "memory": 16, "one_shot": true, "cmd": []string{"print", "3"}},
			map[string]any{"microservice_name": "crash", "memory": 16, "cmd": []string{"crash-after", "1"},
				"environment": []string{"PORT=9003"}, "port": "9003:9003"})
		s.scaleUp(ids["job"])
		s.scaleUp(ids["crash"])
		s.api.waitInstance(ids["job"], 0, 2*time.Minute, "completed", func(in api.Instance) bool {
			return in.Status == wire.StatusCompleted
		})
		var l struct {
			Logs string `json:"logs"`
		}
		testharness.WaitFor(t, 30*time.Second, "one-shot output", func() (bool, string) {
			s.api.must("GET", "/api/service/"+ids["job"]+"/instance/0/logs", nil, &l)
			return strings.Contains(l.Logs, "line 3"), l.Logs
		})
		s.api.waitInstance(ids["crash"], 0, 2*time.Minute, "restarted twice", func(in api.Instance) bool {
			return in.Restarts >= 2
		})
		// The one-shot stays completed: not restarted.
		time.Sleep(3 * time.Second)
		if in, _ := s.api.instance(ids["job"], 0); in.Status != wire.StatusCompleted || in.Restarts != 0 {
			t.Errorf("one-shot instance after completion: %s, %d restarts", in.Status, in.Restarts)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("a node with a wrong token is refused", func(t *testing.T) {
		ns, path, addr := s.net.addHost(20)
		cmd := exec.Command("ip", "netns", "exec", ns, bin.Dir+"/thicket-node",
			"--cluster-url", a.nodeURL, "--token", wrongSecret(t, a.nodeToken), "--name", "intruder"+runID, "--address", addr,
			"--data-dir", t.TempDir(), "--netns", path, "--namespace", s.ctrNS)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cmd.Args[0], cmd.Args[1:]...).CombinedOutput()
		if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "refused the node join token") {
			t.Errorf("node with a wrong token: err=%v ctx=%v output:\n%s", err, ctx.Err(), out)
		}
	})

	t.Run("a node cannot use another node's topics", func(t *testing.T) {
		// A node of its own, as a compromised node would have: registered
		// with the real token, so it holds valid MQTT credentials.
		var creds wire.NodeRegisterResponse
		body, _ := json.Marshal(wire.NodeRegisterRequest{Version: wire.Version, Name: "spy" + runID, Arch: "amd64",
			Virtualizations: []string{}, Capacity: wire.Resources{}})
		req, _ := http.NewRequest("POST", a.nodeURL+"/api/node/register", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+a.nodeToken)
		resp, err := a.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&creds)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || creds.NodeID == "" {
			t.Fatalf("register the spy node: %d %+v", resp.StatusCode, creds)
		}
		var n2ID string
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters/", nil, &cls)
		for _, c := range cls {
			for _, n := range c.Nodes {
				if n.Name == s.nodes["n2"].name {
					n2ID = n.ID
				}
			}
		}
		if n2ID == "" {
			t.Fatal("n2 not found")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl, err := mqttc.Connect(ctx, mqttc.Options{URL: creds.MQTTURL, TLS: brokerTLS(t, creds), ClientID: mqttc.NodeClientID(creds.NodeID),
			Username: creds.MQTTUsername, Password: creds.MQTTPassword})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Subscribe(ctx, wire.DesiredTopic(n2ID), 1, func(string, []byte) {}); err == nil {
			t.Errorf("the spy may subscribe to n2's desired set")
		}
		// A forged report for n2 must not reach the cluster: n2 stays active
		// and instance 0 of web keeps its status.
		before, _ := s.api.instance(webID, 0)
		forged, _ := json.Marshal(wire.NodeReport{Version: wire.Version, NodeID: n2ID, Time: time.Now(),
			Node:      wire.NodeInfo{Name: "forged", Active: true},
			Instances: []wire.InstanceStatus{{Key: wire.InstanceKey(webID, 0), Status: wire.StatusFailed, Detail: "forged"}}})
		for range 5 {
			cl.Publish(ctx, wire.ReportTopic(n2ID), 0, false, forged)
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		after, _ := s.api.instance(webID, 0)
		if after.Status != before.Status || strings.Contains(after.StatusDetail, "forged") {
			t.Errorf("a forged report changed instance 0: %+v", after)
		}
	})

	t.Run("kill -9 of a node engine: a replacement runs meanwhile, one copy after return", func(t *testing.T) {
		in, _ := s.api.instance(webID, 0)
		var victim *node
		for _, n := range s.nodes {
			if n.name == in.NodeName {
				victim = n
			}
		}
		if victim == nil {
			t.Fatalf("node %q of instance 0 unknown", in.NodeName)
		}
		killed := time.Now()
		victim.proc.Kill()
		moved := s.api.waitInstance(webID, 0, 30*time.Second, "running elsewhere", func(in api.Instance) bool {
			return running(in) && in.NodeName != victim.name
		})
		t.Logf("instance 0 moved from %s to %s in %s", victim.name, moved.NodeName, time.Since(killed).Round(100*time.Millisecond))
		if body, err := serves(moved); err != nil || !strings.Contains(body, "hello from web") {
			t.Errorf("moved instance does not serve: %q %v", body, err)
		}
		victim.proc.restart()
		testharness.WaitFor(t, time.Minute, "one container for instance 0 after the node returns", func() (bool, string) {
			c := s.instanceContainers(webID, 0)
			return len(c) == 1, strings.Join(c, ",")
		})
		// The service keeps the original (the default disconnect policy):
		// the restarted engine adopted its container, which runs on; the
		// replacement is stopped.
		s.api.waitInstance(webID, 0, 30*time.Second, "running on the returned node "+victim.name, func(in api.Instance) bool {
			return running(in) && in.NodeName == victim.name
		})
		if c := s.instanceContainers(webID, 0); len(c) != 1 {
			t.Errorf("instance 0 has %d containers after the node returned: %v", len(c), c)
		}
	})

	t.Run("kill -9 of cluster manager and root: workload runs on, nothing lost", func(t *testing.T) {
		before, _ := s.api.instance(webID, 0)
		c := s.clusters[clusterOf(s, before.ClusterID)]
		containersBefore := containers(t, s.ctrNS, "")
		c.proc.Kill()
		s.root.Kill()
		time.Sleep(3 * time.Second)
		if body, err := serves(before); err != nil || !strings.Contains(body, "hello from web") {
			t.Fatalf("the instance stopped serving while root and cluster were down: %q %v", body, err)
		}
		s.root.restart()
		c.proc.restart()
		s.rootHealthy(t)
		s.waitNodes(map[string]int{"alpha": 2, "beta": 2})
		after := s.api.waitInstance(webID, 0, time.Minute, "running", running)
		if after.NodeName != before.NodeName {
			t.Errorf("instance 0 moved from %s to %s across a control-plane restart", before.NodeName, after.NodeName)
		}
		time.Sleep(3 * time.Second)
		if got := containers(t, s.ctrNS, ""); strings.Join(got, ",") != strings.Join(containersBefore, ",") {
			t.Errorf("containers changed across the control-plane restart:\nbefore %v\nafter  %v", containersBefore, got)
		}
	})

	t.Run("deleting the application leaves no container or snapshot", func(t *testing.T) {
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
		testharness.WaitFor(t, time.Minute, "no containers left", func() (bool, string) {
			c := containers(t, s.ctrNS, "")
			return len(c) == 0, strings.Join(c, ",")
		})
		if snaps := snapshots(t, s.ctrNS); len(snaps) != 0 {
			// Image layers stay cached; container snapshots must be gone.
			for _, k := range snaps {
				if strings.Contains(k, runID) {
					t.Errorf("container snapshot left: %s", k)
				}
			}
		}
	})
}

func clusterOf(s *system, id string) string {
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters/", nil, &cls)
	for _, c := range cls {
		if c.ID == id {
			return c.ClusterName
		}
	}
	s.t.Fatalf("cluster %s unknown", id)
	return ""
}

// wrongSecret is tok (a node join token) with another secret: the right
// cluster, pinned, but a token it never issued.
func wrongSecret(t *testing.T, tok string) string {
	t.Helper()
	pin, _, err := pki.ParseJoinToken(tok)
	if err != nil || pin == "" {
		t.Fatalf("node join token without a pin: %v", err)
	}
	w, err := pki.JoinToken(pin, "wrong-token")
	if err != nil {
		t.Fatal(err)
	}
	return w
}
