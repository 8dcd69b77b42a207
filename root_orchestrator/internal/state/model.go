package state

import (
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// The model: what the root knows, in its own types. The REST documents
// (the api module) and the tier protocol (contract/wire) are converted to and
// from these at the edges; the storage schema lives with the backend.
//
// Objects handed out by the store are shared with its snapshots: never
// modify one; copy it, change the copy and Put it in a write.

// Application is a user's application: a name and the services in it.
type Application struct {
	ID          string
	Name        string
	Namespace   string
	Description string
	Owner       string
	Services    []string // ids, in creation order
	// Isolation is sla.IsolationApplication when the application is
	// isolated from its owner's other applications too (its own tenant on
	// the overlay); empty: isolated as its owner's (README: Tenancy).
	Isolation string
	// OAM is the manifest the application was made from; nil for an
	// application made from an SLA.
	OAM       *OAMSource
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Constraint restricts where a service's instances may run (as in the SLA).
type Constraint struct {
	Type            string
	Node            string
	Cluster         string
	Allowed         []string
	Area            string
	Location        string
	Threshold       float64
	Rigidness       float64
	ConvergenceTime int
	Service         string
}

// ServiceSpec is what a service asks of its instances; it does not change
// after the service is created.
type ServiceSpec struct {
	Virtualization string
	Code           string
	Arch           []string
	Cmd            []string
	Environment    []string
	Port           string
	MemoryMB       int
	VCPUs          int
	VGPUs          int
	VTPUs          int
	BandwidthIn    int
	BandwidthOut   int
	Storage        int
	AddedFiles     []string
	Constraints    []Constraint
	OneShot        bool
	// Completions and Retries: the SLA's completions and backoff_limit
	// (resolved) of an indexed one-shot service; 0 without completions.
	Completions int
	Retries     int
	Disconnect  Disconnect
	// Security is the SLA's security field, capabilities canonical (nil:
	// the node's default sandbox).
	Security *wire.Security
	// Implementations are all implementations of an overloaded service,
	// in preference order, the first being the fields above (nil: one).
	Implementations []wire.Implementation
	// NodeSelector lists the labels a node must have (nil: any node).
	NodeSelector map[string]string
	// AllowFrom is the SLA's allow_from: the peers outside the owner's
	// tenant whose instances may connect to the service's (see
	// sla.ParsePeer; resolved in ServiceTable).
	AllowFrom []string
	// Ports is Port (the SLA's field as written) parsed: derived when the
	// service is created or loaded, never stored.
	Ports []wire.PortMapping
}

// Disconnect is a service's policy while the cluster or node running one
// of its instances is silent (the SLA's disconnect field, resolved).
type Disconnect struct {
	// Replace: an UNKNOWN instance is placed elsewhere after ReplaceAfter.
	Replace      bool
	ReplaceAfter time.Duration
	// StopAfter: a node cut off from its cluster this long stops its copy
	// (0: never).
	StopAfter time.Duration
	// Reconcile: which copy survives when both run (wire.KeepOriginal or
	// wire.KeepReplacement).
	Reconcile string
}

// DefaultDisconnect is the policy of a service stored before policies
// existed: the SLA's defaults.
func DefaultDisconnect(oneShot bool) Disconnect {
	return disconnectOf(&sla.Microservice{OneShot: oneShot})
}

// disconnectOf is a microservice's disconnect policy, defaults filled in
// by the SLA's rules.
func disconnectOf(m *sla.Microservice) Disconnect {
	replace, after, stop, reconcile := m.Policy()
	return Disconnect{Replace: replace, ReplaceAfter: time.Duration(after) * time.Second,
		StopAfter: time.Duration(stop) * time.Second, Reconcile: reconcile}
}

// securityOf is a microservice's security field for the wire: nil when it
// asks for nothing, capabilities canonical and without repeats.
func securityOf(m *sla.Microservice) *wire.Security {
	s := m.Security
	if s == nil || (!s.Privileged && len(s.CapAdd) == 0 && s.PidsLimit == 0 && !s.Compat32) {
		return nil
	}
	out := &wire.Security{Privileged: s.Privileged, PidsLimit: int64(s.PidsLimit), Compat32: s.Compat32}
	for _, c := range s.CapAdd {
		if c = sla.CanonicalCap(c); !slices.Contains(out.CapAdd, c) {
			out.CapAdd = append(out.CapAdd, c)
		}
	}
	return out
}

// portsOf is a service's port field parsed. The field was validated with
// the SLA; a stored one the SLA's rules now refuse gives nil, and the tiers
// then find the error in the spec's Port (wire.InstanceSpec.PortMappings)
// as they did before Ports.
func portsOf(field string) []wire.PortMapping {
	ms, _ := wire.ParsePorts(field)
	return ms
}

// Service is a microservice of an application. Its instances are objects of
// their own.
type Service struct {
	ID           string
	Name         string
	Namespace    string
	AppID        string
	AppName      string
	AppNamespace string
	Owner        string
	Spec         ServiceSpec
	RRIP         string
	ClosestIP    string
	// NextInstance is the number the next instance gets; never reused.
	NextInstance int
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// Jobs is the service's job list (collaborative workloads), changeable
	// at any time; JobsVersion grows with every change of it. JobsLease is
	// how long an instance cut off from its cluster keeps its jobs.
	Jobs        []string
	JobsVersion int64
	JobsLease   time.Duration

	// Rollout is the edit being rolled out (nil: none; see
	// Store.UpdateService).
	Rollout *Rollout
}

// Instance is one requested copy of a service, wherever it is.
type Instance struct {
	Key       string // wire.InstanceKey(ServiceID, Number)
	ServiceID string
	Number    int
	Owner     string

	Status string
	Detail string
	// ClusterID is the cluster the instance is assigned to ("" while it
	// waits for one).
	ClusterID       string
	ClusterLocation string
	// LostFrom is the cluster that was declared lost while it ran the
	// instance, when a replacement was sought elsewhere: its copy may still
	// run, and which copy survives is decided when it reports again (see
	// Disconnect.Reconcile). Until then its desired set keeps the instance.
	LostFrom string
	// LostAt is when the cluster the instance was assigned to was last
	// declared lost: a copy it reports as started after that is no
	// original.
	LostAt time.Time
	// PlannedNode is the node of ClusterID whose free capacity the root
	// scheduler counted on when it assigned the instance; the root keeps that
	// capacity reserved until the cluster reports where the instance runs.
	PlannedNode string
	NodeID      string
	NodeName    string
	HostIP      string
	HostPort    int
	InstanceIP  string
	Restarts    int

	// Usage, log tail and a pending restart's time: kept in memory only,
	// refreshed by every report.
	RestartAt  time.Time
	CPUPercent float64
	MemoryMB   int64
	Logs       string
	// JobsVersion and JobsHeld are the job grant the instance applied, as
	// its cluster reported it: the version and the jobs, joined by ","
	// (which job names may not contain; a string keeps Instance
	// comparable). In memory only, like usage.
	JobsVersion int64
	JobsHeld    string
	// Implementation is the implementation of an overloaded service its
	// cluster chose, and Choice why (one line per implementation, joined
	// by newlines, keeping Instance comparable). In memory only: the
	// cluster's full sync after a restart brings them again.
	Implementation string
	Choice         string

	CreatedAt time.Time
	UpdatedAt time.Time
	// Judged: the root scheduler found no cluster for the instance as it
	// waits now; it is tried again once a second rather than at every write.
	Judged bool
	// DesiredIndex is the store index at which the instance was last
	// assigned to its cluster, or its spec changed: what a cluster's
	// desired-set delta is judged by.
	DesiredIndex uint64

	// Spec is the spec the instance was created with while its service
	// is edited since: it keeps running with it until a rollout replaces
	// it (nil: its service's spec; see Store.UpdateService).
	Spec *ServiceSpec
}

// Waiting reports whether the instance waits for the root scheduler.
func (in *Instance) Waiting() bool {
	if in.ClusterID != "" {
		return false
	}
	switch in.Status {
	case wire.StatusRequested, wire.StatusNoCapacity, wire.StatusLost:
		return true
	}
	return false
}

// fresh reports whether the instance waits and the scheduler has not tried
// it yet.
func (in *Instance) fresh() bool { return in.Waiting() && !in.Judged }

// Cluster is a registered cluster. Its nodes are objects of their own.
type Cluster struct {
	ID       string
	Name     string
	Address  string
	Port     int
	Location string
	// Coordinate is the centroid of its nodes' network coordinates, as
	// its last sync said (kept in memory only).
	Coordinate     *wire.Coordinate
	CredentialHash string
	Active         bool
	// LastSeen is the wall-clock time of the last sync (liveness is judged
	// on this process's monotonic clock, see dispatch).
	LastSeen     time.Time
	RegisteredAt time.Time
	// DeletedNodes are the ids of its nodes an admin deleted (the newest
	// MaxDeletedNodes): the cluster is told them with every desired set,
	// revokes their credentials and refuses them; its reports of them are
	// ignored.
	DeletedNodes []string
	// NodeTokens are the node join tokens an admin issued for the cluster
	// (nodetokens.go); CAPin the pin of the cluster's CA as it last said
	// (the tokens the root prints carry it); TokensIndex the write that
	// last changed NodeTokens (memory only: it wakes the cluster's watch).
	NodeTokens  []NodeToken
	CAPin       string
	TokensIndex uint64
	// CordonedNodes are the ids of its nodes an admin cordoned (nothing
	// new is placed there), DrainedNodes those an admin drains (cordoned
	// too; the cluster moves their instances away): its desired sets carry
	// both (cordon.go).
	CordonedNodes []string
	DrainedNodes  []string
	// CertBound: it registered with a certificate request and got a client
	// certificate, which its calls must then present (clustercert.go in
	// httpapi).
	CertBound bool
}

// MaxDeletedNodes bounds a cluster's DeletedNodes (the oldest go).
const MaxDeletedNodes = 256

// Node is a worker node of a cluster as the cluster last reported it. The
// node description is the tiers' own (it is what the schedulers judge).
type Node struct {
	ClusterID string
	wire.NodeInfo
}

// ID of a node object: unique across clusters.
func nodeID(clusterID, nodeID string) string { return clusterID + "/" + nodeID }

// IPReservation marks a service IP as taken.
type IPReservation struct {
	IP        string
	ServiceID string
	Kind      string // "rr" or "closest"
	CreatedAt time.Time
}

// Block is an address block of the instance network held by a cluster.
type Block struct {
	Prefix    string
	ClusterID string
	CreatedAt time.Time
}

// tombstone remembers that an instance left a cluster's desired set at an
// index, for desired-set deltas. Kept in memory only.
type tombstone struct {
	ID        string // ClusterID + "/" + Key
	ClusterID string
	Key       string
	Index     uint64
	At        time.Time
}
