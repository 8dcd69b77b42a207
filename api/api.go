// Package api is the one Go client of the root's public REST API: its
// documents and a Client that calls it (NewClient), used by the CLI, the
// benchmarks and the test suites alike. It imports only the standard
// library, so that any program can import it alone.
//
// Field names and JSON types of the documents follow the reference
// system's wire format so that existing clients keep working; Thicket's own
// fields sit beside them. The bson tags let the root store the same
// documents without a second set of types.
package api

import (
	"sort"
	"strconv"
	"time"
)

// Version of this API's documents.
const Version = "v1"

// Roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Statuses. StatusCreated is a service's status while it has no instance
// and StatusDegraded a service's or application's while some of its
// instances run and others that should do not; the others are instance
// statuses, which the tiers report and the API shows as they are (a test in
// the root keeps them equal to the tiers' own).
const (
	StatusCreated    = "CREATED"
	StatusDegraded   = "DEGRADED"
	StatusRequested  = "REQUESTED"
	StatusScheduled  = "SCHEDULED"
	StatusCreating   = "CREATING"
	StatusRunning    = "RUNNING"
	StatusCompleted  = "COMPLETED"
	StatusFailed     = "FAILED"
	StatusNoCapacity = "NO_CAPACITY"
	StatusLost       = "LOST"
	// StatusUnknown: the instance's node or cluster is silent; it may
	// still run there.
	StatusUnknown = "UNKNOWN"
	// StatusBackoff: the instance exited (a crash, or the end of a
	// service that should keep running) and its node starts it again at
	// Instance.RestartAt. It reads as FAILED to tiers that predate it.
	StatusBackoff = "BACKOFF"
)

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Field is the JSON path of the offending input field, when there is one.
	Field string `json:"field,omitempty"`
}

// LoginRequest is the body of POST /api/auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Tokens answers a login or a refresh.
type Tokens struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int    `json:"expires_in"`
	Username  string `json:"username"`
	Role      string `json:"role"`
}

// User is a user account as the API shows it (never with its password hash).
type User struct {
	Username  string    `json:"username" bson:"_id"`
	Role      string    `json:"role" bson:"role"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	// Quota is the user's quota as an admin set it; absent: no quota.
	Quota *Quota `json:"quota,omitempty" bson:"quota,omitempty"`
}

// Quota bounds what a user's services may ask for in all: instances, CPU
// in thousandths of a core (an SLA's vcpus × 1000 per instance) and memory
// in MiB, counted over the instances the user wants (every instance but
// the one-shot ones that completed) times their service's resources. A
// zero field is no bound. It is the body of PUT /api/users/{name}/quota.
type Quota struct {
	Instances int   `json:"instances" bson:"instances"`
	MilliCPU  int64 `json:"milli_cpu" bson:"milli_cpu"`
	MemoryMB  int64 `json:"memory_mb" bson:"memory_mb"`
}

// QuotaStatus answers GET /api/quota and /api/users/{name}/quota: a
// user's quota and what the user's instances take of it.
type QuotaStatus struct {
	Username string `json:"username"`
	Quota    Quota  `json:"quota"`
	Used     Quota  `json:"used"`
}

// NewUser is the body of POST /api/users/.
type NewUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// PasswordChange is the body of POST /api/user/{username}, by which users
// change their own password (the reference's field names).
type PasswordChange struct {
	OldPassword string `json:"oldPassword"`
	NewPassword string `json:"newPassword"`
}

// UserUpdate is the body of PUT /api/user/{username}, by which an admin
// resets a password or changes a role. Empty fields are left as they are.
type UserUpdate struct {
	Password string `json:"password"`
	Role     string `json:"role"`
}

// Application is a stored application.
type Application struct {
	ApplicationID        string `json:"applicationID" bson:"_id"`
	ApplicationName      string `json:"application_name" bson:"application_name"`
	ApplicationNamespace string `json:"application_namespace" bson:"application_namespace"`
	ApplicationDesc      string `json:"application_desc" bson:"application_desc"`
	UserID               string `json:"userId" bson:"userId"`
	// Isolation is "application" for an application isolated from its
	// owner's other applications too; absent: isolated as its owner's.
	Isolation string `json:"isolation,omitempty" bson:"isolation,omitempty"`
	// Microservices lists the ids of the application's services.
	Microservices []string  `json:"microservices" bson:"microservices"`
	CreatedAt     time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt     time.Time `json:"updated_at" bson:"updated_at"`
	// Status summarizes the instances of all its services as Summarize
	// does (RUNNING, DEGRADED, ...), with counts as detail; Running and
	// Desired count its running instances and those that should run.
	Status       string `json:"status,omitempty" bson:"-"`
	StatusDetail string `json:"status_detail,omitempty" bson:"-"`
	Running      int    `json:"running_instances" bson:"-"`
	Desired      int    `json:"desired_instances" bson:"-"`
}

// ApplicationUpdate is the body of PUT /api/application/{id}: the fields
// that may change. Empty fields keep their value.
type ApplicationUpdate struct {
	ApplicationName      string  `json:"application_name"`
	ApplicationNamespace string  `json:"application_namespace"`
	ApplicationDesc      *string `json:"application_desc"`
}

// Constraint mirrors sla.Constraint in the stored service.
type Constraint struct {
	Type    string   `json:"type" bson:"type"`
	Node    string   `json:"node,omitempty" bson:"node,omitempty"`
	Cluster string   `json:"cluster,omitempty" bson:"cluster,omitempty"`
	Allowed []string `json:"allowed,omitempty" bson:"allowed,omitempty"`
	// Latency and geo constraints (see the README's "Latency and location").
	Area            string  `json:"area,omitempty" bson:"area,omitempty"`
	Location        string  `json:"location,omitempty" bson:"location,omitempty"`
	Threshold       float64 `json:"threshold,omitempty" bson:"threshold,omitempty"`
	Rigidness       float64 `json:"rigidness,omitempty" bson:"rigidness,omitempty"`
	ConvergenceTime int     `json:"convergence_time,omitempty" bson:"convergence_time,omitempty"`
	Service         string  `json:"service,omitempty" bson:"service,omitempty"`
}

// Service is a stored microservice with its instances.
type Service struct {
	MicroserviceID        string       `json:"microserviceID" bson:"_id"`
	MicroserviceName      string       `json:"microservice_name" bson:"microservice_name"`
	MicroserviceNamespace string       `json:"microservice_namespace" bson:"microservice_namespace"`
	ApplicationID         string       `json:"applicationID" bson:"applicationID"`
	AppName               string       `json:"app_name" bson:"app_name"`
	AppNamespace          string       `json:"app_ns" bson:"app_ns"`
	UserID                string       `json:"userId" bson:"userId"`
	Virtualization        string       `json:"virtualization" bson:"virtualization"`
	Code                  string       `json:"code" bson:"code"`
	Arch                  []string     `json:"arch" bson:"arch"`
	Cmd                   []string     `json:"cmd" bson:"cmd"`
	Environment           []string     `json:"environment" bson:"environment"`
	Port                  string       `json:"port" bson:"port"`
	RRIP                  string       `json:"RR_ip" bson:"RR_ip"`
	ClosestIP             string       `json:"closest_ip,omitempty" bson:"closest_ip,omitempty"`
	Memory                int          `json:"memory" bson:"memory"`
	VCPUs                 int          `json:"vcpus" bson:"vcpus"`
	VGPUs                 int          `json:"vgpus" bson:"vgpus"`
	VTPUs                 int          `json:"vtpus" bson:"vtpus"`
	BandwidthIn           int          `json:"bandwidth_in" bson:"bandwidth_in"`
	BandwidthOut          int          `json:"bandwidth_out" bson:"bandwidth_out"`
	Storage               int          `json:"storage" bson:"storage"`
	AddedFiles            []string     `json:"added_files" bson:"added_files"`
	Constraints           []Constraint `json:"constraints" bson:"constraints"`
	OneShot               bool         `json:"one_shot" bson:"one_shot"`
	// Disconnect is the service's disconnect policy with its defaults
	// filled in (the SLA's disconnect field).
	Disconnect Disconnect `json:"disconnect" bson:"disconnect"`
	// Security is what the service's containers get beyond the default
	// sandbox (the SLA's security field); absent: the defaults.
	Security *Security `json:"security,omitempty" bson:"security,omitempty"`
	// Implementations are, for an overloaded service (an OAM base
	// component, an SLA microservice with alternatives), every way to run
	// it in preference order, the first being the fields above; each
	// instance shows the one chosen. Absent: one.
	Implementations []Implementation `json:"implementations,omitempty" bson:"implementations,omitempty"`
	// NodeSelector lists the labels a node must have to run its
	// instances (the SLA's node_selector, an OAM placement trait's
	// labels).
	NodeSelector map[string]string `json:"node_selector,omitempty" bson:"node_selector,omitempty"`
	// JobsCount is the length of the service's job list (collaborative
	// workloads; GET /api/service/{id}/jobs says who owns which); absent:
	// none.
	JobsCount int `json:"jobs_count,omitempty" bson:"jobs_count,omitempty"`
	// AllowFrom names the peers outside the owner's instances that may
	// connect to the service's instances over the overlay (the SLA's
	// allow_from); absent: only the owner's instances may.
	AllowFrom []string `json:"allow_from,omitempty" bson:"allow_from,omitempty"`
	// Completions, BackoffLimit and Succeeded: of an indexed one-shot
	// service (the SLA's completions), its index count, the retries of a
	// FAILED index, and how many indices are COMPLETED.
	Completions  int    `json:"completions,omitempty" bson:"completions,omitempty"`
	BackoffLimit *int   `json:"backoff_limit,omitempty" bson:"backoff_limit,omitempty"`
	Succeeded    int    `json:"succeeded,omitempty" bson:"succeeded,omitempty"`
	Status       string `json:"status" bson:"status"`
	StatusDetail string `json:"status_detail" bson:"status_detail"`
	// Running counts its RUNNING instances, Desired those that should run
	// (every instance but a finished one-shot's).
	Running      int        `json:"running_instances" bson:"running_instances"`
	Desired      int        `json:"desired_instances" bson:"desired_instances"`
	InstanceList []Instance `json:"instance_list" bson:"instance_list"`
	// NextInstance is the number the next instance gets; numbers are never reused.
	NextInstance int `json:"next_instance" bson:"next_instance"`
	// Rollout is the edit being rolled out (PUT /api/service/{id}), if any.
	Rollout   *Rollout  `json:"rollout,omitempty" bson:"rollout,omitempty"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt time.Time `json:"updated_at" bson:"updated_at"`
	// Rev counts changes of the document, for optimistic concurrency.
	Rev int64 `json:"-" bson:"rev"`
}

// Instance is one running (or requested) copy of a service.
type Instance struct {
	InstanceNumber  int    `json:"instance_number" bson:"instance_number"`
	Status          string `json:"status" bson:"status"`
	StatusDetail    string `json:"status_detail" bson:"status_detail"`
	ClusterID       string `json:"cluster_id" bson:"cluster_id"`
	ClusterLocation string `json:"cluster_location" bson:"cluster_location"`
	WorkerID        string `json:"worker_id" bson:"worker_id"`
	HostIP          string `json:"host_ip" bson:"host_ip"`
	HostPort        int    `json:"host_port" bson:"host_port"`
	PublicIP        string `json:"publicip" bson:"publicip"`
	Logs            string `json:"logs" bson:"logs"`
	CPUPercent      string `json:"cpu_percent" bson:"cpu_percent"`
	MemoryPercent   string `json:"memory_percent" bson:"memory_percent"`
	Disk            string `json:"disk" bson:"disk"`
	// Thicket's own fields.
	InstanceIP string `json:"instance_ip" bson:"instance_ip"`
	NodeName   string `json:"node_name" bson:"node_name"`
	// Restarts counts how often the node restarted the instance after it
	// exited.
	Restarts int `json:"restarts" bson:"restarts"`
	// RestartAt is when a BACKOFF instance's node starts it again.
	RestartAt time.Time `json:"restart_at,omitzero" bson:"restart_at,omitempty"`
	// Implementation names the implementation of an overloaded service
	// (an OAM base component with several ComponentDefinitions, or an SLA
	// microservice with alternatives) its cluster chose for the instance;
	// ImplementationChoice says, one line per implementation in preference
	// order, why each was or was not chosen.
	Implementation       string   `json:"implementation,omitempty" bson:"implementation,omitempty"`
	ImplementationChoice []string `json:"implementation_choice,omitempty" bson:"implementation_choice,omitempty"`
	// Outdated: the instance runs the service's spec from before an edit
	// and is replaced by the rollout.
	Outdated  bool      `json:"outdated,omitempty" bson:"outdated,omitempty"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt time.Time `json:"updated_at" bson:"updated_at"`
}

// Implementation is one implementation of an overloaded service.
type Implementation struct {
	Name           string   `json:"name" bson:"name"`
	Virtualization string   `json:"virtualization" bson:"virtualization"`
	Code           string   `json:"code" bson:"code"`
	Arch           []string `json:"arch,omitempty" bson:"arch,omitempty"`
	Cmd            []string `json:"cmd,omitempty" bson:"cmd,omitempty"`
	MilliCPU       int64    `json:"milli_cpu" bson:"milli_cpu"`
	MemoryMB       int64    `json:"memory_mb" bson:"memory_mb"`
}

// Cluster is a registered cluster as GET /api/clusters/ shows it.
type Cluster struct {
	ID              string   `json:"_id" bson:"_id"`
	ClusterName     string   `json:"cluster_name" bson:"cluster_name"`
	IP              string   `json:"ip" bson:"ip"`
	Port            int      `json:"port" bson:"port"`
	ClusterLocation string   `json:"cluster_location" bson:"cluster_location"`
	Active          bool     `json:"active" bson:"active"`
	ActiveNodes     int      `json:"active_nodes" bson:"active_nodes"`
	TotalCPUCores   int      `json:"total_cpu_cores" bson:"total_cpu_cores"`
	VCPUs           int      `json:"vcpus" bson:"vcpus"`
	VGPUs           int      `json:"vgpus" bson:"vgpus"`
	MemoryInMB      int      `json:"memory_in_mb" bson:"memory_in_mb"`
	VRAM            int      `json:"vram" bson:"vram"`
	CPUPercent      float64  `json:"cpu_percent" bson:"cpu_percent"`
	MemoryPercent   float64  `json:"memory_percent" bson:"memory_percent"`
	Virtualization  []string `json:"virtualization" bson:"virtualization"`
	// Nodes are the cluster's worker nodes, each with its own capacity:
	// a cluster is not one big node.
	Nodes    []Node    `json:"nodes" bson:"nodes"`
	LastSeen time.Time `json:"last_seen" bson:"last_seen"`
	// Capacity and reservations summed over its active nodes, in
	// thousandths of a core and MiB (see Node).
	MilliCPU         int64 `json:"milli_cpu" bson:"-"`
	ReservedMilliCPU int64 `json:"reserved_milli_cpu" bson:"-"`
	ReservedMemoryMB int64 `json:"reserved_memory_in_mb" bson:"-"`
	// Coordinate is the centroid of its nodes' network coordinates.
	Coordinate *Coordinate `json:"coordinate,omitempty" bson:"-"`
}

// Node is one worker node of a cluster.
type Node struct {
	ID             string   `json:"id" bson:"id"`
	Name           string   `json:"name" bson:"name"`
	Arch           string   `json:"arch" bson:"arch"`
	CPUCores       int      `json:"cpu_cores" bson:"cpu_cores"`
	MemoryInMB     int      `json:"memory_in_mb" bson:"memory_in_mb"`
	VGPUs          int      `json:"vgpus" bson:"vgpus"`
	CPUPercent     float64  `json:"cpu_percent" bson:"cpu_percent"`
	MemoryPercent  float64  `json:"memory_percent" bson:"memory_percent"`
	Virtualization []string `json:"virtualization" bson:"virtualization"`
	Active         bool     `json:"active" bson:"active"`
	// MilliCPU is its CPU capacity in thousandths of a core; the reserved
	// figures are what the instances placed on it ask for (what placement
	// counts: a node is full when they reach its capacity, however idle
	// its CPU is), CPUPercent and MemoryPercent what is used now.
	MilliCPU         int64 `json:"milli_cpu" bson:"-"`
	ReservedMilliCPU int64 `json:"reserved_milli_cpu" bson:"-"`
	ReservedMemoryMB int64 `json:"reserved_memory_in_mb" bson:"-"`
	ReservedVGPUs    int64 `json:"reserved_vgpus" bson:"-"`
	// LastSeen is when its cluster last heard from it: the usage figures
	// of an inactive node are as old as that.
	LastSeen time.Time `json:"last_seen,omitzero" bson:"-"`
	// Address is where others reach it (admins only, as its name).
	Address string `json:"address,omitempty" bson:"-"`
	// Labels are its labels (thicket-node --label), which services' node
	// selectors match.
	Labels map[string]string `json:"labels,omitempty" bson:"-"`
	// Location is where it is ("lat,long" or a site name; its own
	// --location, else its cluster's); Coordinate its network coordinate,
	// measured by its round-trip probes (absent until measured).
	Location   string      `json:"location,omitempty" bson:"-"`
	Coordinate *Coordinate `json:"coordinate,omitempty" bson:"-"`
	// Mode is "cordoned" (an admin cordoned it: nothing new is placed on
	// it), "draining" (cordoned, and its instances move to the cluster's
	// other nodes, one at a time, each new copy running before the old one
	// stops) or "drained" (drained, and no instance is left on it); empty:
	// it takes placements.
	Mode string `json:"mode,omitempty" bson:"-"`
}

// Coordinate is a network coordinate in the Vivaldi model of Serf and
// Consul: the estimated round trip between two is the Euclidean distance
// of their Vec plus both Heights, plus both Adjustments when that stays
// positive. Values are in seconds; Error is the coordinate's own estimate
// of its relative error. GET /api/rtt does the arithmetic.
type Coordinate struct {
	Vec        []float64 `json:"vec"`
	Error      float64   `json:"error"`
	Adjustment float64   `json:"adjustment"`
	Height     float64   `json:"height"`
}

// RTT is GET /api/rtt's answer: the estimated round trip between two
// nodes or clusters (a cluster's coordinate is its nodes' centroid), and
// their distance when both have a "lat,long" location.
type RTT struct {
	From       string      `json:"from"`
	To         string      `json:"to"`
	RTTMS      float64     `json:"rtt_ms"`
	DistanceKM *float64    `json:"distance_km,omitempty"`
	FromCoord  *Coordinate `json:"from_coordinate"`
	ToCoord    *Coordinate `json:"to_coordinate"`
}

// Disconnect is what happens to a service's instances while the node or
// cluster running them is silent (see the SLA's disconnect field).
type Disconnect struct {
	Replace      bool   `json:"replace" bson:"replace"`
	ReplaceAfter int    `json:"replace_after" bson:"replace_after"`
	StopAfter    int    `json:"stop_after" bson:"stop_after"`
	Reconcile    string `json:"reconcile" bson:"reconcile"`
}

// Security is a container service's sandbox beyond the defaults (see the
// SLA's security field).
type Security struct {
	Privileged bool     `json:"privileged,omitempty" bson:"privileged,omitempty"`
	CapAdd     []string `json:"cap_add,omitempty" bson:"cap_add,omitempty"`
	PidsLimit  int64    `json:"pids_limit,omitempty" bson:"pids_limit,omitempty"`
	// Compat32: the container may make 32-bit system calls.
	Compat32 bool `json:"compat32,omitempty" bson:"compat32,omitempty"`
}

// statusOrder ranks instance statuses for a service's summary: the most
// advanced live state wins.
var statusOrder = []string{
	StatusRunning, StatusCreating, StatusScheduled, StatusRequested,
	StatusUnknown, StatusNoCapacity, StatusLost, StatusBackoff, StatusFailed, StatusCompleted,
}

// Count counts the running instances and those that should run: every
// instance but a finished one (COMPLETED, or FAILED of a one-shot service).
func Count(instances []Instance, oneShot bool) (running, desired int) {
	for _, in := range instances {
		switch {
		case in.Status == StatusCompleted, oneShot && in.Status == StatusFailed:
			continue
		case in.Status == StatusRunning:
			running++
		}
		desired++
	}
	return running, desired
}

// Summarize derives a service's status and status detail from its
// instances: CREATED with none, DEGRADED while some run and others that
// should do not ("1 of 2 running: 1 RUNNING, 1 NO_CAPACITY"), else the most
// advanced instance status, with a count per status as detail
// ("2 RUNNING, 1 COMPLETED").
func Summarize(instances []Instance) (status, detail string) {
	return summarize(instances, false)
}

// SummarizeService is Summarize for the instances of a service that is
// one-shot or not: a one-shot service's FAILED instances ran and are done.
func SummarizeService(instances []Instance, oneShot bool) (status, detail string) {
	return summarize(instances, oneShot)
}

func summarize(instances []Instance, oneShot bool) (status, detail string) {
	if len(instances) == 0 {
		return StatusCreated, "no instances"
	}
	count := map[string]int{}
	for _, in := range instances {
		count[in.Status]++
	}
	for _, st := range statusOrder {
		if n := count[st]; n > 0 {
			if status == "" {
				status = st
			}
			if detail != "" {
				detail += ", "
			}
			detail += strconv.Itoa(n) + " " + st
			delete(count, st)
		}
	}
	rest := make([]string, 0, len(count)) // statuses outside the known set
	for st := range count {
		rest = append(rest, st)
	}
	sort.Strings(rest)
	for _, st := range rest {
		n := count[st]
		if status == "" {
			status = st
		}
		if detail != "" {
			detail += ", "
		}
		detail += strconv.Itoa(n) + " " + st
	}
	if running, desired := Count(instances, oneShot); status == StatusRunning && running < desired {
		status = StatusDegraded
		detail = strconv.Itoa(running) + " of " + strconv.Itoa(desired) + " running: " + detail
	}
	return status, detail
}
