package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
)

// The daemon's API and decisions without a datapath: a Daemon whose node
// has no overlay (no subnet yet, or one whose overlay is not set up in
// this process) touches no kernel state, so its handlers, state file and
// address and backend choices run in memory. The datapath itself (New,
// Configure with a subnet, Attach) is exercised against real namespaces by
// net_manager/cmd/thicket-net's tests.

func newTestDaemon(t *testing.T, st state) *Daemon {
	t.Helper()
	if st.Instances == nil {
		st.Instances = map[string]netapi.Attachment{}
	}
	dir := t.TempDir()
	return &Daemon{cfg: Config{DataDir: dir, Socket: filepath.Join(dir, "net.sock")}, log: slog.New(slog.DiscardHandler), owner: dir, st: st}
}

// call sends a request to the daemon's API and decodes the answer into out
// (if not nil); it returns the HTTP status and, for errors, the message.
func call(t *testing.T, d *Daemon, method, path, body string, out any) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	d.handler().ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	if rec.Code != http.StatusOK {
		var e netapi.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: error answer %q is no netapi.Error", method, path, rec.Body.String())
		}
		return rec.Code, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code, ""
}

// savedState reads the daemon's state file.
func savedState(t *testing.T, d *Daemon) state {
	t.Helper()
	b, err := os.ReadFile(d.statePath())
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAPIErrors: what the node engine gets for requests the daemon cannot
// serve.
func TestAPIErrors(t *testing.T) {
	withInstances := state{Subnet: "10.64.1.0/24", Instances: map[string]netapi.Attachment{"a": {Key: "a", IP: "10.64.1.2"}}}
	for _, tc := range []struct {
		name         string
		st           state
		method, path string
		body         string
		status       int
		msg          string // in the error
	}{
		{"malformed network", state{}, http.MethodPut, "/v1/network", "{", http.StatusBadRequest, "malformed JSON"},
		{"malformed attach", state{}, http.MethodPut, "/v1/instances/a", "[1]", http.StatusBadRequest, "malformed JSON"},
		{"attach before the node has a subnet", state{}, http.MethodPut, "/v1/instances/a", "{}", http.StatusServiceUnavailable, "no subnet yet"},
		{"subnet changed under instances", withInstances, http.MethodPut, "/v1/network", `{"node_id":"n1","subnet":"10.64.2.0/24"}`, http.StatusConflict,
			"subnet changed from 10.64.1.0/24 to 10.64.2.0/24 while 1 instances use it"},
		{"unknown route", state{}, http.MethodGet, "/v1/peers", "", http.StatusNotFound, ""},
		{"wrong method", state{}, http.MethodPost, "/v1/instances/a", "{}", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDaemon(t, tc.st)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			d.handler().ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("%s %s = %d %s; want %d with %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.status, tc.msg)
			}
			if tc.status != http.StatusNotFound && tc.status != http.StatusMethodNotAllowed {
				var e netapi.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error answer %q is no netapi.Error", rec.Body.String())
				}
			}
			// A refused change leaves the state as it was.
			if tc.st.Subnet != "" && d.st.Subnet != tc.st.Subnet {
				t.Errorf("subnet %q after a refused change; want %q", d.st.Subnet, tc.st.Subnet)
			}
		})
	}
}

// TestConfigureWithoutSubnet: the node's identity and overlay view are
// kept (and survive a restart, in the state file) before it has a subnet;
// it is not ready until it has one.
func TestConfigureWithoutSubnet(t *testing.T) {
	d := newTestDaemon(t, state{})
	var st netapi.Status
	if code, msg := call(t, d, http.MethodGet, "/v1/status", "", &st); code != http.StatusOK || st.Ready {
		t.Fatalf("status = %d %q %+v; want not ready", code, msg, st)
	}
	cfg := netapi.Config{NodeID: "n1", ClusterID: "c1", Network: wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}}}}
	body, _ := json.Marshal(cfg)
	if code, msg := call(t, d, http.MethodPut, "/v1/network", string(body), &st); code != http.StatusOK || st.Ready {
		t.Fatalf("configure = %d %q %+v; want 200, not ready", code, msg, st)
	}
	saved := savedState(t, d)
	if saved.NodeID != "n1" || saved.ClusterID != "c1" || saved.Subnet != "" || len(saved.Network.Services) != 1 {
		t.Errorf("saved state %+v", saved)
	}
}

// TestAttachmentsAndDetach: the instances' networks are listed by key; a
// detach forgets one (in the state file too) and is idempotent.
func TestAttachmentsAndDetach(t *testing.T) {
	d := newTestDaemon(t, state{NodeID: "n1", Instances: map[string]netapi.Attachment{
		"s.1": {Key: "s.1", IP: "10.64.1.3", Netns: "/run/netns/t-s.1"},
		"s.0": {Key: "s.0", IP: "10.64.1.2", Netns: "/run/netns/t-s.0"},
	}})
	var as []netapi.Attachment
	call(t, d, http.MethodGet, "/v1/instances", "", &as)
	if len(as) != 2 || as[0].Key != "s.0" || as[0].IP != "10.64.1.2" || as[1].Key != "s.1" {
		t.Fatalf("attachments %+v; want s.0 and s.1 by key", as)
	}
	for range 2 {
		if code, msg := call(t, d, http.MethodDelete, "/v1/instances/s.0", "", nil); code != http.StatusOK {
			t.Fatalf("detach = %d %q", code, msg)
		}
	}
	call(t, d, http.MethodGet, "/v1/instances", "", &as)
	if len(as) != 1 || as[0].Key != "s.1" {
		t.Errorf("attachments after detach %+v; want s.1", as)
	}
	if saved := savedState(t, d); len(saved.Instances) != 1 || saved.Instances["s.1"].IP != "10.64.1.3" {
		t.Errorf("saved instances %+v; want s.1 only", saved.Instances)
	}
	// Detaching what the daemon never knew is no error either.
	if code, _ := call(t, d, http.MethodDelete, "/v1/instances/never", "", nil); code != http.StatusOK {
		t.Errorf("detach of an unknown key = %d; want 200", code)
	}
}

// TestServeOverSocket: the node engine's client and the daemon agree on
// the socket's protocol: status, attachments, detach, and a not-ready
// attach as netapi.ErrNotReady.
func TestServeOverSocket(t *testing.T) {
	d := newTestDaemon(t, state{Instances: map[string]netapi.Attachment{"a": {Key: "a", IP: "10.64.1.2", Netns: "/run/netns/t-a"}}})
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "tn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d.cfg.Socket = filepath.Join(dir, "sub", "net.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	c := netapi.NewClient(d.cfg.Socket)
	var st netapi.Status
	for deadline := time.Now().Add(5 * time.Second); ; {
		if st, err = c.Status(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon does not answer on its socket: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.Ready {
		t.Errorf("status %+v; want not ready", st)
	}
	if fi, err := os.Stat(d.cfg.Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v; want 0600 (only root talks to the net manager)", fi.Mode().Perm(), err)
	}
	as, err := c.Attachments(ctx)
	if err != nil || len(as) != 1 || as[0].Key != "a" || as[0].IP != "10.64.1.2" || as[0].Netns != "/run/netns/t-a" {
		t.Errorf("attachments %+v, %v", as, err)
	}
	if _, err := c.Attach(ctx, "b", netapi.AttachRequest{}); !errors.Is(err, netapi.ErrNotReady) {
		t.Errorf("attach before a subnet = %v; want ErrNotReady", err)
	}
	if err := c.Detach(ctx, "a"); err != nil {
		t.Error(err)
	}
	if as, _ := c.Attachments(ctx); len(as) != 0 {
		t.Errorf("attachments after detach: %+v", as)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v after its context ended; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// TestFreeIP: an instance gets the lowest free address after the VTEP
// (.0) and the gateway (.1), never the broadcast address; a full subnet is
// an error.
func TestFreeIP(t *testing.T) {
	used := func(ips ...string) map[string]netapi.Attachment {
		m := map[string]netapi.Attachment{}
		for _, ip := range ips {
			m[ip] = netapi.Attachment{Key: ip, IP: ip}
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		subnet string
		used   map[string]netapi.Attachment
		want   string // "" for full
	}{
		{"empty subnet", "10.64.1.0/24", nil, "10.64.1.2"},
		{"lowest free", "10.64.1.0/24", used("10.64.1.2", "10.64.1.4"), "10.64.1.3"},
		{"after the used ones", "10.64.1.0/24", used("10.64.1.2", "10.64.1.3"), "10.64.1.4"},
		{"the last before broadcast", "10.64.1.0/29", used("10.64.1.2", "10.64.1.3", "10.64.1.4", "10.64.1.5"), "10.64.1.6"},
		{"full: broadcast is not given", "10.64.1.0/29", used("10.64.1.2", "10.64.1.3", "10.64.1.4", "10.64.1.5", "10.64.1.6"), ""},
		{"a /30 has one address", "10.64.1.4/30", nil, "10.64.1.6"},
		{"subnet given unmasked", "10.64.1.77/24", nil, "10.64.1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDaemon(t, state{Subnet: tc.subnet, Instances: tc.used})
			ip, err := d.freeIP()
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "is full") {
					t.Errorf("freeIP = %v, %v; want full", ip, err)
				}
				return
			}
			if err != nil || ip != netip.MustParseAddr(tc.want) {
				t.Errorf("freeIP = %v, %v; want %s", ip, err, tc.want)
			}
		})
	}
}

// TestServiceBackends: a round-robin service IP spreads over all its
// backends; a closest one over those on this node, else in this cluster,
// else all; unparsable routes and backends are skipped.
func TestServiceBackends(t *testing.T) {
	b := func(ip, node, cluster string) wire.Backend {
		return wire.Backend{IP: ip, NodeID: node, ClusterID: cluster}
	}
	here := b("10.64.1.2", "n1", "c1")
	sameCluster := b("10.64.2.2", "n2", "c1")
	elsewhere := b("10.65.1.2", "n9", "c2")
	elsewhere2 := b("10.65.2.2", "n8", "c2")
	sameCluster2 := b("10.64.3.2", "n3", "c1")
	rtt := map[string]int{"n2": 40, "n3": 40, "n9": 5, "n8": 90}
	for _, tc := range []struct {
		name  string
		route wire.ServiceRoute
		rtt   map[string]int
		want  []string // nil: no service
	}{
		{"round robin over all", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteRoundRobin, Backends: []wire.Backend{here, sameCluster, elsewhere}}, nil, []string{"10.64.1.2", "10.64.2.2", "10.65.1.2"}},
		{"closest: on this node", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{elsewhere, here, sameCluster}}, nil, []string{"10.64.1.2"}},
		{"closest: in this cluster", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{elsewhere, sameCluster}}, nil, []string{"10.64.2.2"}},
		{"closest: anywhere", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{elsewhere}}, nil, []string{"10.65.1.2"}},
		{"closest by round trip: on this node first", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{elsewhere, here, sameCluster}}, rtt, []string{"10.64.1.2"}},
		{"closest by round trip: the nearest node, even in another cluster", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{sameCluster, elsewhere2, elsewhere}}, rtt, []string{"10.65.1.2"}},
		{"closest by round trip: nodes at a tie share", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{sameCluster, elsewhere2, sameCluster2}}, rtt, []string{"10.64.2.2", "10.64.3.2"}},
		{"closest by round trip: measured beats unmeasured", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{b("10.64.4.2", "n4", "c1"), elsewhere2}}, rtt, []string{"10.65.2.2"}},
		{"closest by round trip: none measured, this cluster", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{b("10.64.4.2", "n4", "c1"), b("10.65.9.2", "n7", "c2")}}, rtt, []string{"10.64.4.2"}},
		{"no backends: the IP still answers (and refuses)", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteRoundRobin}, nil, []string{}},
		{"a bad backend address is skipped", wire.ServiceRoute{IP: "10.30.0.1", Mode: wire.RouteRoundRobin, Backends: []wire.Backend{b("nope", "n1", "c1"), here}}, nil, []string{"10.64.1.2"}},
		{"a bad service IP is skipped", wire.ServiceRoute{IP: "10.30.0.999", Mode: wire.RouteRoundRobin, Backends: []wire.Backend{here}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDaemon(t, state{NodeID: "n1", ClusterID: "c1", Network: wire.Network{Services: []wire.ServiceRoute{tc.route}}, RTTMS: tc.rtt})
			svcs := d.services()
			if tc.want == nil {
				if len(svcs) != 0 {
					t.Errorf("services %+v; want none", svcs)
				}
				return
			}
			if len(svcs) != 1 || svcs[0].IP != netip.MustParseAddr(tc.route.IP) {
				t.Fatalf("services %+v; want one for %s", svcs, tc.route.IP)
			}
			got := []string{}
			for _, a := range svcs[0].Backends {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("backends %v; want %v", got, tc.want)
			}
		})
	}
}
