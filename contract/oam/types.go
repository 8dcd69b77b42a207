// Package oam reads Open Application Model manifests (OAM v0.3,
// apiVersion core.oam.dev/v1beta1, kind Application, as KubeVela writes
// them) and compiles them into the SLA model Thicket deploys.
//
// Three layers are kept apart: the manifest as the user wrote it (YAML or
// JSON text, stored as is), the typed Application that Parse makes of it
// (every field checked, unknown ones refused), and the sla.Application that
// Compile makes of that, which the root stores and schedules like any SLA.
// Errors are sla.Errors: every problem found, each with the path of its
// field (spec.components[1].traits[0].properties.replicas) and the line.
package oam

// APIVersion and Kind are what a manifest must declare.
const (
	APIVersion = "core.oam.dev/v1beta1"
	Kind       = "Application"
)

// Component types built in.
const (
	TypeWebservice = "webservice"
	TypeWorker     = "worker"
	TypeTask       = "task"
)

// Trait types built in.
const (
	TraitScaler    = "scaler"
	TraitPlacement = "placement"
	TraitAffinity  = "affinity" // another name for placement
	TraitExpose    = "expose"
	TraitEnv       = "env"
	TraitResource  = "resource"
	TraitResources = "resources" // another name for resource
	TraitRuntime   = "runtime"
	TraitGPU       = "gpu"
)

// Policy and workflow step types built in.
const (
	PolicyTopology = "topology"
	// PolicyIsolation sets the application's unit of tenant isolation
	// (properties.unit: user or application; README: Tenancy).
	PolicyIsolation = "isolation"
	StepDeploy      = "deploy"
	StepApply       = "apply-component"
)

// Application is a parsed OAM Application.
type Application struct {
	// Name is metadata.name as written (a DNS label); Namespace is
	// metadata.namespace, "" when absent.
	Name       string
	Namespace  string
	Components []Component
	Policies   []Policy
	Steps      []Step
}

// Component is one component with its properties and traits.
type Component struct {
	Name  string
	Type  string
	Image string
	Cmd   []string
	Args  []string
	Env   []EnvVar
	Ports []Port
	// MilliCPU and MemoryMB are the cpu and memory properties (0: not
	// given).
	MilliCPU int64
	MemoryMB int
	// Count is a task's number of runs (its count property; 1 by default).
	Count  int
	Traits []Trait
	// Implementations are, for a component whose type is a base component,
	// its ComponentDefinitions in preference order (nil for a built-in
	// type).
	Implementations []ComponentDefinition
}

// Catalog holds a user's ComponentDefinitions by base component, each
// base's in preference order (without a runtime trait: the order they were
// registered in).
type Catalog map[string][]ComponentDefinition

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// Port is one port a webservice listens on.
type Port struct {
	Port     int
	Protocol string // "tcp" or "udp"
	Expose   bool
}

// Trait is one trait of a component; the field of its type is set.
type Trait struct {
	Type      string
	Scaler    *Scaler
	Placement *Placement
	Expose    *Expose
	Env       *EnvTrait
	Resource  *Resource
	Runtime   *Runtime
	GPU       *GPU
	Jobs      *JobsTrait
	AllowFrom *AllowFromTrait
}

// Scaler sets the number of instances.
type Scaler struct{ Replicas int }

// Placement restricts where instances run.
type Placement struct {
	Clusters []string
	Nodes    []string
	Arch     []string
	// Labels are node labels a node must all have (thicket-node --label).
	Labels map[string]string
}

// Expose publishes ports and chooses service IPs.
type Expose struct {
	Ports []int
	// Type is ClusterIP (the service IP only) or NodePort (also published
	// on the node's address).
	Type      string
	RRIP      string
	ClosestIP string
}

// EnvTrait adds, replaces or removes environment variables.
type EnvTrait struct {
	Env     []EnvVar // sorted by name
	Replace bool
	Unset   []string
}

// Resource sets cpu and memory (0: keep the component's).
type Resource struct {
	MilliCPU int64
	MemoryMB int
}

// Runtime names the virtualization that runs the component's code.
type Runtime struct{ Prefer []string }

// GPU asks for GPUs per instance.
type GPU struct{ Count int }

// Policy is an application policy.
type Policy struct {
	Name     string
	Type     string
	Clusters []string // topology
	Unit     string   // isolation
}

// Step is a workflow step.
type Step struct {
	Name      string
	Type      string
	Policies  []string // deploy
	Component string   // apply-component
}
