package engine

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// The engine's reports and desired sets go through an in-process broker:
// the test reads what the engine publishes and publishes what the cluster
// would.

type testBroker struct {
	srv     *mqtt.Server
	url     string
	caPEM   string // the CA of its TLS certificate
	reports chan wire.NodeReport
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(mqttctest.AllowAll), nil); err != nil {
		t.Fatal(err)
	}
	// Over TLS, as the cluster's broker serves by default.
	ca, cert, err := pki.NewCAWithLeaf("test cluster CA", pki.Leaf{Name: "broker", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	b := &testBroker{srv: srv, url: "mqtts://" + tcp.Address(), caPEM: string(ca.PEM), reports: make(chan wire.NodeReport, 16)}
	if err := srv.Subscribe(wire.ReportTopic("+"), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var r wire.NodeReport
		if err := json.Unmarshal(pk.Payload, &r); err != nil {
			t.Errorf("malformed report: %v", err)
			return
		}
		b.reports <- r
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

func testCredentials(url, caPEM string) *credentials {
	return &credentials{NodeRegisterResponse: wire.NodeRegisterResponse{
		NodeID: "node-1", MQTTURL: url, MQTTCAPEM: caPEM, DesiredTopic: wire.DesiredTopic("node-1"), ReportTopic: wire.ReportTopic("node-1"), ReportIntervalMS: 1000,
	}}
}

// connect connects the engine to the broker as its node.
func (b *testBroker) connect(t *testing.T, e *Engine) (*mqttc.Client, *credentials) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := testCredentials(b.url, b.caPEM)
	cl, err := e.connect(ctx, ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, c
}

// report has the engine report once and returns what the broker got.
func (b *testBroker) report(t *testing.T, e *Engine, cl *mqttc.Client, c *credentials) wire.NodeReport {
	t.Helper()
	e.report(context.Background(), cl, c)
	select {
	case r := <-b.reports:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5 s")
		return wire.NodeReport{}
	}
}

func byKey(sts []wire.InstanceStatus) map[string]wire.InstanceStatus {
	out := map[string]wire.InstanceStatus{}
	for _, s := range sts {
		out[s.Key] = s
	}
	return out
}

// TestReportStatuses: every desired instance is reported with what the
// node knows of it; held instances are reported too; log tails go once.
func TestReportStatuses(t *testing.T) {
	b := startBroker(t)
	rt := newFakeRuntime("container",
		runtimes.State{Key: "run", Status: wire.StatusRunning, StartedAt: time.Now().Add(-time.Minute)},
		exited("crash", wire.StatusFailed, time.Second, 0),
		exited("job", wire.StatusCompleted, time.Second, time.Minute),
		runtimes.State{Key: "held", Status: wire.StatusRunning},
		runtimes.State{Key: "held2", Status: wire.StatusRunning},
	)
	rt.logs["run"] = "hello\n"
	rt.usage = runtimes.Usage{CPUPercent: 12.5, MemoryMB: 42}
	rt.startErr["bad"] = errors.New("pull docker.io/bad: not found")
	e := newTestEngine(Config{}, rt)
	cl, c := b.connect(t, e)

	job := specs("job")[0]
	job.OneShot = true
	uni := wire.InstanceSpec{Key: "uni", Virtualization: "unikernel"}
	// held and held2: dropped by an earlier set without being removed.
	e.want(wire.NodeDesired{Generation: 7, Instances: append(specs("run", "crash", "bad"), job, uni)})
	e.mu.Lock()
	e.held["held"], e.held["held2"] = true, true
	e.mu.Unlock()
	e.settleOnce(t)

	r := b.report(t, e, cl, c)
	if r.NodeID != "node-1" || r.Generation != 7 || !r.Full || r.Node.Name != "n1" || r.Node.Address != "192.0.2.10" {
		t.Errorf("report header: node %q generation %d full %v node %+v", r.NodeID, r.Generation, r.Full, r.Node)
	}
	got := byKey(r.Instances)
	for _, tc := range []struct {
		key, status, detail string
	}{
		{"run", wire.StatusRunning, ""},
		{"crash", wire.StatusFailed, "exited with code 1; restarting in "},
		{"bad", wire.StatusFailed, "pull docker.io/bad: not found"},
		{"job", wire.StatusCompleted, "exited with code 1"},
		{"uni", wire.StatusFailed, "virtualization unikernel is not supported on this node"},
		{"held", wire.StatusRunning, "held: the desired set dropped it without removing it"},
	} {
		s, ok := got[tc.key]
		if !ok {
			t.Errorf("%s not reported (got %s)", tc.key, statusKeys(r.Instances))
			continue
		}
		if s.Status != tc.status || !strings.HasPrefix(s.Detail, tc.detail) || (tc.detail == "") != (s.Detail == "") || s.HostIP != "192.0.2.10" {
			t.Errorf("%s: %s %q host %q; want %s %q", tc.key, s.Status, s.Detail, s.HostIP, tc.status, tc.detail)
		}
	}
	// A restart pending: when it comes is said (the API shows BACKOFF);
	// nothing else is pending.
	if at := got["crash"].RestartAt; !at.After(time.Now()) || at.After(time.Now().Add(2*time.Second)) {
		t.Errorf("crashed instance: restart at %v, want within its 1 s backoff", at)
	}
	for _, k := range []string{"run", "bad", "job", "uni", "held"} {
		if at := got[k].RestartAt; !at.IsZero() {
			t.Errorf("%s: restart at %v, want none", k, at)
		}
	}
	// What happened goes up once, as events.
	var evs []string
	for _, ev := range r.Events {
		if ev.Source != "node" || ev.Time.IsZero() {
			t.Errorf("event %+v: want source node and a time", ev)
		}
		evs = append(evs, ev.Key+": "+ev.Message)
	}
	if !slices.ContainsFunc(evs, func(s string) bool { return strings.HasPrefix(s, "crash: exited with code 1; restarting in 1s") }) {
		t.Errorf("events %q lack the crash and its pending restart", evs)
	}
	if r2 := b.report(t, e, cl, c); len(r2.Events) != 0 {
		t.Errorf("events sent again: %v", r2.Events)
	}
	if strings.Contains(got["job"].Detail, "restarting") {
		t.Errorf("a one-shot instance is said to restart: %q", got["job"].Detail)
	}
	if run := got["run"]; run.Logs != "hello\n" || run.CPUPercent != 12.5 || run.MemoryMB != 42 || run.StartedAt.IsZero() {
		t.Errorf("running instance: logs %q cpu %v mem %v started %v", run.Logs, run.CPUPercent, run.MemoryMB, run.StartedAt)
	}
	if len(r.Instances) != 7 {
		t.Errorf("%d statuses (%s); want 5 desired and 2 held", len(r.Instances), statusKeys(r.Instances))
	}

	// The next report leaves out the log tail the cluster has; a new one
	// goes again.
	if r := b.report(t, e, cl, c); byKey(r.Instances)["run"].Logs != "" {
		t.Errorf("an unchanged log tail was sent again")
	}
	rt.mu.Lock()
	rt.logs["run"] = "hello\nworld\n"
	rt.mu.Unlock()
	if r := b.report(t, e, cl, c); byKey(r.Instances)["run"].Logs != "hello\nworld\n" {
		t.Errorf("a new log tail was not sent")
	}
}

// TestReportWhileStarting: an instance whose start is under way is
// CREATING; one the node has not started yet says it waits.
func TestReportWhileStarting(t *testing.T) {
	b := startBroker(t)
	rt := newFakeRuntime("container")
	e := newTestEngine(Config{}, rt)
	cl, c := b.connect(t, e)
	e.want(wire.NodeDesired{Generation: 1, Instances: specs("a", "b")})
	e.mu.Lock()
	e.busy["a"] = "starting"
	e.mu.Unlock()
	got := byKey(b.report(t, e, cl, c).Instances)
	if a := got["a"]; a.Status != wire.StatusCreating || a.Detail != "starting" {
		t.Errorf("a: %s %q; want CREATING starting", a.Status, a.Detail)
	}
	if b := got["b"]; b.Status != wire.StatusCreating || b.Detail != "waiting to start" {
		t.Errorf("b: %s %q; want CREATING waiting to start", b.Status, b.Detail)
	}
}

// TestDesiredSetDelivery: the engine takes the desired sets the cluster
// publishes, keeps the newest generation (a stale retained one does not
// win over it), and drops malformed ones and those of another version.
func TestDesiredSetDelivery(t *testing.T) {
	b := startBroker(t)
	e := newTestEngine(Config{}, newFakeRuntime("container"))
	topic := wire.DesiredTopic("node-1")
	publish := func(v any) {
		t.Helper()
		p, _ := v.([]byte)
		if p == nil {
			p, _ = json.Marshal(v)
		}
		if err := b.srv.Publish(topic, p, true, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Retained before the engine connects: it gets it on subscribing.
	publish(wire.NodeDesired{Version: wire.Version, Generation: 5, Instances: specs("a")})
	b.connect(t, e)
	waitGen := func(want int64, keys string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			d, ok := e.desiredSet()
			var ks []string
			for _, s := range d.Instances {
				ks = append(ks, s.Key)
			}
			if ok && d.Generation == want && strings.Join(ks, ",") == keys {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("desired set generation %d %v (have %v); want %d [%s]", d.Generation, ks, ok, want, keys)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGen(5, "a")
	for _, step := range []struct {
		name    string
		payload any
		gen     int64
		keys    string
	}{
		{"an older generation is ignored", wire.NodeDesired{Version: wire.Version, Generation: 4, Instances: specs("old")}, 5, "a"},
		{"another version is dropped", wire.NodeDesired{Version: "v0", Generation: 9, Instances: specs("x")}, 5, "a"},
		{"malformed JSON is dropped", []byte("{not json"), 5, "a"},
		{"a newer generation is taken", wire.NodeDesired{Version: wire.Version, Generation: 6, Instances: specs("a", "b")}, 6, "a,b"},
		{"the same generation again is taken (a cluster restarted)", wire.NodeDesired{Version: wire.Version, Generation: 6, Instances: specs("c")}, 6, "c"},
		{"a generation far below (a new cluster's counter) is taken", wire.NodeDesired{Version: wire.Version, Generation: 6 - (1 << 41), Instances: specs("d")}, 6 - (1 << 41), "d"},
	} {
		publish(step.payload)
		// A marker that is always taken would race with the step; wait a
		// little for a dropped one instead, then check.
		time.Sleep(50 * time.Millisecond)
		waitGen(step.gen, step.keys)
	}
	// A set that arrives wakes the reconciler.
	select {
	case <-e.kick:
	default:
		t.Error("a desired set did not kick the reconciler")
	}
}

// TestReportAfterReconcile: the report that follows a reconcile (the
// serve loop's) takes what the reconcile saw the runtimes hold, without
// asking them again, unless a start or removal ended or an instance exited
// since: then it asks, and reports what is.
func TestReportAfterReconcile(t *testing.T) {
	b := startBroker(t)
	rt := newFakeRuntime("container", running("a", "b")...)
	rt.usage = runtimes.Usage{CPUPercent: 1, MemoryMB: 8}
	e := newTestEngine(Config{}, rt)
	cl, c := b.connect(t, e)
	e.want(wire.NodeDesired{Generation: 1, Instances: specs("a", "b")})
	reportAfter := func(obs *observation) map[string]wire.InstanceStatus {
		t.Helper()
		e.reportWith(context.Background(), cl, c, obs)
		select {
		case r := <-b.reports:
			return byKey(r.Instances)
		case <-time.After(5 * time.Second):
			t.Fatal("no report within 5 s")
			return nil
		}
	}

	// Nothing changed: one List for the reconcile and its report.
	rt.listed()
	got := reportAfter(e.reconcile(context.Background()))
	if n := rt.listed(); n != 1 {
		t.Errorf("a reconcile and its report listed %d times, want 1", n)
	}
	for _, k := range []string{"a", "b"} {
		if s := got[k]; s.Status != wire.StatusRunning || s.MemoryMB != 8 {
			t.Errorf("%s: %s, %d MB; want RUNNING with its usage", k, s.Status, s.MemoryMB)
		}
	}

	// An instance exits between the reconcile and the report (its runtime
	// tells): the report lists again and says so.
	obs := e.reconcile(context.Background())
	rt.set(exited("b", wire.StatusFailed, time.Minute, 0))
	e.exited(exited("b", wire.StatusFailed, time.Minute, 0))
	got = reportAfter(obs)
	if n := rt.listed(); n != 2 {
		t.Errorf("a reconcile and its report around an exit listed %d times, want 2", n)
	}
	if s := got["b"]; s.Status != wire.StatusFailed {
		t.Errorf("b exited before the report: reported %s %q", s.Status, s.Detail)
	}

	// A start ends between the reconcile and the report: listed again, and
	// reported RUNNING.
	e.want(wire.NodeDesired{Generation: 2, Instances: specs("a", "b", "new")})
	e.settleOnce(t) // restarts b, starts new
	obs = e.reconcile(context.Background())
	e.want(wire.NodeDesired{Generation: 3, Instances: specs("a", "b", "new", "newer")})
	e.settleOnce(t) // starts newer
	rt.listed()
	got = reportAfter(obs)
	if n := rt.listed(); n != 1 {
		t.Errorf("a report after starts ended listed %d times, want 1", n)
	}
	if s := got["newer"]; s.Status != wire.StatusRunning {
		t.Errorf("newer started before the report: reported %s %q", s.Status, s.Detail)
	}

	// The report alone (no reconcile before it) lists.
	rt.listed()
	reportAfter(nil)
	if n := rt.listed(); n != 1 {
		t.Errorf("a report alone listed %d times, want 1", n)
	}
}
