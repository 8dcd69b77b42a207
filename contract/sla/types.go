// Package sla defines the SLA v2.0 deployment descriptor, the public contract
// through which users describe applications to Thicket, and its validator.
//
// The JSON field names follow the reference format exactly so that existing
// descriptors work unchanged.
package sla

// Version is the only SLA version this package accepts.
const Version = "v2.0"

// Virtualization kinds a microservice may ask for.
const (
	VirtContainer = "container"
	VirtUnikernel = "unikernel"
	VirtWasm      = "wasm"
)

// Constraint types.
const (
	ConstraintDirect   = "direct"
	ConstraintClusters = "clusters"
	ConstraintLatency  = "latency"
	ConstraintGeo      = "geo"
)

// SLA is a complete deployment descriptor: one or more applications.
type SLA struct {
	SLAVersion   string        `json:"sla_version"`
	CustomerID   string        `json:"customerID"`
	Applications []Application `json:"applications"`
}

// Application groups microservices under one name and namespace.
type Application struct {
	ApplicationID        string `json:"applicationID"`
	ApplicationName      string `json:"application_name"`
	ApplicationNamespace string `json:"application_namespace"`
	ApplicationDesc      string `json:"application_desc"`
	// Isolation is the application's unit of tenant isolation (a Thicket
	// extension; README: Tenancy): IsolationUser (or empty, the default),
	// or IsolationApplication to be isolated from the owner's other
	// applications too.
	Isolation     string         `json:"isolation,omitempty"`
	Microservices []Microservice `json:"microservices"`
}

// Microservice describes one deployable service and the resources each of its
// instances needs.
type Microservice struct {
	MicroserviceID        string       `json:"microserviceID"`
	MicroserviceName      string       `json:"microservice_name"`
	MicroserviceNamespace string       `json:"microservice_namespace"`
	Virtualization        string       `json:"virtualization"`
	Cmd                   []string     `json:"cmd"`
	Environment           []string     `json:"environment"`
	Memory                int          `json:"memory"` // MB
	VCPUs                 int          `json:"vcpus"`
	VGPUs                 int          `json:"vgpus"`
	VTPUs                 int          `json:"vtpus"`
	BandwidthIn           int          `json:"bandwidth_in"`
	BandwidthOut          int          `json:"bandwidth_out"`
	Storage               int          `json:"storage"` // MB
	Code                  string       `json:"code"`
	Arch                  []string     `json:"arch,omitempty"`
	State                 string       `json:"state"`
	Port                  string       `json:"port"`
	Addresses             *Addresses   `json:"addresses,omitempty"`
	AddedFiles            []string     `json:"added_files"`
	Constraints           []Constraint `json:"constraints"`
	OneShot               bool         `json:"one_shot,omitempty"`
	// Completions makes a one_shot service an indexed job (a Thicket
	// extension, as a Kubernetes Indexed Job): its instances 0..N-1 are
	// created with it and each must end COMPLETED once; a FAILED one is
	// retried on its node up to BackoffLimit times (nil:
	// DefaultBackoffLimit). See completions.go.
	Completions  int  `json:"completions,omitempty"`
	BackoffLimit *int `json:"backoff_limit,omitempty"`
	// Disconnect is what happens to the service's instances while the node
	// or cluster running them is silent (a Thicket extension).
	Disconnect *Disconnect `json:"disconnect,omitempty"`
	// Jobs is the service's job list (collaborative workloads, a Thicket
	// extension): each job is owned by exactly one of its instances at a
	// time. JobsLease is how long, in seconds, an instance cut off from
	// its cluster keeps its jobs (0: DefaultJobsLease). See jobs.go.
	Jobs      []string `json:"jobs,omitempty"`
	JobsLease int      `json:"jobs_lease_s,omitempty"`
	// Security widens or narrows a container's sandbox (a Thicket
	// extension): see Security.
	Security *Security `json:"security,omitempty"`
	// Alternatives are other implementations of the microservice, in
	// preference order after its own, which ImplementationName names (a
	// Thicket extension: see Implementation).
	Alternatives       []Implementation `json:"alternatives,omitempty"`
	ImplementationName string           `json:"implementation_name,omitempty"`
	// NodeSelector lists node labels (key: value) a node must all have to
	// run the microservice's instances (a Thicket extension; labels.go).
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// AllowFrom names who else may open connections to the service's
	// instances and service IPs over the overlay (a Thicket extension; see
	// tenancy.go): by default only instances of the same user may.
	AllowFrom []string `json:"allow_from,omitempty"`
}

// Reconcile choices of a disconnect policy: which copy of an instance
// survives when a silent node or cluster comes back still running it and a
// replacement was placed meanwhile.
const (
	KeepOriginal    = "keep_original"
	KeepReplacement = "keep_replacement"
)

// Disconnect is a microservice's policy for silent nodes and clusters,
// modelled on Nomad's disconnect block. An instance on a node or cluster
// declared lost becomes UNKNOWN, not deleted:
//
//   - Replace: whether a replacement is placed elsewhere while it is
//     UNKNOWN (default true; false for one_shot services, which run at most
//     once and may not set it);
//   - ReplaceAfter: seconds it stays UNKNOWN before that (default 0: as
//     soon as the tier declares its node or cluster lost);
//   - StopAfter: seconds after which a node cut off from its cluster's
//     broker stops its copy (default 0: it keeps running);
//   - Reconcile: which copy survives when the silent side returns with its
//     copy running and a replacement exists: keep_original (default: the
//     copy that ran through the partition) or keep_replacement.
type Disconnect struct {
	Replace      *bool  `json:"replace,omitempty"`
	ReplaceAfter int    `json:"replace_after,omitempty"`
	StopAfter    int    `json:"stop_after,omitempty"`
	Reconcile    string `json:"reconcile,omitempty"`
}

// maxDisconnectSeconds bounds replace_after and stop_after (a week).
const maxDisconnectSeconds = 7 * 24 * 3600

// Policy returns the disconnect policy of a microservice with the defaults
// filled in: replace (unless one-shot), at once, never stop the cut-off
// copy, keep the original.
func (m *Microservice) Policy() (replace bool, replaceAfter, stopAfter int, reconcile string) {
	replace, reconcile = !m.OneShot, KeepOriginal
	if d := m.Disconnect; d != nil {
		if d.Replace != nil {
			replace = *d.Replace
		}
		replaceAfter, stopAfter = d.ReplaceAfter, d.StopAfter
		if d.Reconcile != "" {
			reconcile = d.Reconcile
		}
	}
	return replace, replaceAfter, stopAfter, reconcile
}

// Addresses are the service IPs a microservice asks for. Both must lie in
// ServiceNetwork.
type Addresses struct {
	RRIP      string `json:"rr_ip,omitempty"`
	ClosestIP string `json:"closest_ip,omitempty"`
}

// Constraint restricts where instances of a microservice may be placed.
//
// type "direct": Cluster names the cluster, Node an optional list of node
// names separated by ';'. type "clusters": Allowed lists the clusters.
//
// type "latency" (the reference SLA's field names): the estimated round
// trip from the instance's node to a target must be at most Threshold
// milliseconds. The target is the nodes located at site Area (the
// reference's "area"), or (Thicket extensions) the node named Node
// (in Cluster, if given), the nodes of Cluster, or the nodes running
// instances of Service, a microservice of the same application
// (connectivity between microservices).
//
// type "geo": the instance's node (or, without a location of its own, its
// cluster) must be within Threshold km of Location, "lat,long"; a Location
// that names a site asks for a node at that site.
//
// Rigidness and ConvergenceTime are the reference's fields, accepted and
// kept; Thicket treats every latency and geo constraint as hard.
type Constraint struct {
	Type            string   `json:"type"`
	Node            string   `json:"node,omitempty"`
	Cluster         string   `json:"cluster,omitempty"`
	Allowed         []string `json:"allowed,omitempty"`
	Area            string   `json:"area,omitempty"`
	Location        string   `json:"location,omitempty"`
	Threshold       float64  `json:"threshold,omitempty"`
	Rigidness       float64  `json:"rigidness,omitempty"`
	ConvergenceTime int      `json:"convergence_time,omitempty"`
	Service         string   `json:"service,omitempty"`
}

// PortMapping is one entry of a microservice's port field.
type PortMapping struct {
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}
