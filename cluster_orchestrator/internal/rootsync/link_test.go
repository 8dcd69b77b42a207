package rootsync

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/mongodb"
)

// The link between a fake root (httptest) and a fake cluster manager, over
// the cluster's real store (the embedded engine).

// fakeRoot is the root's side of the cluster API.
type fakeRoot struct {
	t *testing.T

	mu         sync.Mutex
	credential string // the one credential accepted; "" until registered
	registered int
	shown      string // the credential the last registration showed
	taken      bool   // registrations are refused: the name is taken
	syncs      []wire.ClusterSync
	acks       []wire.ClusterSyncAck // answered in order; the last one repeats
	fail       int                   // the next syncs answered 500
	watches    []string              // the query of each watch
	answers    chan wire.ClusterDesired

	// Client certificates (clientcert_test.go): the root's CA issues them
	// valid for certTTL; presented are the serials of those the syncs
	// presented ("" none), issued the serials issued.
	ca        *pki.CA
	certTTL   time.Duration
	presented []string
	issued    []string
	renewals  int
}

func newFakeRoot(t *testing.T) (*fakeRoot, *httptest.Server) {
	ca, err := pki.NewCA("fake root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRoot{t: t, answers: make(chan wire.ClusterDesired, 8), ca: ca, certTTL: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/cluster/register", func(w http.ResponseWriter, req *http.Request) {
		var body wire.ClusterRegisterRequest
		_ = json.NewDecoder(req.Body).Decode(&body)
		if req.Header.Get("Authorization") != "Bearer join-token" || body.Name != "c1" || body.Version != wire.Version {
			http.Error(w, `{"error":"bad join token"}`, http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.taken {
			http.Error(w, `{"error":"cluster name \"c1\" is taken by a registered cluster"}`, http.StatusConflict)
			return
		}
		r.shown = body.Credential
		r.registered++
		r.credential = "cred-" + strings.Repeat("x", r.registered)
		writeJSONTest(w, wire.ClusterRegisterResponse{ClusterID: "cluster-1", Credential: r.credential, Block: "10.64.0.0/18",
			CertPEM: r.issue(body.CSRPEM)})
	})
	mux.HandleFunc("POST /api/cluster/sync", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.credential == "" || req.Header.Get("Authorization") != "Bearer "+r.credential {
			http.Error(w, `{"error":"unknown cluster"}`, http.StatusUnauthorized)
			return
		}
		if r.fail > 0 {
			r.fail--
			http.Error(w, `{"error":"busy"}`, http.StatusInternalServerError)
			return
		}
		r.presented = append(r.presented, serialOf(req))
		var s wire.ClusterSync
		if err := json.NewDecoder(req.Body).Decode(&s); err != nil {
			t.Errorf("malformed sync: %v", err)
		}
		r.syncs = append(r.syncs, s)
		ack := wire.ClusterSyncAck{Version: wire.Version, Epoch: "E1", SyncIntervalMS: 2000}
		if len(r.acks) > 0 {
			ack = r.acks[0]
			if len(r.acks) > 1 {
				r.acks = r.acks[1:]
			}
		}
		writeJSONTest(w, ack)
	})
	mux.HandleFunc("GET /api/cluster/desired", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		ok := r.credential != "" && req.Header.Get("Authorization") == "Bearer "+r.credential
		r.watches = append(r.watches, req.URL.RawQuery)
		r.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"unknown cluster"}`, http.StatusUnauthorized)
			return
		}
		select {
		case a := <-r.answers:
			writeJSONTest(w, a)
		case <-req.Context().Done():
		}
	})
	mux.HandleFunc("POST /api/cluster/certificate", r.renew)
	srv := httptest.NewUnstartedServer(mux)
	cert, err := ca.Issue(pki.Leaf{Name: "root", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = pki.VerifyClients(&tls.Config{Certificates: []tls.Certificate{cert}}, ca, nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pins.Store(srv.URL, ca.Pin())
	return r, srv
}

// pins holds each fake root's CA pin by URL.
var pins sync.Map

// pinned is tok carrying the pin of the fake root at url.
func pinned(t *testing.T, url, tok string) string {
	t.Helper()
	pin, _ := pins.Load(url)
	tok, err := pki.JoinToken(pin.(string), tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// lastSync returns the last sync the root took.
func (r *fakeRoot) lastSync() wire.ClusterSync {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.syncs) == 0 {
		r.t.Fatal("no sync reached the root")
	}
	return r.syncs[len(r.syncs)-1]
}

// fakeCluster is the cluster manager as the link sees it.
type fakeCluster struct {
	mu       sync.Mutex
	nodes    []wire.NodeInfo
	statuses []wire.InstanceStatus
	want     int
	calls    []string // "set a,b -r", "update a -b", "network cluster-1 10.64.0.0/18 n=1"
	desired  []string // keys of the last full set
}

func (c *fakeCluster) Nodes() []wire.NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

func (c *fakeCluster) Statuses() []wire.InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statuses)
}

func keyList(specs []wire.InstanceSpec) string {
	var ks []string
	for _, s := range specs {
		ks = append(ks, s.Key)
	}
	return strings.Join(ks, ",")
}

func (c *fakeCluster) SetDesired(specs []wire.InstanceSpec, removed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "set "+keyList(specs)+" -"+strings.Join(removed, ","))
}

func (c *fakeCluster) UpdateDesired(specs []wire.InstanceSpec, removed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "update "+keyList(specs)+" -"+strings.Join(removed, ","))
}

func (c *fakeCluster) SetNetwork(clusterID string, blocks []string, n wire.Network) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ips []string
	for _, s := range n.Services {
		ips = append(ips, s.IP)
	}
	c.calls = append(c.calls, "network "+clusterID+" "+strings.Join(blocks, ",")+" "+strings.Join(ips, ","))
}

func (c *fakeCluster) TakeEvents() []wire.Event { return nil }

func (c *fakeCluster) SetNodeModes(cordoned, drained []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(cordoned)+len(drained) > 0 {
		c.calls = append(c.calls, "cordoned "+strings.Join(cordoned, ",")+" drained "+strings.Join(drained, ","))
	}
}

func (c *fakeCluster) DeleteNodes(_ context.Context, ids []string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ids) > 0 {
		c.calls = append(c.calls, "deleted "+strings.Join(ids, ","))
	}
	return len(ids), nil
}

func (c *fakeCluster) WantBlocks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.want
}

// takeCalls returns and forgets the calls so far.
func (c *fakeCluster) takeCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// clusterStore is the cluster's store in dir (the embedded engine).
func clusterStore(t *testing.T) *state.Store {
	t.Helper()
	ctx := context.Background()
	conn, err := mongodb.Open(ctx, mongodb.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	st, err := state.New(ctx, conn.Client.Database("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newLink is a link to the fake root at url with token, which gets the
// root's pin.
func newLink(t *testing.T, url string, st *state.Store, c Cluster, token string) *Link {
	t.Helper()
	l, err := New(context.Background(), Config{RootURL: url + "/", JoinToken: pinned(t, url, token), Register: wire.ClusterRegisterRequest{Name: "c1"}, Interval: time.Hour},
		st, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func kicked(l *Link) bool {
	select {
	case <-l.kick:
		return true
	default:
		return false
	}
}

// TestSyncCycle: the first sync registers and sends everything; the next
// ones only what changed since the sync the root acknowledged; a sync the
// root did not take is sent again; a root that asks for a resync gets
// everything at once; a refused credential makes the cluster register
// again; a restarted cluster manager keeps its identity.
func TestSyncCycle(t *testing.T) {
	ctx := context.Background()
	root, srv := newFakeRoot(t)
	st := clusterStore(t)
	n1 := wire.NodeInfo{ID: "n1", Name: "n1", Active: true}
	a := wire.InstanceStatus{Key: "s.0", Status: wire.StatusCreating, NodeID: "n1"}
	b := wire.InstanceStatus{Key: "s.1", Status: wire.StatusRunning, NodeID: "n1"}
	c := &fakeCluster{nodes: []wire.NodeInfo{n1}, statuses: []wire.InstanceStatus{a, b}}
	l := newLink(t, srv.URL, st, c, "join-token")

	every, err := l.once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if every != 2*time.Second {
		t.Errorf("interval %s; want the root's 2s", every)
	}
	s := root.lastSync()
	if root.registered != 1 || s.Epoch != "" || !s.Delta || len(s.Nodes) != 1 || len(s.Instances) != 2 {
		t.Fatalf("first sync: registered %d, %+v; want a registration and everything", root.registered, s)
	}
	id, err := st.Identity(ctx)
	if err != nil || id == nil || id.ClusterID != "cluster-1" || id.Credential != "cred-x" || id.Block != "10.64.0.0/18" || id.RootURL != srv.URL {
		t.Fatalf("saved identity %+v, %v", id, err)
	}

	steps := []struct {
		name      string
		change    func()
		fail      bool
		wantEpoch string
		wantKeys  []string
	}{
		{name: "nothing changed", wantEpoch: "E1"},
		{name: "one status changed", change: func() { c.statuses[0].Status = wire.StatusRunning }, wantEpoch: "E1", wantKeys: []string{"s.0"}},
		{name: "a change the root did not take", change: func() { c.statuses[1].Restarts = 1 }, fail: true},
		{name: "is sent again", wantEpoch: "E1", wantKeys: []string{"s.1"}},
	}
	for _, step := range steps {
		if step.change != nil {
			c.mu.Lock()
			step.change()
			c.mu.Unlock()
		}
		if step.fail {
			root.mu.Lock()
			root.fail = 1
			root.mu.Unlock()
			if _, err := l.once(ctx); err == nil || !strings.Contains(err.Error(), "busy") {
				t.Fatalf("%s: once = %v; want the root's error", step.name, err)
			}
			continue
		}
		if _, err := l.once(ctx); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		s := root.lastSync()
		if s.Epoch != step.wantEpoch || !slices.Equal(keysOf(s.Instances), step.wantKeys) || len(s.Nodes) != 0 {
			t.Fatalf("%s: sent epoch %q statuses %v nodes %d; want %q %v 0", step.name, s.Epoch, keysOf(s.Instances), len(s.Nodes), step.wantEpoch, step.wantKeys)
		}
	}

	// The root restarted and asks for everything: the next sync, at once.
	root.mu.Lock()
	root.acks = []wire.ClusterSyncAck{{Version: wire.Version, Epoch: "E2", Resync: true}, {Version: wire.Version, Epoch: "E2"}}
	root.mu.Unlock()
	kicked(l)
	if _, err := l.once(ctx); err != nil {
		t.Fatal(err)
	}
	if !kicked(l) {
		t.Error("a resync did not ask for the next sync at once")
	}
	if _, err := l.once(ctx); err != nil {
		t.Fatal(err)
	}
	if s := root.lastSync(); s.Epoch != "" || len(s.Instances) != 2 || len(s.Nodes) != 1 {
		t.Errorf("after a resync: epoch %q, %d statuses, %d nodes; want everything", s.Epoch, len(s.Instances), len(s.Nodes))
	}

	// The root forgot the cluster's credential: the sync fails, the
	// cluster registers again and sends everything under the new one.
	root.mu.Lock()
	root.credential = "revoked"
	root.mu.Unlock()
	if _, err := l.once(ctx); !errors.Is(err, errRejected) {
		t.Fatalf("sync with a revoked credential = %v; want errRejected", err)
	}
	if _, err := l.once(ctx); err != nil {
		t.Fatal(err)
	}
	if s := root.lastSync(); root.registered != 2 || s.Epoch != "" || len(s.Instances) != 2 {
		t.Errorf("after registering again: registered %d, epoch %q, %d statuses", root.registered, s.Epoch, len(s.Instances))
	}
	if root.shown != "" {
		t.Errorf("registering after a refused credential showed %q", root.shown)
	}

	// A restarted cluster manager (a new link over the same store) is the
	// same cluster: it does not register again.
	l2 := newLink(t, srv.URL, st, c, "join-token")
	if _, err := l2.once(ctx); err != nil {
		t.Fatal(err)
	}
	if root.registered != 2 {
		t.Errorf("a restarted link registered again (%d registrations)", root.registered)
	}
	// Pointed at another root, it registers there.
	root2, srv2 := newFakeRoot(t)
	l3 := newLink(t, srv2.URL, st, c, "join-token")
	if _, err := l3.once(ctx); err != nil || root2.registered != 1 {
		t.Errorf("at another root: %v, registered %d", err, root2.registered)
	}
	// There it shows the credential it holds (the same root under another
	// address gives it its name back).
	if root2.shown != root.credential {
		t.Errorf("registering at another address showed %q, want the credential it holds %q", root2.shown, root.credential)
	}
}

// TestNameTaken: a root that refuses the name (another cluster holds it)
// gives an error that says what to do, and nothing is saved.
func TestNameTaken(t *testing.T) {
	ctx := context.Background()
	root, srv := newFakeRoot(t)
	root.taken = true
	st := clusterStore(t)
	l := newLink(t, srv.URL, st, &fakeCluster{}, "join-token")
	if _, err := l.once(ctx); err == nil || !strings.Contains(err.Error(), "belongs to another registered cluster") ||
		!strings.Contains(err.Error(), "scoped to the name") {
		t.Fatalf("once = %v; want the name taken, with what to do", err)
	}
	if id, err := st.Identity(ctx); err != nil || id != nil {
		t.Errorf("identity saved after a refusal: %+v, %v", id, err)
	}
}

// TestJoinTokenRefused: a refused join token is an error that says so,
// and nothing is saved.
func TestJoinTokenRefused(t *testing.T) {
	ctx := context.Background()
	_, srv := newFakeRoot(t)
	st := clusterStore(t)
	l := newLink(t, srv.URL, st, &fakeCluster{}, "wrong")
	if _, err := l.once(ctx); err == nil || !strings.Contains(err.Error(), "join token was refused") {
		t.Fatalf("once = %v; want the join token refused", err)
	}
	if id, err := st.Identity(ctx); err != nil || id != nil {
		t.Errorf("identity saved after a refusal: %+v, %v", id, err)
	}
}

// TestAskBlocks: a cluster that needs address blocks asks in its sync,
// then not again until the root answered (its blocks changed) or a while
// passed.
func TestAskBlocks(t *testing.T) {
	c := &fakeCluster{want: 2}
	l := &Link{c: c, id: &state.Identity{Block: "10.64.0.0/18"}}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		name   string
		at     time.Duration
		blocks []string
		want   int
	}{
		{"first ask", 0, nil, 2},
		{"no answer yet", time.Second, nil, 0},
		{"still none, after a while", askEvery + time.Second, nil, 2},
		{"the root answered with one", askEvery + 2*time.Second, []string{"10.64.0.0/18", "10.64.64.0/18"}, 2},
		{"unanswered since", askEvery + 3*time.Second, []string{"10.64.0.0/18", "10.64.64.0/18"}, 0},
	} {
		if step.blocks != nil {
			l.id.Blocks = step.blocks
		}
		if got := l.askBlocks(t0.Add(step.at)); got != step.want {
			t.Errorf("%s: asked for %d; want %d", step.name, got, step.want)
		}
	}
	c.want = 0
	if got := l.askBlocks(t0.Add(time.Hour)); got != 0 {
		t.Errorf("a cluster that needs no block asked for %d", got)
	}
}

// TestWatch: the watch hands the cluster the root's full sets and deltas
// as they come, asks for changes after the generation it holds, tells the
// cluster of network changes only, and saves new address blocks.
func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, srv := newFakeRoot(t)
	st := clusterStore(t)
	c := &fakeCluster{}
	l := newLink(t, srv.URL, st, c, "join-token")
	if _, err := l.once(ctx); err != nil { // registers
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	spec := func(k string) wire.InstanceSpec { return wire.InstanceSpec{Key: k} }
	net1 := wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}}}
	net2 := wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}, {IP: "10.30.0.2"}}}
	blocks := []string{"10.64.0.0/18"}
	for i, step := range []struct {
		name      string
		answer    wire.ClusterDesired
		wantQuery string // of the watch that got this answer
		wantCalls []string
	}{
		{"a full set", wire.ClusterDesired{Epoch: "E", Generation: 3, Instances: []wire.InstanceSpec{spec("a"), spec("b")}, Removed: []string{"z"}, Network: net1, Blocks: blocks},
			"after=0", []string{"set a,b -z", "network cluster-1 10.64.0.0/18 10.30.0.1"}},
		{"a delta of the desired set only", wire.ClusterDesired{Epoch: "E", Generation: 5, Delta: true, Instances: []wire.InstanceSpec{spec("c")}, Removed: []string{"a"}, NetworkUnchanged: true, Blocks: blocks},
			"after=3", []string{"update c -a"}},
		{"a delta of the network only", wire.ClusterDesired{Epoch: "E", Generation: 6, Delta: true, Network: net2, Blocks: blocks},
			"after=5", []string{"network cluster-1 10.64.0.0/18 10.30.0.1,10.30.0.2"}},
		{"a new block", wire.ClusterDesired{Epoch: "E", Generation: 7, Delta: true, NetworkUnchanged: true, Blocks: []string{"10.64.0.0/18", "10.64.64.0/18"}},
			"after=6", []string{"network cluster-1 10.64.0.0/18,10.64.64.0/18 10.30.0.1,10.30.0.2"}},
		{"a delta under another epoch (the root restarted) is a full set", wire.ClusterDesired{Epoch: "F", Generation: 1, Delta: true, Instances: []wire.InstanceSpec{spec("x")}, NetworkUnchanged: true, Blocks: []string{"10.64.0.0/18", "10.64.64.0/18"}},
			"after=7", []string{"set x -", "network cluster-1 10.64.0.0/18,10.64.64.0/18 10.30.0.1,10.30.0.2"}},
		{"the next watch asks under the new epoch", wire.ClusterDesired{Epoch: "F", Generation: 2, Delta: true, NetworkUnchanged: true, Blocks: []string{"10.64.0.0/18", "10.64.64.0/18"}},
			"epoch=F&after=1", nil},
		{"the nodes an admin deleted come before the set", wire.ClusterDesired{Epoch: "F", Generation: 3, Delta: true, Instances: []wire.InstanceSpec{spec("y")}, NetworkUnchanged: true,
			Blocks: []string{"10.64.0.0/18", "10.64.64.0/18"}, DeletedNodes: []string{"n2", "n3"}},
			"epoch=F&after=2", []string{"deleted n2,n3", "update y -"}},
		{"the nodes an admin cordoned and drains come before the set", wire.ClusterDesired{Epoch: "F", Generation: 4, Delta: true, Instances: []wire.InstanceSpec{spec("w")}, NetworkUnchanged: true,
			Blocks: []string{"10.64.0.0/18", "10.64.64.0/18"}, CordonedNodes: []string{"n1"}, DrainedNodes: []string{"n4"}},
			"epoch=F&after=3", []string{"cordoned n1 drained n4", "update w -"}},
	} {
		root.answers <- step.answer
		// The watch loop is sequential: once the next watch is in, this
		// answer has been handled.
		deadline := time.Now().Add(5 * time.Second)
		for {
			root.mu.Lock()
			n := len(root.watches)
			root.mu.Unlock()
			if n >= i+2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no next watch within 5 s", step.name)
			}
			time.Sleep(time.Millisecond)
		}
		if calls := c.takeCalls(); !slices.Equal(calls, step.wantCalls) {
			t.Errorf("%s: cluster got %v; want %v", step.name, calls, step.wantCalls)
		}
		root.mu.Lock()
		q := root.watches[i]
		root.mu.Unlock()
		if !strings.Contains(q, step.wantQuery) || !strings.Contains(q, "delta=1") {
			t.Errorf("%s: watch asked %q; want %q", step.name, q, step.wantQuery)
		}
	}
	id, err := st.Identity(ctx)
	if err != nil || id == nil || !slices.Equal(id.AllBlocks(), []string{"10.64.0.0/18", "10.64.64.0/18"}) {
		t.Errorf("saved identity %+v, %v; want both blocks", id, err)
	}
}

// TestRunSyncsWhenKicked: the link syncs at once, then at the root's
// interval or as soon as it is kicked (an instance changed state); a root
// that fails does not stop it.
func TestRunSyncsWhenKicked(t *testing.T) {
	root, srv := newFakeRoot(t)
	root.acks = []wire.ClusterSyncAck{{Version: wire.Version, Epoch: "E1", SyncIntervalMS: time.Hour.Milliseconds()}}
	c := &fakeCluster{statuses: []wire.InstanceStatus{{Key: "s.0", Status: wire.StatusCreating}}}
	l := newLink(t, srv.URL, clusterStore(t), c, "join-token")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	syncs := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			root.mu.Lock()
			got := len(root.syncs)
			root.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d syncs within 5 s; want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	syncs(1)
	root.mu.Lock()
	root.fail = 1
	root.mu.Unlock()
	l.Kick() // fails
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	c.statuses[0].Status = wire.StatusRunning
	c.mu.Unlock()
	l.Kick()
	syncs(2)
	if s := root.lastSync(); len(s.Instances) != 1 || s.Instances[0].Status != wire.StatusRunning {
		t.Errorf("the kicked sync sent %+v; want the change", s.Instances)
	}
}
