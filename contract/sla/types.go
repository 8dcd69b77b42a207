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
)

// SLA is a complete deployment descriptor: one or more applications.
type SLA struct {
	SLAVersion   string        `json:"sla_version"`
	CustomerID   string        `json:"customerID"`
	Applications []Application `json:"applications"`
}

// Application groups microservices under one name and namespace.
type Application struct {
	ApplicationID        string         `json:"applicationID"`
	ApplicationName      string         `json:"application_name"`
	ApplicationNamespace string         `json:"application_namespace"`
	ApplicationDesc      string         `json:"application_desc"`
	Microservices        []Microservice `json:"microservices"`
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
type Constraint struct {
	Type    string   `json:"type"`
	Node    string   `json:"node,omitempty"`
	Cluster string   `json:"cluster,omitempty"`
	Allowed []string `json:"allowed,omitempty"`
}

// PortMapping is one entry of a microservice's port field.
type PortMapping struct {
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}
