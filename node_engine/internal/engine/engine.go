// Package engine is the node engine: it registers the node with its
// cluster, receives the node's full desired set as a retained MQTT message,
// reconciles it against what the runtimes actually run, and reports the
// node and every instance back.
//
// The engine owns no workload: runtimes keep running when it dies, and a
// restarted engine adopts what it finds (runtimes.List) before acting.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/memtrim"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/node_engine/internal/hostinfo"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Config of the engine.
type Config struct {
	ClusterURL string
	JoinToken  string
	Name       string
	DataDir    string
	// Address is the node's address as others reach it (host_ip of its
	// instances).
	Address string
	// Capacity overrides the measured capacity where a field is > 0.
	Capacity wire.Resources
	// LogBytes is how much of each instance's output goes into reports
	// (8 KiB if zero: about as many lines as 4 KiB of plain text, now that
	// each line carries its time and stream).
	LogBytes int
	// NetSocket is the net manager's socket; empty: no overlay, instances
	// share the node's network.
	NetSocket string
	// AcceptShrinkingSets applies a desired set even when it drops most
	// of what the node runs without listing it as removed.
	AcceptShrinkingSets bool
	// InsecurePlaintext allows an http:// cluster URL and a plain MQTT
	// broker (development only); otherwise the node API must be https://
	// with the pin in the join token, and the broker mqtts://.
	InsecurePlaintext bool
	// Labels are the node's labels (NodeInfo.Labels).
	Labels map[string]string
	// JobsPort is the port of the job endpoint on the instances' gateway
	// (jobserve.go); 0: none.
	JobsPort int
	// Location is the node's location ("lat,long" or a site name), told
	// with its status.
	Location string
	// Probe measures round trips to peers and keeps the node's network
	// coordinate; nil: the node does not measure.
	Probe Probe
}

// Probe is what the engine needs of the round-trip prober
// (node_engine/internal/probe).
type Probe interface {
	// SetPeers gives the overlay peers and the node's cluster.
	SetPeers(peers []wire.NodeNetwork, clusterID string)
	// Coordinate is the node's coordinate, nil until measured.
	Coordinate() *wire.Coordinate
	// Port is the UDP port the node answers probes on.
	Port() int
	// SetWanted names peers to probe besides the random choice; Estimates
	// are the estimated round trips to those of ids it has measured.
	SetWanted(ids []string)
	Estimates(ids []string) map[string]time.Duration
}

// Engine is a running node engine.
type Engine struct {
	cfg Config
	reg *runtimes.Registry
	log *slog.Logger
	cpu hostinfo.CPUMeter

	kick chan struct{}

	// The desired set has a lock of its own: the MQTT client delivers it
	// on its receiving goroutine, which must never wait for the
	// reconciler (a blocked receiver misses the broker's keep-alive
	// answers and drops the connection).
	dmu         sync.Mutex
	desired     wire.NodeDesired
	haveDesired bool

	// The last report, for the heartbeat: when it went out, and the node
	// information and generation it carried.
	rmu      sync.Mutex
	lastSent time.Time
	lastInfo *wire.NodeInfo
	lastGen  int64

	mu       sync.Mutex
	busy     map[string]string   // key → what is being done ("starting", "removing")
	failed   map[string]*failure // start failures and restart backoff, by key
	restarts map[string]int      // restarts per key since the engine started
	lastLogs map[string]string   // last reported log tail per key
	events   []wire.Event        // what happened to instances, waiting for the next report
	usage    map[string]sample   // last usage sample per key
	virts    []string            // available virtualizations
	virtsAt  time.Time
	// refusedSaid is the last refusal of a registration while cut off that
	// was logged (serve's goroutine only).
	refusedSaid string

	// The overlay, when a net manager runs: its client, the last network
	// configuration handed to it, and each instance's address.
	net     *netapi.Client
	netHash uint64
	// netErr is why the net manager refused or did not answer the last
	// configuration ("" once it took it): the node is then not ready.
	netErr string
	ips    map[string]string
	nodeID string

	// The link to the cluster's broker: cutSince is when it went down
	// (zero while up), upSince when it came back. Instances whose service
	// says stop_after are stopped when the node is cut off that long, and
	// held stopped (suspended, with the desired generation of the moment)
	// until the cluster speaks again: a newer desired set, or the link up
	// for settle without one (the cluster kept the node's set as it was).
	cutSince  time.Time
	upSince   time.Time
	settle    time.Duration
	suspended map[string]int64

	// held: instances the node runs that its desired set dropped without
	// listing them as removed, when that would stop most of what it runs
	// (a cluster that lost its store, or a confused one): they keep
	// running and are reported, until the cluster lists them as removed
	// or wants them again.
	held map[string]bool

	// Job files (jobs.go): what each instance's file holds, by key;
	// contact is when (Unix ns) the broker last acknowledged a report or
	// delivered a desired set (the job lease counts from it), started when
	// the engine started.
	jobFiles map[string]JobFile
	contact  atomic.Int64
	started  time.Time
	// jobsGen is the generation of the desired set the job files were last
	// brought up to (jobsGenSet: one was).
	jobsGen    int64
	jobsGenSet bool
	// The job endpoint (jobserve.go): the node's subnet as the desired
	// set says, the channel closed at the next change of a job file, the
	// server and where it listens, and why it could not ("" if it could).
	subnet      string
	jobsChanged chan struct{}
	jobsSrv     *http.Server
	jobsAt      netip.AddrPort
	jobsErr     string

	// The node's client certificate (identity.go).
	identOnce sync.Once
	ident     *pki.ClientCert

	// changes counts what changes the runtimes' instances behind the
	// reconciler's back: starts and removals ending, exits.
	changes uint64
}

// observation is what the runtimes held at one moment (reconcile's), and
// changes then.
type observation struct {
	changes uint64
	have    map[string]held
}

// sample is an instance's resource usage as last measured.
type sample struct {
	u  runtimes.Usage
	at time.Time
}

// usageEvery is how often an instance's usage is measured for reports
// (the root keeps it at most every 10 s, too); a report spends at most
// half an interval on it and sends the last samples for the rest.
const usageEvery = 10 * time.Second

type failure struct {
	count  int
	next   time.Time
	detail string
	// waiting: not a failure but a precondition (the node's network is not
	// ready yet); reported as CREATING.
	waiting bool
}

// New returns an engine over a runtime registry.
func New(cfg Config, reg *runtimes.Registry, log *slog.Logger) *Engine {
	if cfg.LogBytes == 0 {
		cfg.LogBytes = 8 << 10
	}
	e := &Engine{
		cfg: cfg, reg: reg, log: log, kick: make(chan struct{}, 1),
		busy: map[string]string{}, failed: map[string]*failure{}, restarts: map[string]int{}, lastLogs: map[string]string{},
		usage: map[string]sample{},
		ips:   map[string]string{}, suspended: map[string]int64{}, held: map[string]bool{},
		jobFiles: map[string]JobFile{}, started: time.Now(), jobsChanged: make(chan struct{}),
	}
	if cfg.NetSocket != "" {
		e.net = netapi.NewClient(cfg.NetSocket)
	}
	return e
}

func (e *Engine) arch() string { return runtime.GOARCH }

func (e *Engine) capacity() wire.Resources {
	c := wire.Resources{MilliCPU: hostinfo.MilliCPU()}
	if total, _, err := hostinfo.Memory(); err == nil {
		c.MemoryMB = total
	}
	if e.cfg.Capacity.MilliCPU > 0 {
		c.MilliCPU = e.cfg.Capacity.MilliCPU
	}
	if e.cfg.Capacity.MemoryMB > 0 {
		c.MemoryMB = e.cfg.Capacity.MemoryMB
	}
	c.VGPUs = e.cfg.Capacity.VGPUs
	return c
}

func (e *Engine) doKick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run registers (or reuses the saved identity), connects to the cluster's
// broker and reconciles until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if err := os.MkdirAll(e.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	e.emptyJobFiles()
	if _, err := e.trust(); err != nil {
		return err
	}
	creds, err := e.loadCredentials()
	if err != nil {
		return err
	}
	if creds != nil {
		// Register again when the cluster answers: what it tells nodes (its
		// broker's address, the report interval) may have changed since.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fresh, err := e.register(rctx)
		cancel()
		if err == nil {
			creds = fresh
		} else if ctx.Err() == nil && creds.MQTTURL != "" {
			e.log.Warn("cannot register again now; using the saved credentials", "err", err)
		}
		if creds.MQTTURL == "" {
			creds = nil // saved under another CA pin: register anew
		}
	}
	var client *mqttc.Client
	for attempt := 0; ; attempt++ {
		if creds == nil {
			if creds, err = e.registerRetrying(ctx); err != nil {
				return err
			}
		}
		client, err = e.connect(ctx, ctx, creds)
		if errors.Is(err, mqttc.ErrNotAuthorized) && attempt == 0 {
			// The cluster no longer knows these credentials: register again.
			e.log.Warn("the broker refused the saved credentials; registering again")
			creds = nil
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	e.mu.Lock()
	e.nodeID = creds.NodeID
	e.mu.Unlock()
	if e.net != nil {
		if err := e.adoptNetwork(ctx); err != nil {
			client.Close()
			return err
		}
	}

	go e.watchLeases(ctx)
	go e.renewCerts(ctx)
	for _, rt := range e.reg.All() {
		go func(rt runtimes.Runtime) {
			for {
				select {
				case <-ctx.Done():
					return
				case st := <-rt.Events():
					e.exited(st)
				}
			}
		}(rt)
	}

	for {
		next, fresh := e.serve(ctx, client, creds)
		client.Close()
		if next == nil {
			return nil // ctx ended
		}
		// The cluster answered a registration while its broker refused or
		// could not see us (a cluster that lost its store, or a new
		// broker), and the broker took the new credentials.
		client, creds = next, fresh
		e.mu.Lock()
		e.nodeID = creds.NodeID
		e.mu.Unlock()
	}
}

// exited notes an instance's exit, as its runtime told, and has the
// reconciler look.
func (e *Engine) exited(st runtimes.State) {
	e.log.Info("instance exited", "instance", st.Key, "status", st.Status, "detail", st.Detail)
	e.mu.Lock()
	e.changes++
	e.mu.Unlock()
	e.doKick()
}

// reregisterAfter is how long a node cut off from its broker waits before
// it tries to register again, and then between tries.
const reregisterAfter = 5 * time.Second

// serve reconciles and reports over one broker connection until ctx ends
// (nil) or the node, cut off for longer than reregisterAfter, registered
// again and connected with the new credentials (the new connection and
// credentials).
func (e *Engine) serve(ctx context.Context, client *mqttc.Client, creds *credentials) (*mqttc.Client, *credentials) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the heartbeat ends with this connection
	interval := creds.interval()
	e.mu.Lock()
	e.settle = 2 * interval
	e.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	// A first sign of life at once, before the first reconcile and report,
	// which a busy runtime may make slow.
	_ = e.publish(ctx, client, creds, wire.NodeReport{Version: wire.Version, NodeID: creds.NodeID, Time: time.Now().UTC(), Node: e.nodeInfo(ctx)})
	go e.heartbeat(ctx, client, creds, interval)
	e.log.Info("thicket-node running", "node", e.cfg.Name, "node_id", creds.NodeID, "mqtt", creds.MQTTURL)
	var tried time.Time
	for {
		now := time.Now()
		e.link(client.Connected(), now)
		if cut := e.cutFor(now); cut > reregisterAfter && now.Sub(tried) > reregisterAfter {
			tried = now
			if next, fresh := e.reregister(ctx); next != nil {
				e.log.Warn("cut off from the broker; registered again and connected", "cut_off", cut.Round(time.Second), "node_id", fresh.NodeID)
				return next, fresh
			}
		}
		e.reportWith(ctx, client, creds, e.reconcile(ctx))
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		case <-e.kick:
		}
	}
}

// reregister registers again and connects with the new credentials, each
// step bounded in time; nil if either fails (the node goes on with its
// connection, which reconnects by itself, and tries again later).
func (e *Engine) reregister(ctx context.Context) (*mqttc.Client, *credentials) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	fresh, err := e.register(rctx)
	cancel()
	if errors.Is(err, pki.ErrPinMismatch) {
		// Not a passing outage: a server of another CA answers at the
		// cluster's address (a man in the middle, or a cluster that lost
		// its CA). The node keeps running what it runs, and tries again.
		e.log.Error("register again while cut off: refused the server", "err", err)
		return nil, nil
	}
	if errors.Is(err, ErrNameTaken) || errors.Is(err, ErrJoinRefused) {
		// Not a passing outage either: the cluster refuses this node (an
		// admin deleted it, or its token changed). Said once per reason.
		if msg := err.Error(); msg != e.refusedSaid {
			e.refusedSaid = msg
			e.log.Error("register again while cut off: the cluster refused this node", "err", err)
		}
		return nil, nil
	}
	if err != nil {
		e.log.Debug("register again while cut off", "err", err)
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	next, err := e.connect(cctx, ctx, fresh)
	cancel()
	if err != nil {
		e.log.Debug("connect with the new credentials", "err", err)
		return nil, nil
	}
	return next, fresh
}

// registerRetrying registers, retrying while the cluster is unreachable; a
// refused token or a name taken by another node is final.
func (e *Engine) registerRetrying(ctx context.Context) (*credentials, error) {
	for wait := time.Second; ; wait = min(wait*2, 15*time.Second) {
		c, err := e.register(ctx)
		if err == nil || errors.Is(err, ErrJoinRefused) || errors.Is(err, ErrNameTaken) || errors.Is(err, ErrUntrusted) || errors.Is(err, pki.ErrPinMismatch) {
			return c, err
		}
		e.log.Warn("cannot register yet; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// connect connects to the broker, waiting at most as long as ctx; the
// subscription to the desired set, renewed on every reconnection, lives as
// long as life.
func (e *Engine) connect(ctx, life context.Context, c *credentials) (*mqttc.Client, error) {
	tc, err := e.mqttTLS(c)
	if err != nil {
		return nil, err
	}
	return mqttc.Connect(ctx, mqttc.Options{
		URL: c.MQTTURL, TLS: tc, ClientID: "thicket-node-" + c.NodeID, Username: c.MQTTUsername, Password: c.MQTTPassword, Logger: e.log,
		OnConnect: func(cl *mqttc.Client) {
			err := cl.Subscribe(life, c.DesiredTopic, 1, func(_ string, payload []byte) {
				var d wire.NodeDesired
				if err := json.Unmarshal(payload, &d); err != nil || d.Version != wire.Version {
					e.log.Warn("dropping malformed desired set", "err", err)
					return
				}
				e.touch(time.Now())
				e.dmu.Lock()
				if !e.haveDesired || d.Generation >= e.desired.Generation || d.Generation < e.desired.Generation-(1<<40) {
					e.desired, e.haveDesired = d, true
				}
				e.dmu.Unlock()
				e.doKick()
			})
			if err != nil {
				e.log.Error("subscribe to the desired set", "err", err)
			}
		},
	})
}

// hold decides which of the instances the node runs and its desired set
// dropped are held running: all of them when they are most of what it
// runs (or all) and the set does not list them as removed. Caller holds
// mu.
func (e *Engine) hold(d wire.NodeDesired, have map[string]held) {
	listed := make(map[string]bool, len(d.Instances)+len(d.Removed))
	for _, s := range d.Instances {
		listed[s.Key] = true
	}
	for _, k := range d.Removed {
		listed[k] = true
	}
	var implicit []string
	for key := range have {
		if !listed[key] {
			implicit = append(implicit, key)
		}
	}
	for key := range e.held {
		if _, runs := have[key]; listed[key] || !runs {
			delete(e.held, key) // wanted again, removed explicitly, or gone
		}
	}
	if len(implicit) == 0 || e.cfg.AcceptShrinkingSets || (len(d.Instances) > 0 && 2*len(implicit) <= len(have)) {
		return
	}
	fresh := 0
	for _, key := range implicit {
		if !e.held[key] {
			e.held[key] = true
			fresh++
		}
	}
	if fresh > 0 {
		e.log.Warn("the desired set drops most of what this node runs without removing it; holding those instances (they keep running)",
			"held", len(e.held), "running", len(have), "desired", len(d.Instances),
			"hint", "if the cluster really dropped them, restart thicket-node with --accept-shrinking-sets")
	}
}

// link records whether the broker is reachable now.
func (e *Engine) link(up bool, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case up && !e.cutSince.IsZero():
		e.log.Info("the cluster's broker is reachable again", "cut_off", now.Sub(e.cutSince).Round(time.Second))
		e.cutSince, e.upSince = time.Time{}, now
	case !up && e.cutSince.IsZero():
		e.log.Warn("cut off from the cluster's broker; instances keep running")
		e.cutSince = now
	}
}

// cutFor is how long the node has been cut off from its broker (0 while
// connected).
func (e *Engine) cutFor(now time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cutSince.IsZero() {
		return 0
	}
	return now.Sub(e.cutSince)
}

// cutOff reports whether an instance of spec is to be held stopped now:
// the node has been cut off from its cluster for the spec's stop_after, or
// it was stopped so and the cluster has not spoken since. Caller holds mu.
func (e *Engine) cutOff(spec wire.InstanceSpec, gen int64, now time.Time) bool {
	if g, ok := e.suspended[spec.Key]; ok {
		if spec.OneShot {
			return true // it ran, and runs at most once: it ends FAILED
		}
		if e.cutSince.IsZero() && (gen > g || now.Sub(e.upSince) >= e.settle) {
			delete(e.suspended, spec.Key)
			e.log.Info("the cluster speaks again; an instance stopped while cut off may run", "instance", spec.Key)
			return false
		}
		return true
	}
	stop := time.Duration(spec.DisconnectPolicy().StopAfter) * time.Second
	if stop <= 0 || e.cutSince.IsZero() || now.Sub(e.cutSince) < stop {
		return false
	}
	e.suspended[spec.Key] = gen
	e.event(spec.Key, fmt.Sprintf("stopping: cut off from the cluster for longer than stop_after (%s)", stop))
	e.log.Warn("stopping an instance: cut off from the cluster for longer than its service's stop_after",
		"instance", spec.Key, "stop_after", stop)
	return true
}

// maxQueuedEvents bounds the events waiting for a report: while the
// cluster is away for long, the oldest go.
const maxQueuedEvents = 1024

// event records what happened to instance key now, for the next report.
// Caller holds mu.
func (e *Engine) event(key, msg string) { e.eventAt(key, time.Now(), msg) }

func (e *Engine) eventAt(key string, at time.Time, msg string) {
	e.events = wire.AppendEvents(e.events, maxQueuedEvents, wire.Event{Key: key, Time: at.UTC(), Source: "node", Message: msg}.Bounded())
}

// retries reports whether an exited one-shot instance of an indexed
// service (completions) is to run again: it FAILED, did not end for good
// by the cluster's word, and has retries left of its spec's Retries
// (counted since this engine started). Caller holds mu.
func (e *Engine) retries(spec wire.InstanceSpec, st runtimes.State) bool {
	return spec.OneShot && spec.Completions > 0 && spec.Ended == "" && st.Status == wire.StatusFailed &&
		e.restarts[spec.Key] < spec.Retries
}

// backoff is the wait before restart or retry number n (1, 2, 4 ... 30 s).
// The shift is bounded: an instance that failed 35 times would otherwise
// overflow it and be retried at once, in a tight loop.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return min(time.Second<<min(n-1, 5), 30*time.Second)
}

type held struct {
	st runtimes.State
	rt runtimes.Runtime
}

// observe lists what every runtime holds; complete is false when a runtime
// did not answer.
func (e *Engine) observe(ctx context.Context) (have map[string]held, complete bool) {
	have, complete = map[string]held{}, true
	for _, rt := range e.reg.All() {
		sts, err := rt.List(ctx)
		if err != nil {
			e.log.Warn("list instances", "virtualization", rt.Virtualization(), "err", err)
			complete = false
			continue
		}
		for _, st := range sts {
			have[st.Key] = held{st, rt}
		}
	}
	return have, complete
}

// reconcile starts what should run and does not, restarts what exited and
// should not have, and removes what should not run. Starts and removals run
// in the background; nothing is touched before the first desired set
// arrives (a restarted engine adopts what runs). It returns what it saw
// the runtimes hold (nil if it did not look), for the report that follows.
func (e *Engine) reconcile(ctx context.Context) *observation {
	d, ok := e.desiredSet()
	if !ok {
		return nil
	}
	desired := d.Instances
	e.mu.Lock()
	netCfg := netapi.Config{NodeID: e.nodeID, ClusterID: d.ClusterID, Subnet: d.Subnet, Network: d.Network}
	e.mu.Unlock()
	if e.cfg.Probe != nil {
		e.cfg.Probe.SetPeers(d.Network.Peers, d.ClusterID)
		netCfg.RTTMS = closestRTTs(e.cfg.Probe, d.Network, netCfg.NodeID)
	}
	e.configureNetwork(ctx, netCfg)
	if hasGrants(d) {
		e.serveJobs(ctx, d.Subnet)
	}
	e.mu.Lock()
	changes := e.changes
	e.mu.Unlock()
	have, complete := e.observe(ctx)
	obs := &observation{changes: changes, have: have}
	now := time.Now()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.subnet = d.Subnet
	e.applyJobs(d, true, now)
	want := make(map[string]bool, len(desired))
	for _, spec := range desired {
		if e.cutOff(spec, d.Generation, now) {
			continue // not wanted here now: stopped below
		}
		want[spec.Key] = true
		if e.busy[spec.Key] != "" {
			continue
		}
		h, exists := have[spec.Key]
		rt, ok := e.reg.Get(spec.Virtualization)
		if !ok {
			e.failed[spec.Key] = &failure{count: 1, next: now.Add(time.Hour), detail: "virtualization " + spec.Virtualization + " is not supported on this node"}
			continue
		}
		switch {
		case !exists:
			if spec.Ended != "" {
				continue // a one-shot instance that ended for good: never again
			}
			if f := e.failed[spec.Key]; f != nil && now.Before(f.next) {
				continue
			}
			e.start(ctx, rt, spec, false)
		case h.st.Status == wire.StatusCompleted || h.st.Status == wire.StatusFailed:
			if spec.OneShot && !e.retries(spec, h.st) {
				continue // done, successfully or not: one-shot services are not restarted
			}
			f := e.failed[spec.Key]
			if f == nil {
				f = &failure{}
				e.failed[spec.Key] = f
			}
			// Back off on instances that keep crashing; one that ran a
			// while starts over at 1 s.
			if !h.st.StartedAt.IsZero() && h.st.ExitedAt.Sub(h.st.StartedAt) > time.Minute {
				f.count = 0
			}
			if f.next.IsZero() || f.next.Before(h.st.ExitedAt) {
				f.count++
				f.next = h.st.ExitedAt.Add(backoff(f.count))
				f.detail = h.st.Detail
				e.eventAt(spec.Key, h.st.ExitedAt, fmt.Sprintf("%s; restarting in %s", h.st.Detail, backoff(f.count)))
			}
			if now.Before(f.next) {
				continue
			}
			e.restarts[spec.Key]++
			e.start(ctx, h.rt, spec, true)
		}
	}
	e.hold(d, have)
	for key, h := range have {
		if !want[key] && !e.held[key] && e.busy[key] == "" {
			e.remove(ctx, h.rt, key)
		}
	}
	// A network held for an instance that no runtime holds and nobody wants
	// (a start that failed after its network was attached, a removal cut
	// short by a restart) is released too.
	for key := range e.ips {
		if _, held := have[key]; complete && !held && !want[key] && e.busy[key] == "" {
			e.remove(ctx, nil, key)
		}
	}
	for key := range e.suspended {
		if !slices.ContainsFunc(desired, func(s wire.InstanceSpec) bool { return s.Key == key }) {
			delete(e.suspended, key) // left the desired set
		}
	}
	for key := range e.failed {
		if !want[key] {
			delete(e.failed, key)
			delete(e.restarts, key)
		}
	}
	for key := range e.lastLogs {
		if !want[key] {
			delete(e.lastLogs, key)
		}
	}
	for key := range e.usage {
		if !want[key] {
			delete(e.usage, key)
		}
	}
	return obs
}

// start runs rt.Start in the background. Caller holds mu.
func (e *Engine) start(ctx context.Context, rt runtimes.Runtime, spec wire.InstanceSpec, restart bool) {
	e.busy[spec.Key] = "starting"
	if restart {
		e.log.Info("restarting instance", "instance", spec.Key, "restarts", e.restarts[spec.Key])
		e.event(spec.Key, fmt.Sprintf("restarting (restart %d)", e.restarts[spec.Key]))
	} else {
		e.log.Info("starting instance", "instance", spec.Key, "code", spec.Code)
		e.event(spec.Key, "starting: "+spec.Code+" (pulled first if the node does not have it)")
	}
	spec = withIndex(e.withJobs(spec))
	go func() {
		err := e.attach(ctx, &spec)
		if err == nil {
			err = rt.Start(ctx, spec)
		}
		e.mu.Lock()
		delete(e.busy, spec.Key)
		e.changes++
		if err != nil && ctx.Err() == nil {
			f := e.failed[spec.Key]
			if f == nil {
				f = &failure{}
				e.failed[spec.Key] = f
			}
			f.count++
			f.next = time.Now().Add(backoff(f.count))
			f.detail = err.Error()
			f.waiting = errors.Is(err, netapi.ErrNotReady)
			if f.waiting {
				f.next, f.detail = time.Now().Add(time.Second), "waiting for the node's network"
			} else {
				e.log.Warn("instance failed to start", "instance", spec.Key, "err", err, "retry_in", backoff(f.count))
				e.event(spec.Key, fmt.Sprintf("failed to start: %v; retrying in %s", err, backoff(f.count)))
			}
		} else if err == nil {
			e.event(spec.Key, "started")
			if !restart {
				delete(e.failed, spec.Key)
			}
		}
		e.mu.Unlock()
		e.doKick()
		memtrim.Worked()
	}()
}

// remove runs rt.Remove (unless rt is nil) and then releases the
// instance's network, in the background. Caller holds mu.
func (e *Engine) remove(ctx context.Context, rt runtimes.Runtime, key string) {
	e.busy[key] = "removing"
	if rt != nil {
		e.log.Info("removing instance", "instance", key)
		e.event(key, "stopping and removing: no longer wanted on this node")
	} else {
		e.log.Info("releasing the network of a gone instance", "instance", key)
	}
	go func() {
		var err error
		if rt != nil {
			err = rt.Remove(ctx, key)
		}
		if err != nil && ctx.Err() == nil {
			e.log.Warn("remove instance", "instance", key, "err", err)
		} else if e.net != nil {
			if err := e.net.Detach(ctx, key); err != nil && ctx.Err() == nil {
				e.log.Warn("detach instance network", "instance", key, "err", err)
			}
			e.mu.Lock()
			delete(e.ips, key)
			e.mu.Unlock()
		}
		e.mu.Lock()
		delete(e.busy, key)
		e.changes++
		if err == nil {
			e.dropJobs(key)
		}
		e.mu.Unlock()
		e.doKick()
		memtrim.Worked()
	}()
}

// desiredSet returns the last desired set received, if any.
func (e *Engine) desiredSet() (wire.NodeDesired, bool) {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return e.desired, e.haveDesired
}

// report publishes the node's state and every desired instance's status.
// It asks the runtimes without holding mu: under load (dozens of starts)
// each call can take a while, and the starts need mu to finish.
func (e *Engine) report(ctx context.Context, client *mqttc.Client, c *credentials) {
	e.reportWith(ctx, client, c, nil)
}

// reportWith is report after a reconcile that saw obs (nil: none). What
// the runtimes hold is then what obs says, unless a start, removal or exit
// ended since (changes): then they are asked again. Asking every runtime
// twice a second for the same answer cost an idle node a containerd call
// per second.
func (e *Engine) reportWith(ctx context.Context, client *mqttc.Client, c *credentials, obs *observation) {
	var have map[string]held
	if obs == nil {
		have, _ = e.observe(ctx)
	}
	info := e.nodeInfo(ctx)
	d, full := e.desiredSet()
	r := wire.NodeReport{Version: wire.Version, NodeID: c.NodeID, Time: time.Now().UTC(), Node: info, Generation: d.Generation, Full: full}
	e.mu.Lock()
	if obs != nil {
		// Checked under mu, which starts and removals hold as they end:
		// none can end between the check and the statuses below.
		have = obs.have
		if obs.changes != e.changes {
			e.mu.Unlock()
			have, _ = e.observe(ctx)
			e.mu.Lock()
		}
	}
	if full {
		// The report says the node applied generation d.Generation: its
		// job files must say so too before the cluster takes it as the
		// release of what that set took away.
		e.applyJobs(d, true, time.Now())
	}
	for _, spec := range d.Instances {
		st := wire.InstanceStatus{Key: spec.Key, HostIP: e.cfg.Address, Restarts: e.restarts[spec.Key], InstanceIP: e.ips[spec.Key]}
		e.jobStatus(&st)
		h, exists := have[spec.Key]
		_, suspended := e.suspended[spec.Key]
		switch {
		case e.busy[spec.Key] == "starting":
			st.Status, st.Detail = wire.StatusCreating, "starting"
		case suspended && spec.OneShot:
			st.Status, st.Detail = wire.StatusFailed, "stopped: cut off from the cluster for longer than stop_after; a one-shot instance runs at most once"
		case suspended:
			st.Status, st.Detail = wire.StatusCreating, "stopped: cut off from the cluster for longer than stop_after; starts again when the cluster answers"
		case exists:
			st.Status, st.Detail, st.ExitCode, st.StartedAt = h.st.Status, h.st.Detail, h.st.ExitCode, h.st.StartedAt
			if st.Status == wire.StatusFailed && !spec.OneShot {
				if f := e.failed[spec.Key]; f != nil && time.Now().Before(f.next) {
					st.Detail += fmt.Sprintf("; restarting in %s", time.Until(f.next).Round(time.Second))
					st.RestartAt = f.next.UTC()
				}
			}
			if e.retries(spec, h.st) {
				// Not FAILED yet: a FAILED one-shot instance ended for good.
				st.Status, st.Detail = wire.StatusCreating, h.st.Detail+fmt.Sprintf("; retry %d of %d", e.restarts[spec.Key]+1, spec.Retries)
				if f := e.failed[spec.Key]; f != nil && time.Now().Before(f.next) {
					st.Detail += fmt.Sprintf(" in %s", time.Until(f.next).Round(time.Second))
					st.RestartAt = f.next.UTC()
				}
			}
		case spec.Ended != "":
			// Why it failed, while this engine knows (a start refused before
			// any runtime held it); else that it ended.
			st.Status, st.Detail = spec.Ended, "ended earlier; a one-shot instance is not run again"
			if f := e.failed[spec.Key]; f != nil && f.detail != "" {
				st.Detail = f.detail
			}
		case e.failed[spec.Key] != nil && e.failed[spec.Key].waiting:
			st.Status, st.Detail = wire.StatusCreating, e.failed[spec.Key].detail
			if e.netErr != "" {
				st.Detail += ": " + e.netErr // why, as the net manager says
			}
		case e.failed[spec.Key] != nil:
			st.Status, st.Detail = wire.StatusFailed, e.failed[spec.Key].detail
		default:
			st.Status, st.Detail = wire.StatusCreating, "waiting to start"
		}
		r.Instances = append(r.Instances, st)
	}
	if n := min(len(e.events), wire.MaxEvents); n > 0 {
		r.Events = slices.Clone(e.events[:n])
		e.events = append(e.events[:0], e.events[n:]...)
	}
	// Held instances are reported too: a cluster that wants them adopts
	// them where they run.
	for key := range e.held {
		if h, ok := have[key]; ok {
			r.Instances = append(r.Instances, wire.InstanceStatus{Key: key, HostIP: e.cfg.Address, InstanceIP: e.ips[key],
				Status: h.st.Status, Detail: "held: the desired set dropped it without removing it", StartedAt: h.st.StartedAt})
		}
	}
	e.mu.Unlock()
	usageUntil := time.Now().Add(c.interval() / 2)
	for i := range r.Instances {
		st := &r.Instances[i]
		h, exists := have[st.Key]
		if !exists {
			continue
		}
		if st.Status == wire.StatusRunning {
			u := e.usageOf(ctx, h.rt, st.Key, usageUntil)
			st.CPUPercent, st.MemoryMB = u.CPUPercent, u.MemoryMB
		}
		if logs, err := h.rt.Logs(ctx, st.Key, e.cfg.LogBytes); err == nil {
			e.mu.Lock()
			if logs != e.lastLogs[st.Key] {
				st.Logs = logs
				e.lastLogs[st.Key] = logs
			}
			e.mu.Unlock()
		}
	}
	if e.publish(ctx, client, c, r) != nil {
		// The cluster missed these log tails and events: send them again
		// next time.
		e.mu.Lock()
		e.events = wire.AppendEvents(slices.Clone(r.Events), maxQueuedEvents, e.events...)
		for _, st := range r.Instances {
			if st.Logs != "" {
				delete(e.lastLogs, st.Key)
			}
		}
		e.mu.Unlock()
	}
}

// usageOf is the instance's usage: measured when its last sample is older
// than usageEvery and the report still has time (until deadline), the
// last sample otherwise.
func (e *Engine) usageOf(ctx context.Context, rt runtimes.Runtime, key string, deadline time.Time) runtimes.Usage {
	e.mu.Lock()
	s, ok := e.usage[key]
	e.mu.Unlock()
	if ok && time.Since(s.at) < usageEvery || time.Now().After(deadline) {
		return s.u
	}
	u, err := rt.Usage(ctx, key)
	if err != nil {
		return s.u
	}
	e.mu.Lock()
	e.usage[key] = sample{u, time.Now()}
	e.mu.Unlock()
	return u
}

// publish sends a report and notes it for the heartbeat.
func (e *Engine) publish(ctx context.Context, client *mqttc.Client, c *credentials, r wire.NodeReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// With job grants a report waits for the broker's acknowledgement: the
	// job lease counts from the last one.
	var qos byte
	if d, ok := e.desiredSet(); ok && hasGrants(d) {
		qos = 1
	}
	sent := time.Now()
	if err := client.Publish(pctx, c.ReportTopic, qos, false, b); err != nil {
		if ctx.Err() == nil {
			e.log.Debug("report not sent", "err", err)
		}
		return err
	}
	e.rmu.Lock()
	e.lastSent, e.lastInfo, e.lastGen = time.Now(), &r.Node, r.Generation
	e.rmu.Unlock()
	if qos == 1 {
		e.touch(sent)
	}
	return nil
}

// heartbeat keeps the node's liveness independent of how long a
// reconcile and a full report take: whenever no report went out for an
// interval (dozens of containers starting make runtime calls slow), it
// sends one with the last node information and no instance statuses,
// without asking any runtime. A busy node is not a lost node.
func (e *Engine) heartbeat(ctx context.Context, client *mqttc.Client, c *credentials, every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.rmu.Lock()
		since := time.Since(e.lastSent)
		due := e.lastInfo != nil && since >= every
		var info wire.NodeInfo
		if due {
			info = *e.lastInfo
		}
		gen := e.lastGen
		e.rmu.Unlock()
		if !due {
			continue
		}
		e.log.Debug("reports are slow; heartbeat", "since_last_report", since)
		_ = e.publish(ctx, client, c, wire.NodeReport{Version: wire.Version, NodeID: c.NodeID, Time: time.Now().UTC(), Node: info, Generation: gen})
	}
}

func (e *Engine) nodeInfo(ctx context.Context) wire.NodeInfo {
	e.mu.Lock()
	if time.Since(e.virtsAt) > 30*time.Second {
		e.mu.Unlock()
		v := e.reg.Available(ctx)
		e.mu.Lock()
		e.virts, e.virtsAt = v, time.Now()
	}
	virts := e.virts
	e.mu.Unlock()
	info := wire.NodeInfo{
		Name: e.cfg.Name, Arch: e.arch(), Virtualizations: virts, Capacity: e.capacity(),
		CPUPercent: e.cpu.Percent(), Address: e.cfg.Address, Active: true, Location: e.cfg.Location,
	}
	if e.cfg.Probe != nil {
		info.Coordinate = e.cfg.Probe.Coordinate()
	}
	if total, avail, err := hostinfo.Memory(); err == nil && total > 0 {
		info.MemoryPercent = float64(total-avail) * 100 / float64(total)
	}
	if e.net != nil {
		st, err := e.net.Status(ctx)
		if err == nil && st.Ready {
			info.Network = &st.Node
			if e.cfg.Probe != nil {
				info.Network.ProbePort = e.cfg.Probe.Port()
			}
		}
		e.mu.Lock()
		switch {
		case err != nil:
			info.NotReady = "network: the net manager does not answer: " + err.Error()
		case e.netErr != "":
			info.NotReady = "network: " + e.netErr
		}
		e.mu.Unlock()
	}
	for _, rt := range e.reg.All() {
		if c, ok := rt.(runtimes.Capable); ok {
			info.Capabilities = append(info.Capabilities, c.Capabilities()...)
		}
	}
	info.Labels = e.cfg.Labels
	return info
}
