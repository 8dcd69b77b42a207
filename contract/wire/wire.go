// Package wire holds the messages between Thicket's tiers: root ↔ cluster
// over HTTP (the cluster dials the root) and cluster ↔ node over MQTT (the
// node dials the cluster's broker), plus node registration over HTTP.
//
// Every tier reconciles toward a desired state: the root sends each cluster
// the full set of instances it should run, the cluster sends each node its
// full set as a retained MQTT message, and reports flow back up. Lost or
// repeated messages are therefore harmless; the next one corrects them.
package wire

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thicket-edge/thicket/contract/sla"
)

// Version of this protocol. A tier refuses messages of another major version.
//
// Within a major version messages only gain fields, and a tier still takes
// the messages of tiers that predate a field: its absence means what the
// earlier tier meant (InstanceSpec.Disconnect and Ports, ClusterSync.Delta),
// and a field that a new one replaces is still sent for the earlier tiers
// (InstanceSpec.Port). InstanceStatus.RestartAt came later within v1: an
// earlier tier shows such an instance as the FAILED it is reported as. So
// did NodeReport.Events and ClusterSync.Events: an earlier tier ignores
// them, and a later one takes their absence as no news. So did
// ClusterDesired.DeletedNodes: its absence means no node was deleted.
// So did InstanceSpec.Implementations (an earlier cluster runs the first,
// which the spec's own fields are) and InstanceStatus.Implementation and
// Choice (absent: the spec had one implementation), InstanceSpec.NodeSelector
// (an earlier cluster places such an instance on any node) and
// NodeInfo.Labels and NodeRegisterRequest.Labels (absent: no labels).
// So did NodeRegisterRequest.CSRPEM and NodeRegisterResponse.CertPEM (with
// /api/node/certificate): a node without a CSR gets no certificate and
// keeps password-only MQTT; a cluster without them answers no certificate
// and the node goes on without one.
// So did ClusterDesired.NodeTokens, ClusterSync.NodeTokenUses and
// ClusterSync.CAPin (nodetokens.go): an earlier root sends no node tokens
// (its clusters take only their own file token) and ignores the uses and
// the pin.
// So did NodeInfo.Coordinate and Location, NodeNetwork.ProbePort and
// ClusterSync.Coordinate and Location: their absence means not measured,
// no location, no probe responder.
// So did ServiceRoute.Tenant, AllowUsers and AllowServices: without Tenant a
// service's instances are not isolated (as before).
// So did ClusterDesired.CordonedNodes and DrainedNodes: their absence means
// every node takes placements.
// InstanceStatus.Logs became timestamped records (logline.go) within v1: a
// later root reads an earlier node's plain lines as text without a time, an
// earlier root shows the records as they are.
// So did InstanceSpec.Completions, Retries and Ended: an earlier cluster
// and node run such an instance once, as any one_shot instance (and an
// earlier node may start an ended one again if its runtime lost it).
// So did ClusterRegisterRequest.CSRPEM and ClusterRegisterResponse.CertPEM
// (with /api/cluster/certificate): a cluster without a CSR gets no
// certificate and keeps credential-only calls; a root without them (or
// without its CA's key) answers no certificate and the cluster goes on
// without one.
const Version = "v1"

// Instance statuses (the same strings as the public API).
const (
	StatusRequested  = "REQUESTED"
	StatusScheduled  = "SCHEDULED"
	StatusCreating   = "CREATING"
	StatusRunning    = "RUNNING"
	StatusCompleted  = "COMPLETED"
	StatusFailed     = "FAILED"
	StatusNoCapacity = "NO_CAPACITY"
	StatusLost       = "LOST"
	// StatusUnknown: the node or cluster that runs the instance is silent;
	// it may still run there (see Disconnect).
	StatusUnknown = "UNKNOWN"
)

// Resources is an amount of compute: what a node has, what is free, or what
// an instance asks for.
type Resources struct {
	// MilliCPU is CPU in thousandths of a core (an SLA's vcpus × 1000).
	MilliCPU int64 `json:"milli_cpu"`
	MemoryMB int64 `json:"memory_mb"`
	VGPUs    int64 `json:"vgpus"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.MilliCPU + o.MilliCPU, r.MemoryMB + o.MemoryMB, r.VGPUs + o.VGPUs}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.MilliCPU - o.MilliCPU, r.MemoryMB - o.MemoryMB, r.VGPUs - o.VGPUs}
}

// Fits reports whether o fits into r.
func (r Resources) Fits(o Resources) bool {
	return o.MilliCPU <= r.MilliCPU && o.MemoryMB <= r.MemoryMB && o.VGPUs <= r.VGPUs
}

// InstanceKey names one instance of a service everywhere:
// "<serviceID>.<instance number>".
func InstanceKey(serviceID string, n int) string {
	return serviceID + "." + strconv.Itoa(n)
}

// ParseInstanceKey splits an InstanceKey.
func ParseInstanceKey(key string) (serviceID string, n int, err error) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 {
		return "", 0, fmt.Errorf("instance key %q: no instance number", key)
	}
	n, err = strconv.Atoi(key[i+1:])
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("instance key %q: bad instance number", key)
	}
	return key[:i], n, nil
}

// Constraint restricts placement (as in the SLA).
type Constraint struct {
	Type    string   `json:"type"`
	Node    string   `json:"node,omitempty"`
	Cluster string   `json:"cluster,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
	// Area, Location, Threshold (latency and geo constraints),
	// Rigidness and ConvergenceTime came later within v1: an earlier
	// cluster does not know those types and places nothing with them.
	Area            string  `json:"area,omitempty"`
	Location        string  `json:"location,omitempty"`
	Threshold       float64 `json:"threshold,omitempty"`
	Rigidness       float64 `json:"rigidness,omitempty"`
	ConvergenceTime int     `json:"convergence_time,omitempty"`
	Service         string  `json:"service,omitempty"`
}

// InstanceSpec is one instance that should run: everything a cluster needs
// to place it and a node needs to run it.
type InstanceSpec struct {
	// Key is InstanceKey(ServiceID, InstanceNumber).
	Key                   string            `json:"key"`
	ServiceID             string            `json:"service_id"`
	InstanceNumber        int               `json:"instance_number"`
	ApplicationName       string            `json:"app_name"`
	ApplicationNamespace  string            `json:"app_ns"`
	MicroserviceName      string            `json:"service_name"`
	MicroserviceNamespace string            `json:"service_ns"`
	Virtualization        string            `json:"virtualization"`
	Code                  string            `json:"code"`
	Arch                  []string          `json:"arch,omitempty"`
	Cmd                   []string          `json:"cmd,omitempty"`
	Environment           []string          `json:"environment,omitempty"`
	Port                  string            `json:"port,omitempty"` // the SLA's field as written: see Ports
	Resources             Resources         `json:"resources"`
	OneShot               bool              `json:"one_shot,omitempty"`
	Constraints           []Constraint      `json:"constraints,omitempty"`
	RRIP                  string            `json:"rr_ip,omitempty"`
	ClosestIP             string            `json:"closest_ip,omitempty"`
	Labels                map[string]string `json:"labels,omitempty"`
	// Disconnect is the service's policy while a tier is silent; nil from
	// a root that predates it: DisconnectPolicy gives the defaults.
	Disconnect *Disconnect `json:"disconnect,omitempty"`
	// Ports are the ports the instance publishes on its node's address: the
	// SLA's port field, which the root also sends as written in Port for
	// tiers that predate Ports, parsed. Read them with PortMappings, which
	// parses Port when Ports is empty (a spec from such a root).
	Ports []PortMapping `json:"ports,omitempty"`
	// Jobs is the service's job list and JobsLease its lease in seconds
	// (collaborative workloads), from the root to the cluster, which
	// shares the jobs among the service's instances. A cluster sends a
	// node neither, only each instance's JobGrant. Absent (from a root
	// that predates them, or a service without jobs): no jobs, no grant.
	Jobs      []string `json:"jobs,omitempty"`
	JobsLease int      `json:"jobs_lease_s,omitempty"`
	// JobGrant is what the cluster tells the instance it owns, in a
	// node's desired set. It is not what the instance runs: SameSpec
	// ignores it, so a changed grant never restarts an instance.
	JobGrant *JobGrant `json:"job_grant,omitempty"`
	// Security is what the instance asks beyond the default sandbox (the
	// SLA's security field; nil: the defaults). Nodes that predate it run
	// every container with their defaults, never with more.
	Security *Security `json:"security,omitempty"`
	// Implementations are the ways to run the service, in preference
	// order (see Implementation), when it has several; the cluster picks
	// one per instance and gives the node the spec of that one alone
	// (Implement).
	Implementations []Implementation `json:"implementations,omitempty"`
	// NodeSelector lists labels a node must all have (NodeInfo.Labels) to
	// run the instance; absent: any node.
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Completions is the SLA's completions of a one_shot service (an
	// indexed job: its instance number is its index) and Retries how often
	// its node retries a FAILED run of the instance, in place, before it
	// stays FAILED (the SLA's backoff_limit, resolved). Absent (a root
	// that predates them, or no completions): the instance runs at most
	// once.
	Completions int `json:"completions,omitempty"`
	Retries     int `json:"retries,omitempty"`
	// Ended is set by the cluster, in a node's desired set, on a one_shot
	// instance that already ended for good (COMPLETED, or FAILED with no
	// retry left): the node never starts it again, also when its runtime
	// no longer has it (a wiped or rebooted node), and reports it as
	// Ended. Absent: it may run.
	Ended string `json:"ended,omitempty"`
}

// JobGrant is an instance's share of its service's jobs at a version.
type JobGrant struct {
	// Version grows whenever any instance's set of the service changes.
	Version int64 `json:"version"`
	// Jobs are the jobs the instance owns at Version, sorted.
	Jobs []string `json:"jobs"`
	// LeaseS is how long, in seconds, the node keeps the grant while it
	// does not hear from its cluster; then it takes the jobs away itself.
	LeaseS int `json:"lease_s"`
	// PoolSize is the number of the service's instances in the pool.
	PoolSize int `json:"pool_size"`
}

// Security is a container's sandbox beyond the node's defaults. The root
// sends Privileged and CapAdd only for an administrator's service.
type Security struct {
	// Privileged: every capability, no seccomp, masked paths or
	// no_new_privs, the host's devices.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd are capabilities added to the default set, canonical
	// ("CAP_NET_ADMIN").
	CapAdd []string `json:"cap_add,omitempty"`
	// PidsLimit bounds the container's processes; 0: the node's default.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// Compat32 adds the node's 32-bit system call interfaces to the
	// seccomp profile (by default it allows the native one only).
	Compat32 bool `json:"compat32,omitempty"`
}

// PortMapping is one port an instance publishes: traffic to HostPort on
// its node's address goes to InstancePort on the instance's own address.
type PortMapping struct {
	HostPort     int `json:"host_port"`
	InstancePort int `json:"instance_port"`
	// Protocol is ProtocolTCP or ProtocolUDP.
	Protocol string `json:"protocol"`
}

// Port protocols (lower case, as sla.ParsePorts gives them).
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// UsedPort is the entry the mapping takes in its node's NodeInfo.UsedPorts:
// "8080/tcp".
func (p PortMapping) UsedPort() string {
	return strconv.Itoa(p.HostPort) + "/" + p.Protocol
}

// UsedPorts returns the UsedPort of each mapping (nil for none).
func UsedPorts(ms []PortMapping) []string {
	if len(ms) == 0 {
		return nil
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UsedPort()
	}
	return out
}

// ParsePorts parses an SLA port field (see sla.ParsePorts) into mappings:
// nil for an empty field.
func ParsePorts(field string) ([]PortMapping, error) {
	ms, err := sla.ParsePorts(field)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	out := make([]PortMapping, len(ms))
	for i, m := range ms {
		out[i] = PortMapping{HostPort: m.HostPort, InstancePort: m.ContainerPort, Protocol: m.Protocol}
	}
	return out, nil
}

// CheckPorts reports whether mappings could come from ParsePorts: ports in
// 1..65535, protocol tcp or udp, and each host port and protocol mapped
// once.
func CheckPorts(ms []PortMapping) error {
	seen := make(map[PortMapping]bool, len(ms))
	for i, m := range ms {
		switch {
		case m.HostPort < 1 || m.HostPort > 65535:
			return fmt.Errorf("ports[%d]: host port %d is out of range 1-65535", i, m.HostPort)
		case m.InstancePort < 1 || m.InstancePort > 65535:
			return fmt.Errorf("ports[%d]: instance port %d is out of range 1-65535", i, m.InstancePort)
		case m.Protocol != ProtocolTCP && m.Protocol != ProtocolUDP:
			return fmt.Errorf("ports[%d]: protocol %q is not tcp or udp", i, m.Protocol)
		}
		k := PortMapping{HostPort: m.HostPort, Protocol: m.Protocol}
		if seen[k] {
			return fmt.Errorf("ports[%d]: host port %s is mapped twice", i, m.UsedPort())
		}
		seen[k] = true
	}
	return nil
}

// PortMappings returns the ports the instance publishes, checked
// (CheckPorts): Ports, or for a spec from a tier that predates them (Ports
// empty), its Port field parsed. Port is not read when Ports is set.
func (s *InstanceSpec) PortMappings() ([]PortMapping, error) {
	if len(s.Ports) == 0 {
		return ParsePorts(s.Port)
	}
	if err := CheckPorts(s.Ports); err != nil {
		return nil, err
	}
	return s.Ports, nil
}

// Disconnect is a service's resolved disconnect policy (see the SLA's
// disconnect field): whether and after how many seconds an UNKNOWN
// instance is replaced elsewhere, after how many seconds a node cut off
// from its cluster stops its copy (0: never), and which copy survives when
// both run ("keep_original" or "keep_replacement").
type Disconnect struct {
	Replace      bool   `json:"replace"`
	ReplaceAfter int    `json:"replace_after,omitempty"`
	StopAfter    int    `json:"stop_after,omitempty"`
	Reconcile    string `json:"reconcile"`
}

// Reconcile choices (the SLA's strings).
const (
	KeepOriginal    = "keep_original"
	KeepReplacement = "keep_replacement"
)

// DisconnectPolicy returns the spec's disconnect policy, or the defaults:
// replace at once unless one-shot, never stop the cut-off copy, keep the
// original.
func (s *InstanceSpec) DisconnectPolicy() Disconnect {
	if s.Disconnect != nil {
		return *s.Disconnect
	}
	return Disconnect{Replace: !s.OneShot, Reconcile: KeepOriginal}
}

// InstanceStatus is what a tier knows of one instance.
type InstanceStatus struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Node is the node's name (set by the cluster when reporting up).
	Node     string `json:"node,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	HostIP   string `json:"host_ip,omitempty"`
	HostPort int    `json:"host_port,omitempty"`
	// InstanceIP is the instance's own address, when it has one.
	InstanceIP string    `json:"instance_ip,omitempty"`
	ExitCode   int       `json:"exit_code,omitempty"`
	Restarts   int       `json:"restarts,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	CPUPercent float64   `json:"cpu_percent,omitempty"`
	MemoryMB   int64     `json:"memory_mb,omitempty"`
	// Logs is the tail of the instance's output (bounded by the node): one
	// timestamped record per line, stdout and stderr marked (logline.go;
	// older nodes sent plain lines, which ParseLog still reads as text).
	Logs string `json:"logs,omitempty"`
	// JobsVersion is the JobGrant version the instance has applied (the
	// node's acknowledgement; 0: none). Jobs is the set of that grant, as
	// the cluster reports it up to the root.
	JobsVersion int64    `json:"jobs_version,omitempty"`
	Jobs        []string `json:"jobs,omitempty"`
	// RestartAt is set on a FAILED instance that its node starts again
	// (after a backoff) at that time; zero when no restart is pending.
	RestartAt time.Time `json:"restart_at,omitzero"`
	// Implementation names the implementation the cluster chose for the
	// instance (a spec with Implementations), and Choice says, one entry
	// per implementation in preference order, why each was or was not
	// chosen ("wasm-build: chosen (node n1)", "x86-image: no node fits: 1
	// does not run container").
	Implementation string   `json:"implementation,omitempty"`
	Choice         []string `json:"choice,omitempty"`
}

// NodeInfo describes a worker node: identity, what it can run and its
// capacity. Capacity is what the node offers to instances; Used what its
// instances take now (measured); Reserved what the desired set asks for.
type NodeInfo struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Arch            string    `json:"arch"`
	Virtualizations []string  `json:"virtualizations"`
	Capacity        Resources `json:"capacity"`
	Reserved        Resources `json:"reserved"`
	// UsedPorts are the host ports ("8080/tcp") that instances placed on
	// the node publish; a second instance cannot publish the same one.
	UsedPorts     []string  `json:"used_ports,omitempty"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryPercent float64   `json:"memory_percent"`
	Address       string    `json:"address,omitempty"`
	Active        bool      `json:"active"`
	LastSeen      time.Time `json:"last_seen,omitzero"`
	// Network is the node's place in the overlay, once its net manager runs.
	Network *NodeNetwork `json:"network,omitempty"`
	// Capabilities the node detected beyond its virtualizations, e.g.
	// "kvm" (unikernels run hardware-accelerated).
	Capabilities []string `json:"capabilities,omitempty"`
	// NotReady says why the node cannot start instances now (its net
	// manager refuses the node's network, or does not answer); empty when
	// it can. Schedulers place nothing on such a node.
	NotReady string `json:"not_ready,omitempty"`
	// Labels are the node's labels (thicket-node --label key=value),
	// which instances' NodeSelector match (sla.CheckLabels).
	Labels map[string]string `json:"labels,omitempty"`
	// Coordinate is the node's network coordinate, from the round trips it
	// measures to its peers (nil until it has measured).
	Coordinate *Coordinate `json:"coordinate,omitempty"`
	// Location is where the node is, as its --location flag says:
	// "lat,long" or a site name (see internal/geo).
	Location string `json:"location,omitempty"`
}

// Coordinate is a network coordinate in the Vivaldi model that Serf and
// Consul use (github.com/hashicorp/serf/coordinate): the estimated round
// trip between two nodes is the Euclidean distance of their Vec plus their
// Heights, corrected by their Adjustments. Every value is in seconds except
// Error, the coordinate's own estimate of its relative error.
type Coordinate struct {
	Vec        []float64 `json:"vec"`
	Error      float64   `json:"error"`
	Adjustment float64   `json:"adjustment"`
	Height     float64   `json:"height"`
}

// MaxCoordinateDims bounds a coordinate's dimensions.
const MaxCoordinateDims = 8

// Valid reports whether c is usable: at most MaxCoordinateDims finite
// dimensions, finite values, no negative height.
func (c *Coordinate) Valid() bool {
	if c == nil || len(c.Vec) == 0 || len(c.Vec) > MaxCoordinateDims {
		return false
	}
	for _, v := range c.Vec {
		if !finite(v) {
			return false
		}
	}
	return finite(c.Error) && finite(c.Adjustment) && finite(c.Height) && c.Height >= 0
}

func finite(f float64) bool { return f-f == 0 }

// SameBut reports whether two descriptions of a node differ at most in
// what changes at every report: usage figures and the last-seen time.
func (n NodeInfo) SameBut(o NodeInfo) bool {
	return n.ID == o.ID && n.Name == o.Name && n.Arch == o.Arch && slices.Equal(n.Virtualizations, o.Virtualizations) &&
		n.Capacity == o.Capacity && n.Reserved == o.Reserved && slices.Equal(n.UsedPorts, o.UsedPorts) &&
		n.Address == o.Address && n.Active == o.Active && SameNetwork(n.Network, o.Network) &&
		slices.Equal(n.Capabilities, o.Capabilities) && n.NotReady == o.NotReady && maps.Equal(n.Labels, o.Labels) && n.Location == o.Location
}

// SameNetwork reports whether two nodes' overlay places are equal (both
// absent counts as equal).
func SameNetwork(a, b *NodeNetwork) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// CapabilityKVM: the node runs unikernels with KVM rather than emulation.
const CapabilityKVM = "kvm"

// NodeNetwork is what peers need to reach a node's instances through the
// overlay: its instance subnet and its VXLAN endpoint.
type NodeNetwork struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id,omitempty"`
	// Subnet is the node's instance subnet, e.g. "10.64.3.0/24".
	Subnet string `json:"subnet"`
	// VTEPMAC is the MAC address of the node's VXLAN device.
	VTEPMAC string `json:"vtep_mac"`
	// PublicIP and PublicPort are where peers send the node's VXLAN
	// traffic (its own address and port, or its NAT's).
	PublicIP   string `json:"public_ip"`
	PublicPort int    `json:"public_port"`
	// ProbePort is the UDP port at PublicIP where the node answers round
	// trip probes (0: it does not).
	ProbePort int `json:"probe_port,omitempty"`
}

// Service routing modes.
const (
	RouteRoundRobin = "rr"      // any instance, round robin
	RouteClosest    = "closest" // same node, else the nearest by round trip (netapi.Config.RTTMS), else same cluster, else any
)

// ServiceRoute maps a service IP to the instances behind it.
type ServiceRoute struct {
	IP        string    `json:"ip"`
	Mode      string    `json:"mode"`
	ServiceID string    `json:"service_id"`
	Backends  []Backend `json:"backends"`
	// Tenant is the service's unit of isolation, an opaque key to the net
	// manager: the user who owns the service, or "user/application id" for
	// an application isolated from its owner's others (a later value within
	// v1; an earlier net manager compares it as any other key). The net
	// manager lets new connections from the instance network reach the
	// service's instances (by instance IP or service IP) only from
	// instances of the same tenant and from the peers below. Absent (a
	// root that predates tenancy): the service's instances are not
	// isolated.
	Tenant string `json:"tenant,omitempty"`
	// AllowUsers are the other tenants whose instances may connect too
	// (a user entry of allow_from also names the user's isolated
	// applications), and AllowServices the ids of other services whose
	// instances may (the SLA's allow_from, resolved by the root).
	AllowUsers    []string `json:"allow_users,omitempty"`
	AllowServices []string `json:"allow_services,omitempty"`
}

// Backend is one running instance behind a service IP.
type Backend struct {
	IP        string `json:"ip"`
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id"`
}

// Network is the overlay state a tier hands down: the peers (other nodes)
// and the service table.
type Network struct {
	Peers    []NodeNetwork  `json:"peers"`
	Services []ServiceRoute `json:"services"`
}

// --- Node ↔ cluster ---

// NodeRegisterRequest is POSTed by a node to the cluster's
// /api/node/register with its join token as "Authorization: Bearer".
type NodeRegisterRequest struct {
	Version string `json:"version"`
	// Name is the node's unique name in the cluster (its hostname by default).
	Name            string    `json:"name"`
	Arch            string    `json:"arch"`
	Virtualizations []string  `json:"virtualizations"`
	Capacity        Resources `json:"capacity"`
	Address         string    `json:"address,omitempty"`
	// Labels are the node's labels (thicket-node --label), as in NodeInfo.
	Labels map[string]string `json:"labels,omitempty"`
	// Subnet is the instance subnet the node was given before, if any: a
	// cluster that lost its store gives it back when it lies in the
	// cluster's blocks and is free, so that running instances keep their
	// addresses.
	Subnet string `json:"subnet,omitempty"`
	// NodeID and Credential (its MQTT password) are what the node got at
	// an earlier registration, if it has them: a registered name is given
	// only to the node that shows its credential; anyone else is refused
	// with 409 (two hosts with one hostname: start one with --name).
	NodeID     string `json:"node_id,omitempty"`
	Credential string `json:"credential,omitempty"`
	// CSRPEM is a certificate request (PEM) for the node's client
	// certificate: its key (ECDSA P-256 or Ed25519) stays in the node's
	// data dir. A cluster that serves TLS answers NodeRegisterResponse.CertPEM;
	// from then on the node must present that identity (renewed through
	// /api/node/certificate) to the broker and the node API. Added within
	// v1; a node before it registers without and keeps password-only MQTT.
	CSRPEM string `json:"csr_pem,omitempty"`
}

// NodeRegisterResponse gives the node its identity and MQTT credentials.
// The node may use only the two topics named here.
type NodeRegisterResponse struct {
	NodeID       string `json:"node_id"`
	MQTTURL      string `json:"mqtt_url"`
	MQTTUsername string `json:"mqtt_username"`
	MQTTPassword string `json:"mqtt_password"`
	DesiredTopic string `json:"desired_topic"`
	ReportTopic  string `json:"report_topic"`
	// ReportInterval is how often the node reports, in milliseconds.
	ReportIntervalMS int64 `json:"report_interval_ms"`
	// MQTTCAPEM is the PEM of the CA(s) that issued the broker's
	// certificate when MQTTURL is mqtts:// (the cluster's own CA for its
	// embedded broker, the operator's for an external one). It arrives
	// over the node API's TLS, which the node verified against the pin in
	// its join token, so trust in the broker starts at that pin. Empty: the
	// broker is trusted by the system's roots (or MQTTURL is plain, for
	// development). Added within v1; a cluster before it sends plain URLs.
	MQTTCAPEM string `json:"mqtt_ca_pem,omitempty"`
	// CertPEM is the node's client certificate for the request's CSRPEM,
	// then the cluster's CA certificate (PEM): subject common name the node
	// id, URI SAN spiffe://thicket/cluster/<cluster>/node/<node id>, short
	// validity. Empty when the node sent no CSR or the cluster serves plain
	// text. Added within v1.
	CertPEM string `json:"cert_pem,omitempty"`
}

// NodeCertificateRequest is POSTed by a node to the cluster's
// /api/node/certificate over TLS with its current (unexpired) client
// certificate, which alone authenticates it, to renew that certificate
// before it expires. Added within v1.
type NodeCertificateRequest struct {
	Version string `json:"version"`
	// CSRPEM is a certificate request (PEM) for the new key.
	CSRPEM string `json:"csr_pem"`
}

// NodeCertificateResponse is the renewed certificate: as
// NodeRegisterResponse.CertPEM, for the identity of the certificate the
// request was made with.
type NodeCertificateResponse struct {
	NodeID  string `json:"node_id"`
	CertPEM string `json:"cert_pem"`
}

// MQTT topics of a node.
func DesiredTopic(nodeID string) string { return "thicket/node/" + nodeID + "/desired" }
func ReportTopic(nodeID string) string  { return "thicket/node/" + nodeID + "/report" }

// NodeDesired is the retained message on a node's desired topic: the full
// set of instances the node should run. Generation grows with every change.
type NodeDesired struct {
	Version    string         `json:"version"`
	Generation int64          `json:"generation"`
	Instances  []InstanceSpec `json:"instances"`
	// Subnet is the node's instance subnet ("" until the cluster has an
	// address block from the root).
	Subnet    string `json:"subnet,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
	// Network lists the overlay peers and the service table.
	Network Network `json:"network"`
	// Removed lists the keys explicitly taken from the node that it may
	// still run: a node stops most of what it runs only when they are
	// listed here (see the engine's hold).
	Removed []string `json:"removed,omitempty"`
}

// NodeReport is published by a node on its report topic every report
// interval and whenever an instance changes state.
type NodeReport struct {
	Version string    `json:"version"`
	NodeID  string    `json:"node_id"`
	Time    time.Time `json:"time"`
	Node    NodeInfo  `json:"node"`
	// Generation is the last desired generation the node has applied.
	Generation int64            `json:"generation"`
	Instances  []InstanceStatus `json:"instances"`
	// Full: Instances holds every instance of the desired set at
	// Generation (a report, not a heartbeat or a first sign of life).
	Full bool `json:"full,omitempty"`
	// Events are what happened to its instances since the last report
	// (at most MaxEvents).
	Events []Event `json:"events,omitempty"`
}

// --- Cluster ↔ root ---

// ClusterRegisterRequest is POSTed by a cluster to the root's
// /api/cluster/register with a join token as "Authorization: Bearer".
type ClusterRegisterRequest struct {
	Version  string `json:"version"`
	Name     string `json:"cluster_name"`
	Location string `json:"cluster_location"`
	// Address and Port where nodes reach this cluster (informational).
	Address string `json:"ip"`
	Port    int    `json:"port"`
	// Credential is the one this cluster got at an earlier registration,
	// if it has one: the root lets a registered name be taken only by the
	// cluster holding its credential (or with a join token an admin scoped
	// to that name), and refuses anyone else with 409.
	Credential string `json:"credential,omitempty"`
	// CSRPEM is a certificate request (PEM) for the key the cluster keeps:
	// the root answers a client certificate for it (CertPEM), and then
	// requires it with every call of this cluster.
	CSRPEM string `json:"csr_pem,omitempty"`
}

// ClusterCertificateRequest renews a cluster's client certificate
// (POST /api/cluster/certificate, with the current certificate and the
// credential): a CSR for a new key.
type ClusterCertificateRequest struct {
	Version string `json:"version"`
	CSRPEM  string `json:"csr_pem"`
}

// ClusterCertificateResponse is the new certificate chain (PEM, the cluster's
// certificate first).
type ClusterCertificateResponse struct {
	CertPEM string `json:"cert_pem"`
}

// ClusterRegisterResponse gives the cluster its id and the credential for
// all later calls ("Authorization: Bearer <credential>").
type ClusterRegisterResponse struct {
	ClusterID  string `json:"cluster_id"`
	Credential string `json:"credential"`
	// Block is the cluster's share of the instance network, e.g.
	// "10.64.0.0/16", from which it gives each node a subnet.
	Block string `json:"block"`
	// CertPEM is the cluster's client certificate chain (PEM) for the key
	// of CSRPEM, if it sent one and the root issues them.
	CertPEM string `json:"cert_pem,omitempty"`
}

// ClusterSync is POSTed by a cluster to the root's /api/cluster/sync every
// sync interval: its nodes and the status of the instances it runs.
//
// A cluster that sets Delta sends only what changed since its last sync the
// root acknowledged (ClusterSyncAck) under Epoch: new or changed nodes and
// statuses (usage figures at a bounded rate), and the ids of nodes that
// left. With an empty Epoch it sends everything. It gets its desired set
// from the watch (GET /api/cluster/desired?delta=1) only. Without Delta
// (clusters of earlier versions) every sync carries everything and is
// answered with the full desired set.
type ClusterSync struct {
	Version   string           `json:"version"`
	Nodes     []NodeInfo       `json:"nodes"`
	Instances []InstanceStatus `json:"instances"`
	// Generation is the last desired generation the cluster has applied.
	Generation int64    `json:"generation"`
	Delta      bool     `json:"delta,omitempty"`
	Epoch      string   `json:"epoch,omitempty"`
	GoneNodes  []string `json:"gone_nodes,omitempty"`
	// WantBlocks is how many more address blocks the cluster needs: its
	// blocks are full and nodes wait for a subnet.
	WantBlocks int `json:"want_blocks,omitempty"`
	// Events are what happened to its instances, on its nodes and in the
	// cluster, since the last sync the root took (at most MaxEvents).
	Events []Event `json:"events,omitempty"`
	// NodeTokenUses are the single-use node tokens this cluster admitted a
	// node with that the root does not list as used yet (sent until it
	// does).
	NodeTokenUses []NodeTokenUse `json:"node_token_uses,omitempty"`
	// CAPin is the pin of the cluster's CA (pki), which node tokens the
	// root prints carry; empty for a plain-text cluster.
	CAPin string `json:"ca_pin,omitempty"`
	// Coordinate is the cluster's network coordinate: the centroid of its
	// nodes' (nil when none has measured). Sent with every sync that
	// carries usage.
	Coordinate *Coordinate `json:"coordinate,omitempty"`
	// Location is the cluster's --location ("lat,long" or a site name),
	// which may change after registration.
	Location string `json:"location,omitempty"`
}

// Event is one thing that happened to an instance, told by the tier that
// knows it: "node" (pulling, started, exited with code 3, restarting in 4s),
// "cluster" (placed on node X, node X lost, replaced) or "root".
type Event struct {
	Key     string    `json:"key"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Message string    `json:"message"`
}

// Bounds of events: per message, and the length of one's text.
const (
	MaxEvents       = 512
	MaxEventMessage = 300
)

// Bounded is e with its message cut to MaxEventMessage bytes (at a rune
// boundary).
func (e Event) Bounded() Event {
	if len(e.Message) > MaxEventMessage {
		m := e.Message[:MaxEventMessage]
		for len(m) > 0 && !utf8.ValidString(m) {
			m = m[:len(m)-1]
		}
		e.Message = m
	}
	return e
}

// AppendEvents appends evs to q, keeping the newest max (a queue of events
// waiting to go up: when a tier above is away for long, the oldest go).
func AppendEvents(q []Event, max int, evs ...Event) []Event {
	q = append(q, evs...)
	if over := len(q) - max; over > 0 {
		q = append(q[:0], q[over:]...)
	}
	return q
}

// ClusterSyncAck answers a delta sync.
type ClusterSyncAck struct {
	Version string `json:"version"`
	// Epoch names the root process that took the sync; the next delta is
	// relative to it.
	Epoch string `json:"epoch"`
	// Resync: the root does not hold the state the delta was relative to (it
	// restarted): send everything next time.
	Resync bool `json:"resync,omitempty"`
	// SyncIntervalMS is how often the root wants the cluster to sync.
	SyncIntervalMS int64 `json:"sync_interval_ms"`
}

// ClusterDesired is a cluster's desired set: the full set of instances it
// should run, or (Delta) what changed after the generation the cluster asked
// with: new and changed specs in Instances, keys that left in Removed, and the
// network only if it changed (else NetworkUnchanged). Generations are
// comparable only within one Epoch. A full set's Removed lists the removals
// the root still remembers: a cluster holds, rather than stops, most of its
// instances when a full set lacks them without listing them there.
type ClusterDesired struct {
	Version    string         `json:"version"`
	Generation int64          `json:"generation"`
	Epoch      string         `json:"epoch,omitempty"`
	Delta      bool           `json:"delta,omitempty"`
	Instances  []InstanceSpec `json:"instances"`
	Removed    []string       `json:"removed,omitempty"`
	// NetworkUnchanged (deltas only): Network is empty; keep the last one.
	NetworkUnchanged bool `json:"network_unchanged,omitempty"`
	// SyncIntervalMS is how often the root wants the cluster to sync.
	SyncIntervalMS int64 `json:"sync_interval_ms"`
	// Block is the cluster's first share of the instance network; Blocks
	// all of them (a cluster gets more as its nodes fill them).
	Block  string   `json:"block"`
	Blocks []string `json:"blocks,omitempty"`
	// Network holds the nodes of the other clusters and the global service
	// table.
	Network Network `json:"network"`
	// DeletedNodes are the ids of the cluster's nodes an admin deleted
	// (full sets and deltas alike carry all the root remembers): the
	// cluster revokes their credentials, forgets them and places their
	// instances elsewhere. Came later within v1: an earlier cluster
	// ignores it (its nodes stay until it is deleted).
	DeletedNodes []string `json:"deleted_nodes,omitempty"`
	// NodeTokens are all the node join tokens the root issued for this
	// cluster and has not revoked (full sets and deltas alike): the
	// cluster admits nodes by them besides its own file token. Absent:
	// none (a revoked token is one that is no longer listed).
	NodeTokens []NodeToken `json:"node_tokens,omitempty"`
	// CordonedNodes are the ids of the cluster's nodes an admin cordoned:
	// nothing new is placed on them; what runs there stays. DrainedNodes
	// are those an admin drains (cordoned too): the cluster moves their
	// instances to its other nodes, one at a time, each only when another
	// node has room. Full sets and deltas alike carry them all. Came later
	// within v1: an earlier cluster ignores them (it places as before).
	CordonedNodes []string `json:"cordoned_nodes,omitempty"`
	DrainedNodes  []string `json:"drained_nodes,omitempty"`
}

// NamesService reports whether a spec has a latency constraint whose target
// is a service (the schedulers then need to know what runs where).
func (s *InstanceSpec) NamesService() bool {
	for _, c := range s.Constraints {
		if c.Type == "latency" && c.Service != "" {
			return true
		}
	}
	return false
}

// SameCoordinate reports whether two coordinates are equal (both absent
// counts as equal).
func SameCoordinate(a, b *Coordinate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Vec, b.Vec) && a.Error == b.Error && a.Adjustment == b.Adjustment && a.Height == b.Height
}
