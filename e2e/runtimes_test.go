package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// serveFiles serves files over HTTP on the bridge, where nodes in their
// namespaces reach it, and returns the base URL.
func serveFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", bridgeAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestRuntimes runs WebAssembly modules beside containers through the API,
// and shows that a workload no node can run stays unscheduled with the
// reason.
func TestRuntimes(t *testing.T) {
	s := newSystem(t)
	a := s.addCluster("alpha", "")
	// The module server is on the bridge, a private address, and the
	// examples' URLs are not pinned: the node must allow both.
	s.startNodeWith(a, "n1", 41, 2048, "--code-allow-net", bridgeAddr+"/32", "--code-allow-unpinned")
	s.waitNodes(map[string]int{"alpha": 1})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mod, err := testimage.WasmModule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uk, err := testimage.UnikernelImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := serveFiles(t, map[string][]byte{"wasmapp.wasm": mod, "unikernel.tar.gz": uk})

	t.Run("wasm one-shot completes with its output in the log; a failing one fails", func(t *testing.T) {
		// The example of sla_examples/, pointed at this run's module server.
		example := strings.ReplaceAll(readFile(t, "../sla_examples/wasm.json"), "http://127.0.0.1:8000", base)
		var apps []api.Application
		s.api.must("POST", "/api/application/", json.RawMessage(example), &apps)
		ids := s.app("wasm", map[string]any{"microservice_name": "fails", "virtualization": "wasm",
			"code": base + "/wasmapp.wasm", "memory": 64, "one_shot": true, "cmd": []string{"exit", "3"}})
		for _, a := range apps {
			if a.ApplicationName == "wasmhello" {
				ids["hello"], ids["example"] = a.Microservices[0], a.ApplicationID
			}
		}
		s.scaleUp(ids["hello"])
		s.scaleUp(ids["fails"])
		s.api.waitInstance(ids["hello"], 0, 2*time.Minute, "completed", func(in api.Instance) bool {
			return in.Status == wire.StatusCompleted
		})
		testharness.WaitFor(t, 30*time.Second, "the module's output", func() (bool, string) {
			var l struct {
				Logs string `json:"logs"`
			}
			s.api.must("GET", "/api/service/"+ids["hello"]+"/instance/0/logs", nil, &l)
			return strings.Contains(l.Logs, "hello from wasm") && strings.Contains(l.Logs, "servus"), l.Logs
		})
		in := s.api.waitInstance(ids["fails"], 0, 2*time.Minute, "failed", func(in api.Instance) bool {
			return in.Status == wire.StatusFailed
		})
		if !strings.Contains(in.StatusDetail, "3") {
			t.Errorf("failed module's detail %q does not give its exit code", in.StatusDetail)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
		s.api.must("DELETE", "/api/application/"+ids["example"], nil, nil)
	})

	t.Run("a busy-looping wasm module gets its CPU share and the node keeps reporting", func(t *testing.T) {
		ids := s.app("spin", map[string]any{"microservice_name": "spin", "virtualization": "wasm",
			"code": base + "/wasmapp.wasm", "memory": 64, "vcpus": 1, "cmd": []string{"spin", "600"}})
		s.scaleUp(ids["spin"])
		s.api.waitInstance(ids["spin"], 0, 2*time.Minute, "running", func(in api.Instance) bool {
			return in.Status == wire.StatusRunning
		})
		lastSeen := func() time.Time {
			var cls []api.Cluster
			s.api.must("GET", "/api/clusters/", nil, &cls)
			for _, c := range cls {
				if c.ClusterName == "alpha" && len(c.Nodes) == 1 {
					if !c.Nodes[0].Active {
						t.Errorf("the node went inactive while a module spun (last seen %v)", c.Nodes[0].LastSeen)
					}
					return c.Nodes[0].LastSeen
				}
			}
			t.Fatalf("cluster alpha with its one node not listed: %+v", cls)
			return time.Time{}
		}
		// Over 20 s of the module spinning, the root keeps hearing from the
		// node (the cluster passes its last_seen up every several seconds)
		// and keeps it active, and the instance's usage, measured in its
		// cgroup, stays within its one core.
		first := lastSeen()
		var maxCPU float64
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Second) {
			lastSeen()
			in := s.api.waitInstance(ids["spin"], 0, time.Minute, "running", func(in api.Instance) bool { return true })
			if in.Status != wire.StatusRunning {
				t.Fatalf("the spinning module is %s: %s", in.Status, in.StatusDetail)
			}
			var cpu float64
			fmt.Sscan(in.CPUPercent, &cpu)
			maxCPU = max(maxCPU, cpu)
		}
		last := lastSeen()
		t.Logf("the node's last_seen went from %v to %v in 20 s; the module's CPU at most %.0f%%", first, last, maxCPU)
		if !last.After(first.Add(10 * time.Second)) {
			t.Errorf("the node's reports stalled while a module spun: last_seen from %v to %v", first, last)
		}
		if maxCPU == 0 {
			t.Error("no CPU usage reported for the spinning module")
		}
		if maxCPU > 115 {
			t.Errorf("the module used %.0f%% of a core under a limit of one", maxCPU)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("containers run sandboxed through every tier; an admin's service gets the capability it asks for", func(t *testing.T) {
		ids := s.app("sandbox",
			map[string]any{"microservice_name": "plain", "cmd": []string{"probe"}, "memory": 64, "one_shot": true},
			map[string]any{"microservice_name": "netraw", "cmd": []string{"probe"}, "memory": 64, "one_shot": true,
				"security": map[string]any{"cap_add": []string{"NET_RAW"}, "pids_limit": 50}})
		for name, want := range map[string]string{"plain": "probe raw-socket: operation not permitted", "netraw": "probe raw-socket: ok"} {
			s.scaleUp(ids[name])
			s.api.waitInstance(ids[name], 0, 2*time.Minute, "completed", func(in api.Instance) bool {
				return in.Status == wire.StatusCompleted
			})
			testharness.WaitFor(t, 30*time.Second, name+"'s probe", func() (bool, string) {
				var l struct {
					Logs string `json:"logs"`
				}
				s.api.must("GET", "/api/service/"+ids[name]+"/instance/0/logs", nil, &l)
				return strings.Contains(l.Logs, want) && strings.Contains(l.Logs, "probe NoNewPrivs: 1") &&
					strings.Contains(l.Logs, "probe Seccomp: 2"), l.Logs
			})
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("code from a loopback address is refused with the reason on the instance", func(t *testing.T) {
		pin := "#sha256=" + fetch.SHA256(mod)
		ids := s.app("refused", map[string]any{"microservice_name": "loopback", "virtualization": "wasm",
			"code": "http://127.0.0.1:8000/wasmapp.wasm" + pin, "memory": 64, "one_shot": true})
		s.scaleUp(ids["loopback"])
		in := s.api.waitInstance(ids["loopback"], 0, 2*time.Minute, "failed", func(in api.Instance) bool {
			return in.Status == wire.StatusFailed
		})
		if !strings.Contains(in.StatusDetail, "127.0.0.1 is a loopback address") {
			t.Errorf("refused module's detail %q does not say why", in.StatusDetail)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})

	t.Run("a unikernel serves HTTP on its instance IP and service IP, and is gone after undeploy", func(t *testing.T) {
		example := strings.ReplaceAll(readFile(t, "../sla_examples/unikernel-http.json"), "http://127.0.0.1:8000", base)
		var apps []api.Application
		s.api.must("POST", "/api/application/", json.RawMessage(example), &apps)
		var appID, svcID string
		for _, a := range apps {
			if a.ApplicationName == "ukhttp" {
				appID, svcID = a.ApplicationID, a.Microservices[0]
			}
		}
		s.scaleUp(svcID)
		in := s.runningOn(svcID, 0)
		n1 := s.nodes["n1"]
		testharness.WaitFor(t, 2*time.Minute, "the VM answers on its instance IP", func() (bool, string) {
			who := fetchFrom(t, n1.ns, "http://"+in.InstanceIP+":8080/", 1)
			return len(who) == 1 && who[0] == "unikernel", fmt.Sprint(who)
		})
		testharness.WaitFor(t, time.Minute, "the VM answers on its service IP", func() (bool, string) {
			who := fetchFrom(t, n1.ns, "http://10.30.30.27:8080/", 3)
			d := distinct(who)
			return d["unikernel"] == 3, fmt.Sprint(d)
		})
		s.api.must("DELETE", "/api/application/"+appID, nil, nil)
		testharness.WaitFor(t, time.Minute, "no qemu process left for the instance", func() (bool, string) {
			out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+svcID).Output()
			return strings.TrimSpace(string(out)) == "", string(out)
		})
	})

	t.Run("a virtualization no node runs stays unscheduled with the reason", func(t *testing.T) {
		// n2 offers containers only (--virtualizations), and the service may
		// only go there.
		n2 := s.startNodeWith(a, "n2", 42, 1024, "--virtualizations", "container")
		s.waitNodes(map[string]int{"alpha": 2})
		ids := s.app("nowasm", map[string]any{"microservice_name": "mod", "virtualization": "wasm",
			"code": base + "/wasmapp.wasm", "memory": 16, "constraints": pin("alpha", n2.name)})
		s.scaleUp(ids["mod"])
		in := s.api.waitInstance(ids["mod"], 0, time.Minute, "unscheduled", func(in api.Instance) bool {
			return in.Status == wire.StatusNoCapacity
		})
		if !strings.Contains(in.StatusDetail, "does not run wasm") {
			t.Errorf("detail %q does not say the node does not run wasm", in.StatusDetail)
		}
		time.Sleep(3 * time.Second)
		if in, _ := s.api.instance(ids["mod"], 0); in.Status != wire.StatusNoCapacity || in.NodeName != "" {
			t.Errorf("the instance was placed after all: %+v", in)
		}
		s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	})
}
