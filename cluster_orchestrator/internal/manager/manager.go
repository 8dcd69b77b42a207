// Package manager is the cluster manager's core. It holds, in memory and
// written through to the state store, the nodes of the cluster and the
// instances the root wants it to run, and reconciles them:
//
//   - the root's desired set (SetDesired) adds and removes instances;
//   - unplaced instances are placed on nodes by the pure scheduler;
//   - each node gets its full desired set as a retained MQTT message;
//   - node reports (HandleReport) bring statuses and liveness;
//   - a node silent for longer than the grace period is declared lost: its
//     instances become UNKNOWN and, as their services' disconnect policies
//     say, are placed on other nodes; when it comes back exactly one copy
//     of each survives (see keeps), and its desired set no longer holds
//     the others, so it stops them.
package manager

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/scheduler"
)

var (
	mNodes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "thicket_cluster", Name: "nodes", Help: "Registered nodes by liveness.",
	}, []string{"state"})
	mInstances = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "thicket_cluster", Name: "instances", Help: "Instances by status.",
	}, []string{"status"})
	mReports = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "node_reports_total", Help: "Node reports received.",
	})
	mLost = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "nodes_lost_total", Help: "Times a node was declared lost.",
	})
	mIgnored = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "statuses_ignored_total",
		Help: "Instance statuses a node reported for instances the cluster did not assign to it (a copy it is stopping, or a node that lies): never applied.",
	})
	mRejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "reports_rejected_total",
		Help: "Parts of node reports the cluster refused, by reason: subnet (not the one it assigned), instance_ip (outside the node's subnet), instance_key (an instance assigned to another node), capacity and usage (beyond bounds). Never applied.",
	}, []string{"reason"})
	mHeld = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "thicket_cluster", Name: "instances_held",
		Help: "Instances a full desired set of the root dropped without removing them, held running (see --accept-shrinking-sets).",
	})
	mReplaced = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "instances_replaced_total",
		Help: "UNKNOWN instances of lost nodes placed elsewhere, as their services' disconnect policies say.",
	})
)

// Store keeps what the manager must not forget across a restart: its
// *state.Store in MongoDB, or state.Memory in tests.
type Store interface {
	Nodes(ctx context.Context) ([]state.Node, error)
	SaveNode(ctx context.Context, n state.Node) error
	// DeleteNode forgets a node an admin deleted.
	DeleteNode(ctx context.Context, id string) error
	Instances(ctx context.Context) ([]state.Instance, error)
	WriteInstances(ctx context.Context, save []state.Instance, remove []string) error
	JobStore
}

// Publisher sends a node its desired set (retained).
type Publisher interface {
	PublishDesired(ctx context.Context, nodeID string, d wire.NodeDesired) error
}

// Config of a manager.
type Config struct {
	ClusterName string
	// Location is the cluster's (--location), for its nodes that have
	// none of their own.
	Location string
	// Grace is how long a node may be silent before it is declared lost.
	Grace time.Duration
	// Tick is how often the manager reconciles without being asked.
	Tick time.Duration
	// SubnetBits is the prefix length of each node's instance subnet (24
	// if zero: 250+ instances per node).
	SubnetBits int
	// Fresh: the manager starts without any state of its own (a new or a
	// lost data dir). Instances the root already assigns it then run
	// somewhere: they wait the startup grace for the nodes to report them.
	Fresh bool
	// AcceptShrinkingSets applies a full desired set from the root even
	// when it drops most instances without listing them as removed.
	AcceptShrinkingSets bool
	// StartupGrace is how long a starting manager waits for the nodes it
	// knows to reconnect before their silence counts: its own downtime
	// must not move workloads (10 s if zero).
	StartupGrace time.Duration
	// NodeCerts: the cluster issues client certificates (it serves TLS). A
	// node that registered with a certificate request must send one again
	// whenever it registers: it cannot fall back to password-only MQTT.
	NodeCerts bool
	// DrainTimeout is how long a drained node's instance keeps running
	// there while its replacement on another node is not RUNNING yet; then
	// it is stopped anyway (2 minutes if zero).
	DrainTimeout time.Duration
}

// Manager is the cluster's reconciler.
type Manager struct {
	cfg   Config
	st    Store
	pub   Publisher
	log   *slog.Logger
	kickC chan struct{}

	mu        sync.Mutex
	nodes     map[string]*node // by id
	byName    map[string]string
	instances map[string]*state.Instance
	// dirtyInst: instances to save (or delete when absent); true when the
	// change is urgent (the desired set, a placement), false when only a
	// status changed. Status changes are written together at most every
	// lazyWrites: a node's report must not cost a database write per
	// instance, and on a restart the nodes report again anyway.
	dirtyInst map[string]bool
	lastLazy  time.Time
	// draining: status-only changes taken lazyChunk per pass are still
	// left from the last time they were due.
	draining bool
	// news: instances changed since the root link was last told.
	news      bool
	dirtyNode map[string]bool // desired set to publish
	gen       int64
	// held: instances a full desired set of the root dropped without
	// removing them, kept running (see SetDesired).
	held map[string]bool
	// removedFrom: per node, the instances explicitly taken from it, with
	// the generation that first listed them (0: not yet published).
	removedFrom map[string]map[string]int64
	// pendingOn: nodes that may hold copies whose fate waits for their
	// next full report (an instance's LostFrom); every node report would
	// otherwise scan every instance.
	pendingOn map[string]bool
	// events: what happened to instances (told by their nodes, or decided
	// here), waiting for the link to the root (TakeEvents).
	events []wire.Event
	// A manager that starts with an empty store (a lost data dir) and
	// gets a desired set that is not empty inherits instances that run
	// somewhere: they are not placed for the startup grace (until
	// holdUntil), while the nodes register again and report what they
	// run, which places them there. fresh: Config.Fresh, and no desired
	// set came yet (a new cluster's first set is empty: nothing waits).
	fresh     bool
	inherited map[string]bool
	holdUntil time.Time
	// lastPass is when Reconcile last ran (monotonic): a manager that did
	// not run for longer than the grace (and four ticks) gives every node a
	// fresh one.
	lastPass time.Time

	// The overlay: this cluster's id and address blocks at the root, the
	// subnet size of its nodes, and what the root says of the rest.
	clusterID  string
	blocks     []netip.Prefix
	subnetBits int
	// wantBlocks: how many more blocks the nodes without a subnet need;
	// full says that was logged.
	wantBlocks  int
	full        bool
	rootNet     wire.Network
	rootNetHash uint64
	// netDirty says the overlay view (peers, service table) may have
	// changed; netHash is the hash of the view last published. Every node
	// gets a new desired set only when the view really changed: a status
	// change that moves no backend (most of them) republishes nothing.
	netDirty bool
	netHash  uint64

	// onChange is told when instances changed status or placement (the root
	// link syncs at once).
	onChange func()

	// jobs: the job handovers of services with jobs (jobs.go).
	jobs jobState

	// deleted: the nodes an admin deleted, as the root last listed them
	// (nodedel.go); onDeleted drops a deleted node's broker connection.
	deleted   map[string]bool
	onDeleted func(id string)
	// deletedAt: when this manager deleted each of them (a copy there
	// may run its jobs for a lease after).
	deletedAt map[string]time.Time

	// cordoned, drained: the nodes an admin cordoned or drains, as the
	// root last listed them (cordon.go; drained ones are in cordoned too).
	// drainMoving: per drained node, the instance moved last, until it
	// runs elsewhere; drainBlocked: why an instance could not move yet.
	cordoned, drained map[string]bool
	drainMoving       map[string]string
	drainBlocked      map[string]string
	// moves: the instances on their way off a drained node (DrainFrom
	// set), with when the move started and what their new copy reported.
	moves map[string]*move
}

// lazyWrites is how long status-only changes may wait to be written.
const lazyWrites = time.Second

// lazyChunk bounds the status-only changes one pass writes. A pass
// publishes its placements only after its writes, and a burst of
// placements reports RUNNING at once: hundreds of statuses written in one
// pass held up the placements of the next for as long (half a second with
// 1,000 nodes). When more are due, the next pass comes at once and takes
// the next chunk, so new placements wait for one chunk at most. One bulk
// command's worth (mongodb.BulkStatements).
const lazyChunk = 32

// dirty marks an instance to save; urgent says at the next pass.
// Caller holds mu.
func (m *Manager) dirty(key string, urgent bool) {
	m.dirtyInst[key] = m.dirtyInst[key] || urgent
	m.news = true
}

// OnChange sets what to call when instances changed status or placement.
func (m *Manager) OnChange(f func()) {
	m.mu.Lock()
	m.onChange = f
	m.mu.Unlock()
}

type node struct {
	state.Node
	lastSeen time.Time
	active   bool
	// applied is the last desired generation the node reported.
	applied int64
	// graceUntil: silence before this instant does not count (startup).
	graceUntil time.Time
	// everUp: the node was active at some time since this manager started.
	everUp bool
	// wantSubnet: the subnet a node unknown to this manager had before.
	wantSubnet netip.Prefix
	// prevPasswordHash is the password the last registration replaced: a
	// node whose answer was lost (it timed out) still holds it, and may
	// register again with it.
	prevPasswordHash string
	// rejected: the reasons its reports were refused for that were
	// logged (once each).
	rejected map[string]bool
}

// holds reports whether the registration shows the credentials of n.
func (n *node) holds(req wire.NodeRegisterRequest) bool {
	if req.NodeID != n.ID || req.Credential == "" {
		return false
	}
	h := []byte(hashPassword([]byte(req.Credential)))
	return subtle.ConstantTimeCompare([]byte(n.PasswordHash), h) == 1 ||
		(n.prevPasswordHash != "" && subtle.ConstantTimeCompare([]byte(n.prevPasswordHash), h) == 1)
}

// New loads the state and returns a manager. Known nodes get the startup
// grace to reconnect to a restarted broker and report.
func New(ctx context.Context, cfg Config, st Store, pub Publisher, log *slog.Logger) (*Manager, error) {
	m := &Manager{
		cfg: cfg, st: st, pub: pub, log: log, kickC: make(chan struct{}, 1),
		nodes: map[string]*node{}, byName: map[string]string{},
		instances: map[string]*state.Instance{}, dirtyInst: map[string]bool{}, dirtyNode: map[string]bool{},
		held: map[string]bool{}, removedFrom: map[string]map[string]int64{}, pendingOn: map[string]bool{}, deletedAt: map[string]time.Time{},
		drainMoving: map[string]string{}, drainBlocked: map[string]string{}, moves: map[string]*move{},
		gen: time.Now().UnixNano(), netDirty: true,
	}
	nodes, err := st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	m.subnetBits = cfg.SubnetBits
	if m.subnetBits == 0 {
		m.subnetBits = 24
	}
	if cfg.StartupGrace == 0 {
		cfg.StartupGrace = 10 * time.Second
		m.cfg.StartupGrace = cfg.StartupGrace
	}
	now := time.Now()
	for _, n := range nodes {
		m.nodes[n.ID] = &node{Node: n, lastSeen: now, active: true, everUp: true, graceUntil: now.Add(cfg.StartupGrace)}
		m.byName[n.Name] = n.ID
		m.dirtyNode[n.ID] = true // republish: the retained copy may be stale
	}
	insts, err := st.Instances(ctx)
	if err != nil {
		return nil, err
	}
	ledgers, err := st.JobLedgers(ctx)
	if err != nil {
		return nil, err
	}
	m.jobs.init(ledgers)
	m.fresh, m.inherited = cfg.Fresh && len(nodes) == 0 && len(insts) == 0, map[string]bool{}
	for i := range insts {
		in := insts[i]
		m.instances[in.Key] = &in
		if in.LostFrom != "" {
			m.pendingOn[in.LostFrom] = true
		}
		if in.DrainFrom != "" {
			m.moves[in.Key] = &move{since: time.Now()} // its wait starts again
			m.drainMoving[in.DrainFrom] = in.Key
		}
	}
	return m, nil
}

// hashPassword hashes a node's random MQTT password, hex-encoded: the
// store keeps strings as UTF-8.
func hashPassword(pw []byte) string {
	h := sha256.Sum256(pw)
	return hex.EncodeToString(h[:])
}

// RegisterNode admits a node (or a node registering again under its name,
// which keeps its id and its place in the overlay, and gets a new
// password) and returns its id. A registered name is taken again only by
// a request showing that node's id and password (the current one, or the
// one the last registration replaced, whose answer may have been lost);
// any other is refused with a *NameTakenError and changes nothing. A new node counts as active from its first
// report, not before: until it reaches the broker nothing is placed on it.
func (m *Manager) RegisterNode(ctx context.Context, req wire.NodeRegisterRequest, password string) (string, error) {
	m.mu.Lock()
	if m.deletedNode(req.NodeID) {
		m.mu.Unlock()
		mDeletedRefused.Inc()
		return "", &DeletedNodeError{Name: req.Name, ID: req.NodeID}
	}
	id, ok := m.byName[req.Name]
	if !ok {
		id = newID()
	} else if old := m.nodes[id]; old != nil && !old.holds(req) {
		m.mu.Unlock()
		mTakeovers.Inc()
		return "", &NameTakenError{Name: req.Name}
	}
	n := m.nodes[id]
	if n != nil && n.CertBound && m.cfg.NodeCerts && req.CSRPEM == "" {
		m.mu.Unlock()
		return "", &CertRequiredError{Name: req.Name}
	}
	if n == nil {
		n = &node{Node: state.Node{ID: id, Name: req.Name, RegisteredAt: time.Now().UTC()}}
		// A node this cluster does not know (its store was lost) asks for
		// the subnet it had: given back if it is free and ours.
		if p, err := netip.ParsePrefix(req.Subnet); err == nil {
			n.wantSubnet = p.Masked()
		}
	}
	if n.PasswordHash != "" {
		n.prevPasswordHash = n.PasswordHash
	}
	n.PasswordHash = hashPassword([]byte(password))
	n.CertBound = n.CertBound || (m.cfg.NodeCerts && req.CSRPEM != "")
	n.Info = wire.NodeInfo{
		ID: id, Name: req.Name, Arch: req.Arch, Virtualizations: req.Virtualizations,
		Capacity: req.Capacity, Address: req.Address, Labels: req.Labels,
		Network: n.Info.Network, // peers keep routing to it meanwhile
	}
	if err := sla.CheckLabels(req.Labels); err != nil {
		m.log.Warn("a registering node's labels are invalid; ignored", "node", req.Name, "err", err)
		n.Info.Labels = nil
	}
	rec := n.Node
	m.mu.Unlock()
	// Persist before the node may use its credentials.
	if err := m.st.SaveNode(ctx, rec); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.nodes[id] = n
	m.byName[req.Name] = id
	n.lastSeen = time.Now()
	m.dirtyNode[id] = true
	m.mu.Unlock()
	m.log.Info("node registered", "node", req.Name, "id", id, "arch", req.Arch, "virtualizations", req.Virtualizations,
		"milli_cpu", req.Capacity.MilliCPU, "memory_mb", req.Capacity.MemoryMB)
	m.Kick()
	return id, nil
}

// CertRequiredError refuses a registration without a certificate request
// of a node that has a client certificate identity: no way back to
// password-only MQTT.
type CertRequiredError struct{ Name string }

// CertRequired is the name refused.
func (e *CertRequiredError) CertRequired() string { return e.Name }

func (e *CertRequiredError) Error() string {
	return fmt.Sprintf("node %q has a client certificate identity: register with a certificate request (csr_pem), as thicket-node does", e.Name)
}

// NodeCert says whether id is a registered node (not deleted) and whether
// it has a client certificate identity, which it must then present.
func (m *Manager) NodeCert(id string) (known, bound bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nodes[id]
	return n != nil, n != nil && n.CertBound
}

// NameTakenError refuses a registration under the name of a registered
// node that did not show that node's credential.
type NameTakenError struct{ Name string }

// NameTaken is the name refused.
func (e *NameTakenError) NameTaken() string { return e.Name }

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("node name %q is taken by a registered node; only that node can register under it again "+
		"(with the credentials in its data dir). Another host, or this one after losing its data dir: "+
		"start it with --name <unique-name>", e.Name)
}

var mDeletedRefused = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "thicket_cluster", Name: "deleted_node_registrations_refused_total",
	Help: "Node registrations refused because they showed the credential of a node an admin deleted.",
})

var mTakeovers = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "thicket_cluster", Name: "node_takeovers_refused_total",
	Help: "Node registrations refused because the name belongs to a registered node whose credential they did not show.",
})

// CheckNodePassword reports whether password is the MQTT password of node id.
func (m *Manager) CheckNodePassword(id string, password []byte) bool {
	m.mu.Lock()
	n := m.nodes[id]
	var h string
	if n != nil {
		h = n.PasswordHash
	}
	m.mu.Unlock()
	return n != nil && subtle.ConstantTimeCompare([]byte(h), []byte(hashPassword(password))) == 1
}

// SetDesired takes the root's full desired set for this cluster, with the
// removals the root lists explicitly. Instances the set lacks are
// removed, unless the set would shrink to nothing or lose most of them
// without listing them as removed (a root that lost its store, or a
// confused one) and the manager is not configured to accept that: then
// they are held, running as they are, until the root lists them as
// removed or wants them again.
func (m *Manager) SetDesired(specs []wire.InstanceSpec, removed []string) {
	m.mu.Lock()
	want := make(map[string]bool, len(specs))
	changed := false
	for _, sp := range specs {
		want[sp.Key] = true
		changed = m.upsert(sp) || changed
		delete(m.held, sp.Key)
	}
	if m.fresh && len(specs) > 0 {
		for _, sp := range specs {
			m.inherited[sp.Key] = true
		}
		m.holdUntil = time.Now().Add(m.cfg.StartupGrace)
		m.log.Warn("this manager starts without state but the root assigns it instances: waiting for the nodes to report what they run before placing them",
			"instances", len(specs), "for", m.cfg.StartupGrace)
	}
	m.fresh = false
	explicit := make(map[string]bool, len(removed))
	for _, k := range removed {
		explicit[k] = true
	}
	var implicit []string
	for k := range m.instances {
		switch {
		case want[k]:
		case explicit[k]:
			changed = m.remove(k) || changed
		default:
			implicit = append(implicit, k)
		}
	}
	total := len(m.instances)
	if len(implicit) > 0 && !m.cfg.AcceptShrinkingSets && (len(specs) == 0 || 2*len(implicit) > total) {
		fresh := 0
		for _, k := range implicit {
			if !m.held[k] {
				m.held[k] = true
				fresh++
			}
		}
		if fresh > 0 {
			m.log.Warn("the root's desired set drops most of this cluster's instances without removing them; holding them (they keep running)",
				"held", len(m.held), "instances", total, "wanted", len(specs),
				"hint", "if the root really lost them, restart thicket-cluster with --accept-shrinking-sets")
		}
	} else {
		for _, k := range implicit {
			changed = m.remove(k) || changed
		}
	}
	mHeld.Set(float64(len(m.held)))
	m.mu.Unlock()
	if changed {
		m.Kick()
	}
}

// UpdateDesired takes a change of the root's desired set: new or changed
// specs and the keys that left it.
func (m *Manager) UpdateDesired(specs []wire.InstanceSpec, removed []string) {
	m.mu.Lock()
	changed := false
	for _, k := range removed {
		changed = m.remove(k) || changed
	}
	for _, sp := range specs {
		changed = m.upsert(sp) || changed
	}
	m.mu.Unlock()
	if changed {
		m.Kick()
	}
}

// upsert adds or changes an instance of the desired set and reports
// whether anything changed. Caller holds mu.
func (m *Manager) upsert(sp wire.InstanceSpec) bool {
	if in, ok := m.instances[sp.Key]; ok {
		if wire.SameSpec(in.Spec, sp) {
			return false
		}
		in.Spec = sp
		m.dirty(sp.Key, true)
		if in.NodeID != "" {
			m.dirtyNode[in.NodeID] = true
		}
		return true
	}
	m.instances[sp.Key] = &state.Instance{Key: sp.Key, Spec: sp, Status: wire.InstanceStatus{
		Key: sp.Key, Status: wire.StatusScheduled, Detail: "waiting for a node",
	}}
	m.dirty(sp.Key, true)
	return true
}

// remove drops an instance that left the desired set and reports whether it
// was there. Caller holds mu.
func (m *Manager) remove(k string) bool {
	delete(m.held, k)
	delete(m.drainBlocked, k)
	in, ok := m.instances[k]
	if !ok {
		return false
	}
	delete(m.instances, k)
	m.dirty(k, true)
	m.takeFrom(in.NodeID, k)
	m.takeFrom(in.LostFrom, k)
	if in.Status.Status == wire.StatusRunning && in.Status.InstanceIP != "" {
		m.netDirty = true // a backend leaves the service table
	}
	return true
}

// HandleReport takes a node's report.
func (m *Manager) HandleReport(r wire.NodeReport) {
	mReports.Inc()
	m.mu.Lock()
	n := m.nodes[r.NodeID]
	if n == nil {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	wasActive := n.active
	n.lastSeen, n.active, n.applied = now, true, r.Generation
	// The node knows its hardware and usage; identity, reservations and
	// its place in the overlay are ours: what contradicts them is refused
	// (see validate), the rest applies.
	info := r.Node
	info.ID, info.Name = n.ID, n.Name
	m.validateInfo(n, &info)
	if hashOf(info.Network) != hashOf(n.Info.Network) {
		m.netDirty = true // a peer appeared or changed
	}
	n.Info = info
	for _, ev := range r.Events[:min(len(r.Events), wire.MaxEvents)] {
		// Only of instances it has to do with: a node tells nothing of
		// another's.
		if in, ok := m.instances[ev.Key]; ok && (in.NodeID == n.ID || in.LostFrom == n.ID || in.Status.NodeID == n.ID) {
			ev.Source = "node " + n.Name
			m.addEvent(ev.Bounded())
		}
	}
	changed := false
	for _, st := range r.Instances {
		in, ok := m.instances[st.Key]
		if !ok {
			mIgnored.Inc()
			continue // not ours any more: the node's desired set drops it
		}
		if in.DrainFrom == n.ID {
			continue // the copy it keeps running while the instance moves: its status stands
		}
		if in.NodeID == "" && in.Status.Status != wire.StatusCompleted {
			if !m.adoptable(n, in) {
				mIgnored.Inc()
				m.reject(n, "instance_key", "an instance the cluster has not placed on it", "instance", in.Key)
				continue
			}
			// A restarted manager, a placement lost before it was saved, or
			// a lost node's copy whose replacement found no room: the node
			// runs it, so it is placed there.
			in.NodeID, in.LostFrom = n.ID, ""
			m.dirtyNode[n.ID] = true
			m.dirty(in.Key, true)
		}
		if in.NodeID != n.ID {
			if in.LostFrom != n.ID {
				mIgnored.Inc()
				if _, taken := m.removedFrom[n.ID][in.Key]; !taken && in.NodeID != "" {
					m.reject(n, "instance_key", "an instance assigned to another node", "instance", in.Key)
				}
				continue // not this node's (a copy it is stopping)
			}
			in.LostFrom = ""
			m.dirty(in.Key, true)
			m.dirtyNode[n.ID] = true
			if !keeps(in, st) {
				m.event(in.Key, "node "+n.Name+" is back: the replacement stays, its copy is stopped")
				m.takeFrom(n.ID, in.Key) // the replacement stays; this copy goes away
				continue
			}
			m.log.Info("a node back from lost runs an instance replaced meanwhile; keeping its copy", "node", n.Name,
				"instance", in.Key, "replacement_node", in.Status.Node, "replacement_status", in.Status.Status)
			m.event(in.Key, "node "+n.Name+" is back and runs its copy: kept; the replacement is stopped")
			m.takeFrom(in.NodeID, in.Key)
			in.NodeID = n.ID
			m.dirtyNode[n.ID] = true
		}
		m.validateStatus(n, &st, in.Status.InstanceIP)
		if m.ack(in.Key, st.JobsVersion) {
			changed = true
		}
		st.Node, st.NodeID = n.Name, n.ID
		st.Implementation, st.Choice = in.Status.Implementation, in.Status.Choice // the cluster's, not the node's
		if st.Logs == "" {                                                        // sent only when it changes
			st.Logs = in.Status.Logs
		}
		if st.HostIP == "" {
			st.HostIP = n.Info.Address
		}
		if ms, err := in.Spec.PortMappings(); err == nil && len(ms) > 0 && st.HostPort == 0 {
			st.HostPort = ms[0].HostPort // the reference shows the first published port
		}
		if in.DrainFrom != "" {
			// The new copy of an instance moving off a drained node: the
			// old copy's status stands until this one runs.
			if !m.moveReported(in, st) {
				changed = true
				continue
			}
		}
		if statusChanged(in.Status, st) {
			changed = true
			// A one-shot instance's end is written at once: a restarted
			// manager must not run it again.
			ended := in.Spec.OneShot && (st.Status == wire.StatusCompleted || st.Status == wire.StatusFailed)
			m.dirty(st.Key, ended)
			if ended && st.Status != in.Status.Status {
				m.dirtyNode[n.ID] = true // its desired set says so (InstanceSpec.Ended)
			}
			if (in.Status.Status == wire.StatusRunning) != (st.Status == wire.StatusRunning) || in.Status.InstanceIP != st.InstanceIP {
				m.netDirty = true // the service table may change
			}
		}
		in.Status = st
	}
	if r.Full && m.pendingOn[n.ID] {
		// Copies taken from it while it was lost that it no longer has:
		// their replacements (or the wait for one) stand. After this, no
		// decision about this node is pending.
		delete(m.pendingOn, n.ID)
		reported := make(map[string]bool, len(r.Instances))
		for _, st := range r.Instances {
			reported[st.Key] = true
		}
		for _, in := range m.instances {
			if in.LostFrom == n.ID && !reported[in.Key] {
				in.LostFrom = ""
				m.dirty(in.Key, true)
				m.dirtyNode[n.ID] = true
			}
		}
	}
	// Removals it has applied need no listing any more.
	for k, gen := range m.removedFrom[n.ID] {
		if gen != 0 && r.Generation >= gen {
			delete(m.removedFrom[n.ID], k)
		}
	}
	if !wasActive {
		if !n.everUp {
			m.log.Info("node is up", "node", n.Name)
		} else {
			m.log.Info("node is back", "node", n.Name)
		}
		n.everUp = true
		m.dirtyNode[n.ID] = true
		m.netDirty = true // its peer entry is back
		changed = true
	}
	m.mu.Unlock()
	if changed {
		m.Kick()
	}
}

// takeFrom records that instance key is taken from node id explicitly: its
// desired sets list it as removed until it reports a generation that
// carried that. Caller holds mu.
func (m *Manager) takeFrom(id, key string) {
	if id == "" {
		return
	}
	if m.removedFrom[id] == nil {
		m.removedFrom[id] = map[string]int64{}
	}
	m.removedFrom[id][key] = 0 // not published yet
	m.dirtyNode[id] = true
}

// keeps reports whether a node back from lost that reports st for an
// instance replaced meanwhile keeps its copy: it runs, it is the original
// (it started before the node was declared lost: a host that lost its
// workloads and started them again holds no original), and the service
// keeps the original or the replacement does not run (yet) nor has
// finished its work. Of a service with jobs the replacement always stays.
func keeps(in *state.Instance, st wire.InstanceStatus) bool {
	if st.Status != wire.StatusRunning {
		return false
	}
	if len(in.Spec.Jobs) > 0 {
		// A job pool's copy back from lost was sent no jobs; the
		// replacement's hold on them stands.
		return false
	}
	if !st.StartedAt.IsZero() && !in.UnknownSince.IsZero() && st.StartedAt.After(in.UnknownSince) &&
		(in.Status.Status == wire.StatusRunning || in.Status.Status == wire.StatusCompleted) {
		return false // started again after the loss, and the replacement runs
	}
	if in.Spec.DisconnectPolicy().Reconcile != wire.KeepReplacement {
		return true
	}
	switch in.Status.Status {
	case wire.StatusRunning, wire.StatusCompleted:
		return false
	case wire.StatusFailed:
		return !in.Spec.OneShot
	}
	return true
}

// finished reports whether an instance ended for good (a one-shot
// instance's end): nothing of it runs, nothing is to be replaced.
func finished(in *state.Instance) bool {
	return in.Status.Status == wire.StatusCompleted || in.Spec.OneShot && in.Status.Status == wire.StatusFailed
}

func statusChanged(a, b wire.InstanceStatus) bool {
	return a.Status != b.Status || a.Detail != b.Detail || a.Restarts != b.Restarts || a.NodeID != b.NodeID ||
		a.InstanceIP != b.InstanceIP || a.Logs != b.Logs || a.JobsVersion != b.JobsVersion || !a.RestartAt.Equal(b.RestartAt)
}

// maxQueuedEvents bounds the events waiting for the link to the root.
const maxQueuedEvents = 4096

// event records a decision of the cluster about instance key. Caller holds
// mu.
func (m *Manager) event(key, msg string) {
	m.addEvent(wire.Event{Key: key, Time: time.Now().UTC(), Source: "cluster", Message: msg}.Bounded())
}

func (m *Manager) addEvent(ev wire.Event) {
	m.events = wire.AppendEvents(m.events, maxQueuedEvents, ev)
}

// TakeEvents hands over the events recorded since the last call.
func (m *Manager) TakeEvents() []wire.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.events
	m.events = nil
	return evs
}

// placedWhy says why a node was chosen: what it had free for the spec.
func placedWhy(nodes []scheduler.Node, id string, sp wire.InstanceSpec) string {
	for _, n := range nodes {
		if n.ID == id {
			free := n.Capacity.Sub(n.Reserved)
			return fmt.Sprintf(" (asks %d MB and %d millicores; the node had %d MB and %d millicores free before this round)",
				sp.Resources.MemoryMB, sp.Resources.MilliCPU, free.MemoryMB, free.MilliCPU)
		}
	}
	return ""
}

// Kick asks for a reconcile now.
func (m *Manager) Kick() {
	select {
	case m.kickC <- struct{}{}:
	default:
	}
}

// Run reconciles every tick and when kicked, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	for {
		if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			m.flush()
			return
		case <-t.C:
		case <-m.kickC:
		}
	}
}

// Reconcile declares silent nodes lost, places unplaced instances, saves
// what changed and publishes changed desired sets.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	now := time.Now()
	if !m.lastPass.IsZero() && now.Sub(m.lastPass) > max(m.cfg.Grace, 4*m.cfg.Tick) {
		// This process did not run (paused, starved of CPU): the nodes'
		// reports may be waiting unread; their silence is ours.
		m.log.Warn("the manager did not run for a while; every node gets a fresh grace", "paused", now.Sub(m.lastPass).Round(time.Millisecond))
		for _, n := range m.nodes {
			n.lastSeen = now
		}
	}
	m.lastPass = now
	for _, n := range m.nodes {
		if n.active && now.Sub(n.lastSeen) > m.cfg.Grace && now.After(n.graceUntil) {
			n.active = false
			mLost.Inc()
			unknown := 0
			for _, in := range m.instances {
				if in.DrainFrom != "" && (in.DrainFrom == n.ID || in.NodeID == n.ID) {
					m.moveLost(in, n)
				}
				if in.NodeID != n.ID || finished(in) {
					continue
				}
				if in.Status.Status != wire.StatusUnknown {
					in.UnknownSince = now
				}
				in.Status = wire.InstanceStatus{Key: in.Key, Status: wire.StatusUnknown, Node: n.Name, NodeID: n.ID,
					Detail:         fmt.Sprintf("node %s silent for more than %s", n.Name, m.cfg.Grace),
					Implementation: in.Status.Implementation, Choice: in.Status.Choice}
				m.event(in.Key, fmt.Sprintf("node %s lost (silent for more than %s): UNKNOWN, it may still run there", n.Name, m.cfg.Grace))
				m.dirty(in.Key, true)
				unknown++
			}
			m.netDirty = true // a peer and backends went away
			m.log.Warn("node lost; its instances are UNKNOWN", "node", n.Name, "instances", unknown)
		}
	}
	m.replaceUnknown(now)
	m.drain()
	m.place()
	m.stepJobs(now)
	ledgers := m.takeDirtyLedgers()
	subnetted := m.assignSubnets()
	var net wire.Network
	if m.netDirty || len(m.dirtyNode) > 0 {
		net = m.network()
	}
	if m.netDirty {
		if h := hashOf(net); h != m.netHash {
			m.netHash = h
			m.allNodesDirty()
		}
		m.netDirty = false
	}
	save, remove, more := m.takeDirtyInstances(now, false)
	pubs := m.takeDirtyNodes(net)
	m.updateMetrics()
	notify := m.onChange
	if !m.news {
		notify = nil
	}
	m.news = false
	m.mu.Unlock()
	if notify != nil {
		notify()
	}

	var errs []error
	if err := m.saveNodes(ctx, subnetted); err != nil {
		errs = append(errs, err)
	}
	if err := m.saveLedgers(ctx, ledgers); err != nil {
		// Grants made from a ledger that is not stored are not published:
		// a restart would forget them.
		errs = append(errs, err)
		m.mu.Lock()
		for id := range pubs {
			m.dirtyNode[id] = true
		}
		m.mu.Unlock()
		pubs = nil
	}
	if err := m.st.WriteInstances(ctx, save, remove); err != nil {
		errs = append(errs, err)
		m.mu.Lock() // try again next time
		for _, in := range save {
			m.dirty(in.Key, true)
		}
		for _, k := range remove {
			m.dirty(k, true)
		}
		m.mu.Unlock()
	}
	for id, d := range pubs {
		if err := m.pub.PublishDesired(ctx, id, d); err != nil {
			errs = append(errs, fmt.Errorf("publish desired set of node %s: %w", id, err))
			m.mu.Lock()
			m.dirtyNode[id] = true
			m.mu.Unlock()
		}
	}
	if more && len(errs) == 0 {
		m.Kick() // the next chunk of due statuses, at once
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// flush writes every instance change still waiting, when the manager
// stops.
func (m *Manager) flush() {
	m.mu.Lock()
	save, remove, _ := m.takeDirtyInstances(time.Now(), true)
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.st.WriteInstances(ctx, save, remove); err != nil {
		m.log.Warn("write instances at stop", "err", err)
	}
}

// replaceUnknown frees the UNKNOWN instances of lost nodes for placement
// elsewhere when their services' disconnect policies say so, remembering
// the node whose copy may still run. Caller holds mu.
func (m *Manager) replaceUnknown(now time.Time) {
	moved := 0
	for _, in := range m.instances {
		if in.Status.Status != wire.StatusUnknown || in.NodeID == "" {
			continue
		}
		n := m.nodes[in.NodeID]
		pol := in.Spec.DisconnectPolicy()
		if n == nil || n.active || !pol.Replace || now.Sub(in.UnknownSince) < time.Duration(pol.ReplaceAfter)*time.Second {
			continue
		}
		in.LostFrom, in.NodeID = in.NodeID, ""
		m.pendingOn[in.LostFrom] = true
		in.Status = wire.InstanceStatus{Key: in.Key, Status: wire.StatusLost, Detail: "being replaced: " + in.Status.Detail}
		m.event(in.Key, "seeking a replacement on another node (disconnect policy: replace)")
		m.dirty(in.Key, true)
		moved++
	}
	if moved > 0 {
		mReplaced.Add(float64(moved))
		m.log.Warn("placing UNKNOWN instances of lost nodes elsewhere", "instances", moved)
	}
}

// place puts unplaced instances on nodes. Caller holds mu.
func (m *Manager) place() {
	var pending []*state.Instance
	hold := len(m.inherited) > 0 && time.Now().Before(m.holdUntil)
	if !hold {
		clear(m.inherited)
	}
	for _, in := range m.instances {
		if in.NodeID == "" && in.Status.Status != wire.StatusCompleted && !(hold && m.inherited[in.Key]) {
			pending = append(pending, in)
		}
	}
	if len(pending) == 0 {
		return
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Key < pending[j].Key })
	// Instances whose latency constraints name a service go second, so
	// that they see where this batch put that service's instances.
	var plain, near []*state.Instance
	for _, in := range pending {
		if in.Spec.NamesService() {
			near = append(near, in)
		} else {
			plain = append(plain, in)
		}
	}
	m.placeBatch(plain, false)
	m.placeBatch(near, true)
}

// placeBatch places instances in one scheduler batch; withServices: the
// scheduler needs to know which services run on each node. Caller holds mu.
func (m *Manager) placeBatch(pending []*state.Instance, withServices bool) {
	if len(pending) == 0 {
		return
	}
	specs := make([]wire.InstanceSpec, len(pending))
	for i, in := range pending {
		specs[i] = in.Spec
	}
	nodes := m.snapshot(withServices)
	for i, r := range scheduler.PlaceAllNodes(m.cfg.ClusterName, nodes, specs) {
		in := pending[i]
		if r.Err != nil && in.DrainFrom != "" {
			m.moveBack(in, "no other node has room for it now: "+r.Err.Error())
			continue
		}
		if r.Err != nil {
			st := wire.InstanceStatus{Key: in.Key, Status: wire.StatusNoCapacity, Detail: r.Err.Error(), Choice: r.Choice.Reasons}
			if lost := m.nodes[in.LostFrom]; lost != nil {
				// Its copy may still run on the lost node: it stays UNKNOWN
				// there, and this cluster's, until that node returns (its
				// report decides) or another has room. NO_CAPACITY would
				// hand it back to the root, which would take it from here
				// and so from the node when it returns (issue 23, bug 2).
				st = wire.InstanceStatus{Key: in.Key, Status: wire.StatusUnknown, Node: lost.Name, NodeID: lost.ID,
					Detail: fmt.Sprintf("node %s is silent; no other node has room for a replacement: %v", lost.Name, r.Err)}
			}
			if statusChanged(in.Status, st) {
				if in.Status.Status != st.Status {
					m.event(in.Key, "not placed: "+st.Detail)
				}
				in.Status = st
				m.dirty(in.Key, false)
			}
			continue
		}
		in.NodeID, in.Impl = r.Placement.NodeID, r.Choice.Name(&in.Spec)
		if in.LostFrom == in.NodeID {
			in.LostFrom = "" // back where it ran: its report decides what runs
		}
		st := wire.InstanceStatus{Key: in.Key, Status: wire.StatusScheduled,
			Detail: "placed on node " + r.Placement.NodeName, Node: r.Placement.NodeName, NodeID: in.NodeID,
			Implementation: in.Impl, Choice: r.Choice.Reasons}
		if mv := m.moves[in.Key]; mv != nil && in.DrainFrom != "" {
			mv.to = st // the copy on the drained node serves until this one runs
			in.Status.Detail = moveDetail(m.nodeName(in.DrainFrom), st)
		} else {
			in.Status = st
		}
		how := ""
		if in.Impl != "" {
			how = " as implementation " + in.Impl
		}
		m.event(in.Key, "placed on node "+r.Placement.NodeName+how+placedWhy(nodes, r.Placement.NodeID, in.Running()))
		m.dirty(in.Key, true)
		m.dirtyNode[in.NodeID] = true
	}
}

// snapshot returns the nodes as the scheduler sees them, with what their
// placed instances reserve (reported or not yet). Caller holds mu.
func (m *Manager) snapshot(withServices bool) []scheduler.Node {
	held := m.reservations()
	services := map[string][]string{} // latency targets: the services on each node
	for _, in := range m.instances {
		if withServices && in.NodeID != "" {
			if name := in.Spec.ApplicationName + "/" + in.Spec.MicroserviceName; !slices.Contains(services[in.NodeID], name) {
				services[in.NodeID] = append(services[in.NodeID], name)
			}
		}
	}
	out := make([]scheduler.Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		info := n.Info
		info.Active = n.active
		info.Reserved, info.UsedPorts = held[n.ID].res, held[n.ID].ports
		if info.Location == "" {
			info.Location = m.cfg.Location // geo constraints: a node is where its cluster is
		}
		out = append(out, scheduler.Node{NodeInfo: info, Services: services[n.ID], Cordoned: m.cordoned[n.ID]})
	}
	return out
}

// holding is what the instances placed on a node take.
type holding struct {
	res   wire.Resources
	ports []string
}

// reservations sums, per node, what the instances placed on it take:
// resources and published host ports. Finished one-shot instances hold
// nothing. Caller holds mu.
func (m *Manager) reservations() map[string]holding {
	r := map[string]holding{}
	for _, in := range m.instances {
		if in.NodeID == "" || in.Status.Status == wire.StatusCompleted ||
			(in.Spec.OneShot && in.Status.Status == wire.StatusFailed) {
			continue
		}
		h := r[in.NodeID]
		h.res = h.res.Add(in.Running().Resources)
		if ms, err := in.Spec.PortMappings(); err == nil {
			h.ports = append(h.ports, wire.UsedPorts(ms)...)
		}
		r[in.NodeID] = h
	}
	return r
}

// takeDirtyInstances takes the instances to write: the urgent ones, and
// the status-only ones when lazyWrites passed since they were last all
// taken, at most lazyChunk of them (every one when all is set). more says
// that status-only changes that are due were left for the next pass.
// Caller holds mu.
func (m *Manager) takeDirtyInstances(now time.Time, all bool) (save []state.Instance, remove []string, more bool) {
	lazy := all || m.draining || now.Sub(m.lastLazy) >= lazyWrites
	taken := 0
	for k, urgent := range m.dirtyInst {
		if !urgent && !lazy {
			continue
		}
		if !urgent && !all {
			if taken == lazyChunk {
				more = true
				continue
			}
			taken++
		}
		delete(m.dirtyInst, k)
		if in, ok := m.instances[k]; ok {
			save = append(save, *in)
		} else {
			remove = append(remove, k)
		}
	}
	if lazy && !more {
		m.lastLazy = now
	}
	m.draining = more
	return save, remove, more
}

// takeDirtyNodes builds the desired sets to publish. A lost node gets
// none until it is back: it may only be slow or cut off, and a desired set
// without the instances just placed elsewhere would have it stop them
// (when it comes back, the copies that run are sorted out first, see
// reclaims). Caller holds mu.
func (m *Manager) takeDirtyNodes(net wire.Network) map[string]wire.NodeDesired {
	ready := false
	for id := range m.dirtyNode {
		if n, ok := m.nodes[id]; !ok {
			delete(m.dirtyNode, id)
		} else if n.active {
			ready = true
		}
	}
	if !ready {
		return nil // nothing, or only lost nodes, to publish to
	}
	m.gen++
	out := make(map[string]wire.NodeDesired, len(m.dirtyNode))
	for id := range m.dirtyNode {
		if !m.nodes[id].active {
			continue // stays dirty until the node is back
		}
		delete(m.dirtyNode, id)
		out[id] = wire.NodeDesired{Version: wire.Version, Generation: m.gen, Instances: []wire.InstanceSpec{},
			Subnet: m.nodes[id].Subnet, ClusterID: m.clusterID, Network: withoutPeer(net, id)}
	}
	for _, in := range m.instances {
		if d, ok := out[in.NodeID]; ok {
			d.Instances = append(d.Instances, m.nodeSpec(in, false))
			out[in.NodeID] = d
		}
		// A node back from lost keeps what was taken from it until its
		// report decides which copy survives (see keeps); of a job pool,
		// without jobs.
		if d, ok := out[in.LostFrom]; ok && in.LostFrom != "" {
			d.Instances = append(d.Instances, m.nodeSpec(in, true))
			out[in.LostFrom] = d
		}
		// A drained node keeps an instance moving off it until its new
		// copy runs (cordon.go); of a job pool, without jobs.
		if d, ok := out[in.DrainFrom]; ok && in.DrainFrom != "" {
			d.Instances = append(d.Instances, m.nodeSpec(in, true))
			out[in.DrainFrom] = d
		}
	}
	for id, d := range out {
		slices.SortFunc(d.Instances, func(a, b wire.InstanceSpec) int { return strings.Compare(a.Key, b.Key) })
		for k, gen := range m.removedFrom[id] {
			if !slices.ContainsFunc(d.Instances, func(s wire.InstanceSpec) bool { return s.Key == k }) {
				d.Removed = append(d.Removed, k)
				if gen == 0 {
					m.removedFrom[id][k] = m.gen
				}
			} else {
				delete(m.removedFrom[id], k) // wanted there again
			}
		}
		slices.Sort(d.Removed)
		out[id] = d
	}
	return out
}

func (m *Manager) updateMetrics() {
	var active, lost float64
	for _, n := range m.nodes {
		if n.active {
			active++
		} else {
			lost++
		}
	}
	mNodes.WithLabelValues("active").Set(active)
	mNodes.WithLabelValues("lost").Set(lost)
	counts := map[string]float64{}
	for _, in := range m.instances {
		counts[in.Status.Status]++
	}
	mInstances.Reset()
	for st, c := range counts {
		mInstances.WithLabelValues(st).Set(c)
	}
}

// Nodes returns the nodes for the root, with their reservations.
func (m *Manager) Nodes() []wire.NodeInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := m.reservations()
	out := make([]wire.NodeInfo, 0, len(m.nodes))
	for _, n := range m.nodes {
		info := n.Info
		info.Active = n.active
		info.LastSeen = n.lastSeen.UTC()
		info.Reserved, info.UsedPorts = held[n.ID].res, held[n.ID].ports
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b wire.NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Statuses returns the status of every instance, for the root.
func (m *Manager) Statuses() []wire.InstanceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]wire.InstanceStatus, 0, len(m.instances))
	for _, in := range m.instances {
		out = append(out, in.Status)
	}
	slices.SortFunc(out, func(a, b wire.InstanceStatus) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// NodeIDs returns the ids of all registered nodes.
func (m *Manager) NodeIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.nodes))
	for id := range m.nodes {
		out = append(out, id)
	}
	return out
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
