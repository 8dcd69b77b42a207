package oam

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/contract/sla"
)

// AnyCluster is the cluster name KubeVela gives its own control plane
// ("local"): in a topology policy it restricts nothing, as Thicket's root
// runs no instances and every cluster is equally "here".
const AnyCluster = "local"

// DefaultNamespace is the application namespace of a manifest without
// metadata.namespace.
const DefaultNamespace = "default"

// Compiled is what an Application becomes: one SLA application whose
// microservices are the components, in their order, how many instances of
// each to start, and the workflow's steps in order.
type Compiled struct {
	App      sla.Application
	Replicas []int
	Steps    []StepPlan
}

// StepPlan is a workflow step as Thicket runs it: the components it
// deploys (indexes into the application's components). The next step's
// start when every instance of these runs (or, for a task, completed).
type StepPlan struct {
	Name       string
	Components []int
}

// plan orders the components into steps: an apply-component step deploys
// its component, a deploy step every component no earlier step deployed
// (none left: the step is done at once). Without a workflow, one step
// "deploy" deploys everything.
func plan(a *Application) []StepPlan {
	if len(a.Steps) == 0 {
		all := make([]int, len(a.Components))
		for i := range all {
			all[i] = i
		}
		return []StepPlan{{Name: StepDeploy, Components: all}}
	}
	done := make([]bool, len(a.Components))
	var out []StepPlan
	for _, s := range a.Steps {
		sp := StepPlan{Name: s.Name, Components: []int{}}
		for i, c := range a.Components {
			if !done[i] && (s.Type == StepDeploy || c.Name == s.Component) {
				done[i] = true
				sp.Components = append(sp.Components, i)
			}
		}
		out = append(out, sp)
	}
	return out
}

// SLA wraps the compiled application in a complete SLA document.
func (c *Compiled) SLA() *sla.SLA {
	return &sla.SLA{SLAVersion: sla.Version, Applications: []sla.Application{c.App}}
}

// ThicketName is the name an OAM name (a DNS label) gets in Thicket, whose
// names are letters and digits: the name without its '-'.
func ThicketName(name string) string { return strings.ReplaceAll(name, "-", "") }

// Compile turns a parsed Application into the SLA application Thicket
// deploys and checks the result with the SLA's rules, so that the root
// stores it like any SLA. Errors name the manifest's fields.
func Compile(a *Application) (*Compiled, error) {
	var errs sla.Errors
	fail := func(field, format string, args ...any) {
		errs = append(errs, &sla.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	name := func(path, n string) string {
		t := ThicketName(n)
		if !sla.NameRE.MatchString(t) {
			fail(path, "%q becomes %q in Thicket, whose names are 1 to 30 letters and digits: use a shorter name", n, t)
		}
		return t
	}
	ns := a.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	out := &Compiled{App: sla.Application{
		ApplicationName:      name("metadata.name", a.Name),
		ApplicationNamespace: name("metadata.namespace", ns),
		ApplicationDesc:      "OAM application " + a.Name,
		Isolation:            isolation(a),
		Microservices:        []sla.Microservice{},
	}}
	topology := topologyClusters(a)
	names := map[string]string{}
	for i := range a.Components {
		c := &a.Components[i]
		path := index("spec.components", i)
		ms, replicas := microservice(c, ns)
		ms.MicroserviceName = name(path+".name", c.Name)
		ms.MicroserviceNamespace = out.App.ApplicationNamespace
		if prev, dup := names[ms.MicroserviceName]; dup && sla.NameRE.MatchString(ms.MicroserviceName) {
			fail(path+".name", "%q and %q are both %q in Thicket: rename one", prev, c.Name, ms.MicroserviceName)
		}
		names[ms.MicroserviceName] = c.Name
		if c.Implementations != nil && ms.Code == "" {
			fail(path+".traits", "placement allows architectures %s, which none of base component %s's implementations runs on",
				strings.Join(ms.Arch, ", "), c.Type)
		}
		if err := constrain(&ms, c, topology); err != "" {
			fail(path+".traits", "%s", err)
		}
		out.App.Microservices = append(out.App.Microservices, ms)
		out.Replicas = append(out.Replicas, replicas)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := out.SLA().Validate(); err != nil {
		return nil, remap(a, err.(sla.Errors))
	}
	out.Steps = plan(a)
	return out, nil
}

// microservice is a component as an SLA microservice (without names and
// constraints) and its number of instances.
func microservice(c *Component, ns string) (sla.Microservice, int) {
	ms := sla.Microservice{
		Virtualization: sla.VirtContainer,
		Code:           c.Image,
		Cmd:            append(slices.Clone(c.Cmd), c.Args...),
		OneShot:        c.Type == TypeTask,
		Memory:         c.MemoryMB,
		Constraints:    []sla.Constraint{},
	}
	milli := c.MilliCPU
	replicas := 1
	if c.Type == TypeTask {
		replicas = c.Count
	}
	env := slices.Clone(c.Env)
	var expose *Expose
	for _, t := range c.Traits {
		switch {
		case t.Scaler != nil:
			replicas = t.Scaler.Replicas
		case t.Placement != nil:
			ms.Arch, ms.NodeSelector = t.Placement.Arch, t.Placement.Labels
		case t.Expose != nil:
			expose = t.Expose
		case t.Env != nil:
			if t.Env.Replace {
				env = nil
			}
			for _, e := range t.Env.Env {
				if j := slices.IndexFunc(env, func(x EnvVar) bool { return x.Name == e.Name }); j >= 0 {
					env[j] = e
				} else {
					env = append(env, e)
				}
			}
			env = slices.DeleteFunc(env, func(x EnvVar) bool { return slices.Contains(t.Env.Unset, x.Name) })
		case t.Resource != nil:
			if t.Resource.MilliCPU > 0 {
				milli = t.Resource.MilliCPU
			}
			if t.Resource.MemoryMB > 0 {
				ms.Memory = t.Resource.MemoryMB
			}
		case t.Runtime != nil:
			if len(t.Runtime.Prefer) > 0 && c.Implementations == nil {
				ms.Virtualization = t.Runtime.Prefer[0]
			}
		case t.GPU != nil:
			ms.VGPUs = t.GPU.Count
		case t.Jobs != nil:
			ms.Jobs, ms.JobsLease = t.Jobs.Jobs, t.Jobs.LeaseS
		case t.AllowFrom != nil:
			if len(t.AllowFrom.From) > 0 {
				ms.AllowFrom = t.AllowFrom.From
			}
		}
	}
	// The SLA counts whole vCPUs: a fraction takes a whole one.
	ms.VCPUs = int((milli + 999) / 1000)
	overload(&ms, c)
	for _, e := range env {
		ms.Environment = append(ms.Environment, e.Name+"="+e.Value)
	}
	ms.Port = published(c, expose)
	if expose != nil && (expose.RRIP != "" || expose.ClosestIP != "") {
		ms.Addresses = &sla.Addresses{RRIP: expose.RRIP, ClosestIP: expose.ClosestIP}
	}
	return ms, replicas
}

// published is the SLA port field of a component: with an expose trait of
// type NodePort, its ports (or, when it lists none, the component's ports
// with expose: true) are published on the node's address, each on the
// same port number. Every port is reachable at the service IP anyway.
func published(c *Component, e *Expose) string {
	if e == nil || e.Type != "NodePort" {
		return ""
	}
	var entries []string
	if len(e.Ports) > 0 {
		for _, p := range e.Ports {
			proto := "tcp"
			if j := slices.IndexFunc(c.Ports, func(x Port) bool { return x.Port == p }); j >= 0 {
				proto = c.Ports[j].Protocol
			}
			entries = append(entries, fmt.Sprintf("%d:%d/%s", p, p, proto))
		}
	} else {
		for _, p := range c.Ports {
			if p.Expose {
				entries = append(entries, fmt.Sprintf("%d:%d/%s", p.Port, p.Port, p.Protocol))
			}
		}
	}
	return strings.Join(entries, ";")
}

// isolation is the unit of the application's isolation policy (the last
// one's): "" without one.
func isolation(a *Application) string {
	unit := ""
	for _, p := range a.Policies {
		if p.Type == PolicyIsolation {
			unit = p.Unit
		}
	}
	return unit
}

// topologyClusters are the clusters the application's topology policies
// allow: those of the policies its deploy steps name (all topology
// policies without a workflow), AnyCluster dropped; nil: any.
func topologyClusters(a *Application) []string {
	used := map[string]bool{}
	if len(a.Steps) == 0 {
		for _, p := range a.Policies {
			used[p.Name] = true
		}
	}
	for _, s := range a.Steps {
		for _, p := range s.Policies {
			used[p] = true
		}
	}
	var out []string
	anyCluster := false
	for _, p := range a.Policies {
		if p.Type != PolicyTopology || !used[p.Name] {
			continue
		}
		if len(p.Clusters) == 0 {
			anyCluster = true
		}
		for _, c := range p.Clusters {
			if c == AnyCluster {
				anyCluster = true
			} else if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	if anyCluster {
		return nil
	}
	return out
}

// constrain sets a microservice's constraints from its placement trait and
// the topology's clusters; it returns why they cannot be met together.
func constrain(ms *sla.Microservice, c *Component, topology []string) string {
	clusters := topology
	var nodes []string
	for _, t := range c.Traits {
		if p := t.Placement; p != nil && len(p.Clusters) > 0 {
			nodes = p.Nodes
			if topology == nil {
				clusters = p.Clusters
				continue
			}
			clusters = nil
			for _, x := range p.Clusters {
				if slices.Contains(topology, x) {
					clusters = append(clusters, x)
				}
			}
			if len(clusters) == 0 {
				return fmt.Sprintf("placement allows clusters %s, the topology policies %s: no cluster is in both",
					strings.Join(p.Clusters, ", "), strings.Join(topology, ", "))
			}
		}
	}
	switch {
	case len(nodes) > 0:
		ms.Constraints = []sla.Constraint{{Type: sla.ConstraintDirect, Cluster: clusters[0], Node: strings.Join(nodes, ";")}}
	case len(clusters) > 0:
		ms.Constraints = []sla.Constraint{{Type: sla.ConstraintClusters, Allowed: clusters}}
	}
	return ""
}

var slaField = regexp.MustCompile(`^applications\[0\]\.microservices\[(\d+)\]\.([a-z_]+)`)

// remap turns the SLA validator's errors about a compiled application into
// errors about the manifest's fields.
func remap(a *Application, errs sla.Errors) sla.Errors {
	out := make(sla.Errors, 0, len(errs))
	for _, e := range errs {
		field := e.Field
		m := slaField.FindStringSubmatch(e.Field)
		switch {
		case strings.HasPrefix(e.Field, "applications[0].application_namespace"):
			field = "metadata.namespace"
		case strings.HasPrefix(e.Field, "applications[0].application_"):
			field = "metadata.name"
		case m != nil:
			i, _ := strconv.Atoi(m[1])
			field = componentField(a, i, m[2])
		}
		out = append(out, &sla.FieldError{Field: field, Message: e.Message})
	}
	return out
}

// componentField is the manifest field that became an SLA field of
// component i.
func componentField(a *Application, i int, slaName string) string {
	path := index("spec.components", i)
	if i >= len(a.Components) {
		return path
	}
	c := &a.Components[i]
	trait := func(pick func(Trait) bool, fallback string) string {
		for j, t := range c.Traits {
			if pick(t) {
				return index(path+".traits", j) + ".properties"
			}
		}
		return path + fallback
	}
	switch slaName {
	case "code":
		return path + ".properties.image"
	case "cmd":
		return path + ".properties.cmd"
	case "environment":
		return trait(func(t Trait) bool { return t.Env != nil }, ".properties.env")
	case "memory":
		return trait(func(t Trait) bool { return t.Resource != nil && t.Resource.MemoryMB > 0 }, ".properties.memory")
	case "vcpus":
		return trait(func(t Trait) bool { return t.Resource != nil && t.Resource.MilliCPU > 0 }, ".properties.cpu")
	case "vgpus":
		return trait(func(t Trait) bool { return t.GPU != nil }, "")
	case "port", "addresses":
		return trait(func(t Trait) bool { return t.Expose != nil }, ".properties.ports")
	case "arch", "constraints":
		return trait(func(t Trait) bool { return t.Placement != nil }, ".traits")
	case "virtualization":
		return trait(func(t Trait) bool { return t.Runtime != nil }, "")
	case "jobs", "jobs_lease_s":
		return trait(func(t Trait) bool { return t.Jobs != nil }, "")
	case "allow_from":
		return trait(func(t Trait) bool { return t.AllowFrom != nil }, "")
	case "microservice_name", "microservice_namespace":
		return path + ".name"
	}
	return path
}

// overload makes a base component's implementations the microservice's:
// the first its own fields, the others its alternatives, each with its
// definition's cpu and memory or else the component's,
// and architectures: the definition's, narrowed to the placement trait's
// when both name some (an implementation left with none is dropped).
func overload(ms *sla.Microservice, c *Component) {
	if len(c.Implementations) == 0 {
		return
	}
	var impls []sla.Implementation
	for _, d := range c.Implementations {
		im := sla.Implementation{Name: d.Name, Virtualization: d.Virtualization, Code: d.Code(),
			Cmd: append(slices.Clone(d.Cmd), c.Args...), Memory: ms.Memory, VCPUs: ms.VCPUs}
		if len(d.Cmd) == 0 {
			im.Cmd = slices.Clone(ms.Cmd)
		}
		if d.MilliCPU > 0 {
			im.VCPUs = int((d.MilliCPU + 999) / 1000)
		}
		if d.MemoryMB > 0 {
			im.Memory = d.MemoryMB
		}
		switch {
		case len(ms.Arch) == 0:
			im.Arch = slices.Clone(d.Arch)
		case len(d.Arch) == 0:
			im.Arch = slices.Clone(ms.Arch)
		default:
			for _, a := range d.Arch {
				if slices.Contains(ms.Arch, a) {
					im.Arch = append(im.Arch, a)
				}
			}
			if len(im.Arch) == 0 {
				continue
			}
		}
		impls = append(impls, im)
	}
	if len(impls) == 0 {
		// Every implementation is of another architecture than placement
		// allows: Compile reports it.
		ms.Virtualization, ms.Code = "", ""
		return
	}
	first := impls[0]
	ms.ImplementationName, ms.Virtualization, ms.Code, ms.Arch, ms.Cmd = first.Name, first.Virtualization, first.Code, first.Arch, first.Cmd
	ms.Memory, ms.VCPUs = first.Memory, first.VCPUs
	ms.Alternatives = impls[1:]
	if len(ms.Alternatives) == 0 {
		ms.Alternatives = nil
	}
}
