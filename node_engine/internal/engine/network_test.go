package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// fakeNet is a net manager on a unix socket: it records what the engine
// asks and answers as told.
type fakeNet struct {
	mu         sync.Mutex
	configs    []netapi.Config
	refuse     string // Configure answers 409 with it
	notReady   bool   // Attach answers 503
	attached   []string
	detached   []string
	nextIP     int
	socketPath string
}

func startFakeNet(t *testing.T) *fakeNet {
	t.Helper()
	dir, err := os.MkdirTemp("", "tne") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeNet{socketPath: filepath.Join(dir, "net.sock"), nextIP: 2}
	ln, err := net.Listen("unix", f.socketPath)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/network", func(w http.ResponseWriter, r *http.Request) {
		var c netapi.Config
		_ = json.NewDecoder(r.Body).Decode(&c)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.configs = append(f.configs, c)
		if f.refuse != "" {
			answer(w, http.StatusConflict, netapi.Error{Error: f.refuse})
			return
		}
		answer(w, http.StatusOK, netapi.Status{Ready: true})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.configs) == 0 || f.refuse != "" {
			answer(w, http.StatusOK, netapi.Status{})
			return
		}
		c := f.configs[len(f.configs)-1]
		answer(w, http.StatusOK, netapi.Status{Ready: true, Node: wire.NodeNetwork{NodeID: c.NodeID, Subnet: c.Subnet, VTEPMAC: "02:00:00:00:00:01"}})
	})
	mux.HandleFunc("PUT /v1/instances/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.notReady {
			answer(w, http.StatusServiceUnavailable, netapi.Error{Error: "the node has no subnet yet"})
			return
		}
		key := r.PathValue("key")
		f.attached = append(f.attached, key)
		ip := fmt.Sprintf("10.64.1.%d", f.nextIP)
		f.nextIP++
		answer(w, http.StatusOK, netapi.Attachment{Key: key, IP: ip, Netns: "/run/netns/test-" + key})
	})
	mux.HandleFunc("DELETE /v1/instances/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.detached = append(f.detached, r.PathValue("key"))
		answer(w, http.StatusOK, map[string]string{"message": "detached"})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeNet) snapshot() (configs int, attached, detached []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.configs), slices.Clone(f.attached), slices.Clone(f.detached)
}

// TestInstanceNetwork: with a net manager, an instance starts in the
// namespace it gets there and keeps its address; it does not start while
// the node's network is not ready, and says so; a removed instance's
// network is released, and so is one whose instance is gone.
func TestInstanceNetwork(t *testing.T) {
	fn := startFakeNet(t)
	rt := newFakeRuntime("container")
	e := newTestEngine(Config{Name: "n1", Address: "192.0.2.10", NetSocket: fn.socketPath}, rt)
	e.nodeID = "node-1"

	// No subnet yet: the node's network is not configured, and the
	// instance waits for it.
	fn.mu.Lock()
	fn.notReady = true
	fn.mu.Unlock()
	e.want(wire.NodeDesired{Generation: 1, ClusterID: "c1", Instances: specs("a")})
	e.settleOnce(t)
	if configs, _, _ := fn.snapshot(); configs != 0 {
		t.Errorf("configured the network %d times without a subnet", configs)
	}
	if starts, _ := rt.calls(); len(starts) != 0 {
		t.Fatalf("started %v without a network", starts)
	}
	if f := e.failure(t, "a"); !f.waiting || f.detail != "waiting for the node's network" {
		t.Errorf("failure %+v; want waiting for the network", f)
	}

	// The subnet arrives: configured once however many reconciles, and
	// the instance starts in its namespace.
	fn.mu.Lock()
	fn.notReady = false
	fn.mu.Unlock()
	e.want(wire.NodeDesired{Generation: 2, ClusterID: "c1", Subnet: "10.64.1.0/24", Instances: specs("a")})
	e.expire("a")
	e.settleOnce(t)
	e.settleOnce(t)
	configs, attached, _ := fn.snapshot()
	if configs != 1 || !slices.Equal(attached, []string{"a"}) {
		t.Fatalf("configured %d times, attached %v; want once and a", configs, attached)
	}
	fn.mu.Lock()
	c := fn.configs[0]
	fn.mu.Unlock()
	if c.NodeID != "node-1" || c.ClusterID != "c1" || c.Subnet != "10.64.1.0/24" {
		t.Errorf("network configuration %+v", c)
	}
	rt.mu.Lock()
	st := rt.states["a"]
	rt.mu.Unlock()
	if st.Status != wire.StatusRunning || st.Spec.Labels[runtimes.LabelNetNS] != "/run/netns/test-a" {
		t.Errorf("started %+v; want running in /run/netns/test-a", st)
	}
	e.mu.Lock()
	ip := e.ips["a"]
	e.mu.Unlock()
	if ip != "10.64.1.2" {
		t.Errorf("instance address %q; want 10.64.1.2", ip)
	}
	if info := e.nodeInfo(context.Background()); info.NotReady != "" || info.Network == nil || info.Network.Subnet != "10.64.1.0/24" {
		t.Errorf("node info %+v / %+v; want ready with its network", info.NotReady, info.Network)
	}

	// The network changes: configured again.
	e.want(wire.NodeDesired{Generation: 3, ClusterID: "c1", Subnet: "10.64.1.0/24", Instances: specs("a"),
		Network: wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}}}})
	e.settleOnce(t)
	if configs, _, _ := fn.snapshot(); configs != 2 {
		t.Errorf("configured %d times after a change; want 2", configs)
	}

	// Removed: the instance goes, then its network.
	e.want(wire.NodeDesired{Generation: 4, ClusterID: "c1", Subnet: "10.64.1.0/24", Removed: []string{"a"},
		Network: wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}}}})
	e.settleOnce(t)
	if _, removes := rt.calls(); !slices.Contains(removes, "a") {
		t.Errorf("removed %v; want a", removes)
	}
	if _, _, detached := fn.snapshot(); !slices.Equal(detached, []string{"a"}) {
		t.Errorf("detached %v; want a", detached)
	}

	// A network held for an instance no runtime holds and nobody wants
	// (a start cut short) is released too.
	e.mu.Lock()
	e.ips["ghost"] = "10.64.1.9"
	e.mu.Unlock()
	e.settleOnce(t)
	if _, _, detached := fn.snapshot(); !slices.Equal(detached, []string{"a", "ghost"}) {
		t.Errorf("detached %v; want a, then ghost", detached)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ips) != 0 {
		t.Errorf("addresses kept after release: %v", e.ips)
	}
}

// TestNetworkRefused: a configuration the net manager refuses makes the
// node not ready, with the net manager's reason, and is tried again.
func TestNetworkRefused(t *testing.T) {
	fn := startFakeNet(t)
	fn.refuse = "the node's subnet changed from 10.64.1.0/24 to 10.64.2.0/24 while 1 instances use it"
	e := newTestEngine(Config{Name: "n1", Address: "192.0.2.10", NetSocket: fn.socketPath}, newFakeRuntime("container"))
	e.want(wire.NodeDesired{Generation: 1, Subnet: "10.64.2.0/24"})
	e.settleOnce(t)
	e.settleOnce(t)
	if configs, _, _ := fn.snapshot(); configs != 2 {
		t.Errorf("a refused configuration was tried %d times in two reconciles; want 2", configs)
	}
	info := e.nodeInfo(context.Background())
	if !strings.HasPrefix(info.NotReady, "network: ") || !strings.Contains(info.NotReady, "subnet changed") || info.Network != nil {
		t.Errorf("node info not ready %q, network %+v; want the net manager's reason", info.NotReady, info.Network)
	}
	fn.mu.Lock()
	fn.refuse = ""
	fn.mu.Unlock()
	e.settleOnce(t)
	if info := e.nodeInfo(context.Background()); info.NotReady != "" {
		t.Errorf("still not ready after the net manager took the configuration: %q", info.NotReady)
	}
}
