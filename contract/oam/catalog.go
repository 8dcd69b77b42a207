package oam

import (
	"maps"
	"slices"
	"strings"

	"github.com/thicket-edge/thicket/contract/sla"
	"go.yaml.in/yaml/v3"
)

// ComponentType is a built-in component type as GET
// /api/oam/componentdefinitions lists it.
type ComponentType struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Properties  []string `json:"properties"`
}

// TraitDefinition is a built-in trait as GET /api/oam/traitdefinitions
// lists it.
type TraitDefinition struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases,omitempty"`
	Description string   `json:"description"`
	AppliesTo   []string `json:"applies_to"`
	Properties  []string `json:"properties"`
}

var componentTypes = map[string]ComponentType{
	TypeWebservice: {TypeWebservice, "a long-running container whose ports are reachable at the component's service IP; ports with expose: true are published on the node with the expose trait's type NodePort",
		[]string{"image", "cmd", "args", "env", "ports", "cpu", "memory"}},
	TypeWorker: {TypeWorker, "a long-running container without ports",
		[]string{"image", "cmd", "args", "env", "cpu", "memory"}},
	TypeTask: {TypeTask, "a container that runs to completion (an SLA one_shot service): exit 0 is COMPLETED, anything else FAILED; count instances run",
		[]string{"image", "cmd", "args", "env", "cpu", "memory", "count", "restart"}},
}

var all = []string{TypeWebservice, TypeWorker, TypeTask}

var traitDefinitions = []TraitDefinition{
	{TraitScaler, nil, "the number of instances", []string{TypeWebservice, TypeWorker}, []string{"replicas"}},
	{TraitPlacement, []string{TraitAffinity}, "where instances may run: clusters (any of them), nodes (of the one cluster named), architectures, labels (key: value) a node must all have (thicket-node --label)",
		all, []string{"clusters", "nodes", "arch", "labels"}},
	{TraitExpose, nil, "the service IPs and published ports: port (published on the node's address with type NodePort), type ClusterIP (default) or NodePort, rrIP and closestIP (service IPs in 10.30.0.0/16; rrIP is chosen when absent)",
		[]string{TypeWebservice}, []string{"port", "type", "rrIP", "closestIP"}},
	{TraitEnv, nil, "environment variables: env (name: value) added or replacing the component's, replace (drop the component's first), unset (names to remove)",
		all, []string{"env", "replace", "unset"}},
	{TraitResource, []string{TraitResources}, "cpu and memory of each instance (the larger of requests and limits when both are given)",
		all, []string{"cpu", "memory", "requests", "limits"}},
	{TraitRuntime, nil, "the virtualization that runs the component's code: prefer lists one of container (the image is an OCI image), wasm or unikernel (the image is then one or more http(s) URLs, comma-separated); for a base component, the virtualizations of its implementations in preference order (others are not used)",
		all, []string{"prefer"}},
	{TraitGPU, nil, "GPUs per instance", all, []string{"count"}},
	jobsTraitDefinition,
	allowFromTraitDefinition,
}

// ComponentTypes lists the built-in component types.
func ComponentTypes() []ComponentType {
	out := make([]ComponentType, 0, len(componentTypes))
	for _, name := range ComponentTypeNames() {
		out = append(out, componentTypes[name])
	}
	return out
}

// ComponentTypeNames lists the component type names, sorted.
func ComponentTypeNames() []string { return slices.Sorted(maps.Keys(componentTypes)) }

// TraitDefinitions lists the built-in traits.
func TraitDefinitions() []TraitDefinition { return slices.Clone(traitDefinitions) }

// canonical is a trait type with aliases resolved.
func canonical(t string) string {
	for _, d := range traitDefinitions {
		if t == d.Name || slices.Contains(d.Aliases, t) {
			return d.Name
		}
	}
	return t
}

func traitDefinition(t string) (TraitDefinition, bool) {
	i := slices.IndexFunc(traitDefinitions, func(d TraitDefinition) bool { return d.Name == canonical(t) })
	if i < 0 {
		return TraitDefinition{}, false
	}
	return traitDefinitions[i], true
}

func traitNames() string {
	var names []string
	for _, d := range traitDefinitions {
		names = append(names, d.Name)
		names = append(names, d.Aliases...)
	}
	return strings.Join(names, ", ")
}

// trait reads one trait of a component of type ctype.
func (w *walker) trait(path string, n *yaml.Node, ctype string) Trait {
	var t Trait
	var props, typeNode *yaml.Node
	seen := w.object(path, n, []field{
		{"type", func(p string, n *yaml.Node) { t.Type, typeNode = w.str(p, n), n }},
		{"properties", func(p string, n *yaml.Node) { props = n }},
	})
	w.required(path, n, seen, "type")
	if t.Type == "" {
		return t
	}
	def, ok := traitDefinition(t.Type)
	if !ok {
		w.fail(join(path, "type"), typeNode, "trait %q is not supported (supported: %s; GET /api/oam/traitdefinitions)", t.Type, traitNames())
		return Trait{}
	}
	if ctype != "" && !slices.Contains(def.AppliesTo, ctype) {
		w.fail(join(path, "type"), typeNode, "trait %s does not apply to a %s component (it applies to: %s)", t.Type, ctype, strings.Join(def.AppliesTo, ", "))
		return Trait{}
	}
	pp := join(path, "properties")
	if props == nil {
		props = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	}
	switch def.Name {
	case TraitScaler:
		s := &Scaler{Replicas: 1}
		seen := w.object(pp, props, []field{{"replicas", func(p string, n *yaml.Node) { s.Replicas = w.integer(p, n, 0, maxReplicas) }}})
		w.required(pp, props, seen, "replicas")
		t.Scaler = s
	case TraitPlacement:
		pl := &Placement{}
		w.object(pp, props, []field{
			{"clusters", func(p string, n *yaml.Node) { pl.Clusters = w.strs(p, n, w.clusterName) }},
			{"nodes", func(p string, n *yaml.Node) { pl.Nodes = w.strs(p, n, w.clusterName) }},
			{"arch", func(p string, n *yaml.Node) {
				pl.Arch = w.strs(p, n, func(p string, n *yaml.Node, s string) {
					if !slices.Contains(sla.Archs(), s) {
						w.fail(p, n, "%q is not a supported architecture: use one of %s", s, strings.Join(sla.Archs(), ", "))
					}
				})
			}},
			{"labels", func(p string, n *yaml.Node) {
				if pl.Labels = w.stringMap(p, n); len(pl.Labels) == 0 {
					pl.Labels = nil
				} else if err := sla.CheckLabels(pl.Labels); err != nil {
					w.fail(p, n, "%v", err)
				}
			}},
		})
		if len(pl.Nodes) > 0 && len(pl.Clusters) != 1 {
			w.fail(join(pp, "nodes"), props, "needs exactly one entry in clusters: the cluster the nodes belong to")
		}
		t.Placement = pl
	case TraitExpose:
		e := &Expose{Type: "ClusterIP"}
		w.object(pp, props, []field{
			{"port", func(p string, n *yaml.Node) {
				w.list(p, n, 50, func(p string, _ int, n *yaml.Node) { e.Ports = append(e.Ports, w.integer(p, n, 1, 65535)) })
			}},
			{"type", func(p string, n *yaml.Node) {
				switch v := w.str(p, n); v {
				case "ClusterIP", "NodePort":
					e.Type = v
				case "":
				default:
					w.fail(p, n, "%q is not supported: ClusterIP (the service IP) or NodePort (also published on the node's address)", v)
				}
			}},
			{"rrIP", func(p string, n *yaml.Node) { e.RRIP = w.str(p, n) }},
			{"closestIP", func(p string, n *yaml.Node) { e.ClosestIP = w.str(p, n) }},
		})
		t.Expose = e
	case TraitEnv:
		e := &EnvTrait{}
		w.object(pp, props, []field{
			{"env", func(p string, n *yaml.Node) {
				m := map[string]string{}
				if n.Kind == yaml.MappingNode {
					for i := 0; i+1 < len(n.Content); i += 2 {
						k := n.Content[i]
						kp := join(p, k.Value)
						if _, dup := m[k.Value]; dup {
							w.fail(kp, k, "is given twice")
						}
						m[w.envName(kp, k, k.Value)] = w.envValue(kp, n.Content[i+1])
					}
				} else if !isNull(n) {
					w.fail(p, n, "must be an object of NAME: value, got %s", describe(n))
				}
				for _, k := range slices.Sorted(maps.Keys(m)) {
					if k != "" {
						e.Env = append(e.Env, EnvVar{k, m[k]})
					}
				}
			}},
			{"replace", func(p string, n *yaml.Node) { e.Replace = w.boolean(p, n) }},
			{"unset", func(p string, n *yaml.Node) {
				e.Unset = w.strs(p, n, func(p string, n *yaml.Node, s string) { w.envName(p, n, s) })
			}},
		})
		t.Env = e
	case TraitResource:
		r := &Resource{}
		both := func(p string, n *yaml.Node) {
			w.object(p, n, []field{
				{"cpu", func(p string, n *yaml.Node) { r.MilliCPU = max(r.MilliCPU, w.cpu(p, n)) }},
				{"memory", func(p string, n *yaml.Node) { r.MemoryMB = max(r.MemoryMB, w.memory(p, n)) }},
			})
		}
		w.object(pp, props, []field{
			{"cpu", func(p string, n *yaml.Node) { r.MilliCPU = max(r.MilliCPU, w.cpu(p, n)) }},
			{"memory", func(p string, n *yaml.Node) { r.MemoryMB = max(r.MemoryMB, w.memory(p, n)) }},
			{"requests", both},
			{"limits", both},
		})
		t.Resource = r
	case TraitRuntime:
		r := &Runtime{}
		seen := w.object(pp, props, []field{{"prefer", func(p string, n *yaml.Node) {
			r.Prefer = w.strs(p, n, func(p string, n *yaml.Node, s string) {
				if s != sla.VirtContainer && s != sla.VirtWasm && s != sla.VirtUnikernel {
					w.fail(p, n, "%q is not a virtualization: container, wasm or unikernel", s)
				}
			})
		}}})
		w.required(pp, props, seen, "prefer")
		t.Runtime = r
	case TraitGPU:
		g := &GPU{}
		seen := w.object(pp, props, []field{{"count", func(p string, n *yaml.Node) { g.Count = w.integer(p, n, 0, 64) }}})
		w.required(pp, props, seen, "count")
		t.GPU = g
	case TraitJobs:
		t.Jobs = w.jobsTrait(pp, props)
	case TraitAllowFrom:
		t.AllowFrom = w.allowFromTrait(pp, props)
	}
	return t
}
