// Package scheduler decides where instances run. The root uses it to pick a
// cluster for an instance, each cluster to pick one of its nodes.
//
// It follows Nomad's scheduler/feasible.go and rank.go: feasibility filters
// drop the candidates that cannot take an instance, then ranking picks the
// best of the rest. Everything is a pure function over a snapshot: no
// goroutines, no clocks, no I/O, and the caller's data is never modified.
//
// Feasibility of a node, in this order (a node rejected by several filters is
// counted under the first): it is active; when a "direct" constraint lists
// nodes, its name is in every such list; it has every label of the
// instance's NodeSelector, with its value; it runs the instance's
// virtualization; when the instance lists architectures, the node's is one of
// them ("x86_64" = "amd64", "aarch64" = "arm64"); and the instance's CPU,
// memory and vGPUs each fit into the node's Capacity minus Reserved.
// Capacity is per node: it is never summed over a cluster.
//
// Ranking is best fit: the feasible node left fullest after the placement
// wins (see score), ties broken by node name, then ID. At the root, clusters
// rank by their best node's score, ties broken by cluster name, then ID.
//
// Latency and geo constraints (distance.go) filter nodes last, by estimated
// round trip to a target and by distance to a point; an instance with such
// constraints goes to the nearest feasible node rather than the fullest.
//
// Constraints hold together: an instance must satisfy all of them.
package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
)

// Node is a node as a scheduler sees it. Capacity is what the node offers to
// instances, Reserved what the instances already placed on it take (whether
// they report yet or not).
type Node struct {
	wire.NodeInfo
	// Services names the services with instances on the node, as
	// "<application name>/<microservice name>": the targets of latency
	// constraints that name a service.
	Services []string
	// Cordoned: an admin cordoned (or is draining) the node; nothing new is
	// placed on it, and what runs there stays (or is moved by the drain).
	Cordoned bool
}

// Cluster groups nodes, as the root sees them.
type Cluster struct {
	ID     string
	Name   string
	Active bool
	Nodes  []Node
}

// Placement is a decision. PickNode leaves ClusterID empty; PickCluster sets
// it and names the node that made the cluster feasible (the cluster's own
// scheduler decides the final node).
type Placement struct {
	ClusterID string
	NodeID    string
	NodeName  string
}

// Result is the outcome of placing one instance of a batch.
type Result struct {
	Placement Placement
	Err       error
	// Choice is the implementation chosen for an overloaded spec and why
	// (see implementations.go); Index -1 for a spec without
	// Implementations. Its reasons are set on failure too.
	Choice Choice
}

// ErrNoFit matches (errors.Is) every *NoFitError.
var ErrNoFit = errors.New("scheduler: nothing fits")

// ErrInvalidSpec is wrapped by the errors for instance specs the scheduler
// cannot judge: no virtualization, negative resources, an unknown constraint
// type. The SLA validator rejects all of these earlier; a spec that still
// carries one is refused rather than placed against a rule it cannot read.
var ErrInvalidSpec = errors.New("scheduler: invalid instance spec")

// Kinds of candidates in a NoFitError.
const (
	KindNode    = "node"
	KindCluster = "cluster"
)

// NoFitError explains why no candidate takes an instance: how many were
// considered and how many were rejected for each reason. Its message lists
// the reasons by count, most frequent first, e.g.
//
//	no node fits: 2 lack memory (need 512 MB, at most 256 MB free), 1 does not run unikernel, 1 is not in the direct constraint's node list
//
// Reasons are keyed by their singular form ("lacks memory (need 512 MB, at
// most 256 MB free)"); Error puts the verb in the plural where the count
// asks for it.
type NoFitError struct {
	// Kind is KindNode or KindCluster.
	Kind string
	// Candidates is the number of nodes (KindNode) or clusters (KindCluster)
	// considered.
	Candidates int
	// Reasons counts the rejected candidates per reason; each candidate is
	// counted once, under the first filter it fails.
	Reasons map[string]int
	// Nodes and NodeReasons, for KindCluster, count the nodes of the
	// clusters that passed the cluster-level filters, and why each of those
	// nodes was rejected.
	Nodes       int
	NodeReasons map[string]int
}

// Error renders the reasons, most frequent first, then alphabetically.
func (e *NoFitError) Error() string {
	kind := e.Kind
	if kind == "" {
		kind = KindNode
	}
	var b strings.Builder
	b.WriteString("no ")
	b.WriteString(kind)
	b.WriteString(" fits: ")
	if len(e.Reasons) == 0 {
		if e.Candidates == 0 {
			b.WriteString("there are no " + kind + "s")
		} else {
			b.WriteString("no reason recorded")
		}
		return b.String()
	}
	writeReasons(&b, e.Reasons)
	if len(e.NodeReasons) > 0 {
		b.WriteString("; their ")
		b.WriteString(strconv.Itoa(e.Nodes))
		if e.Nodes == 1 {
			b.WriteString(" node: ")
		} else {
			b.WriteString(" nodes: ")
		}
		writeReasons(&b, e.NodeReasons)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoFit) true.
func (e *NoFitError) Is(target error) bool { return target == ErrNoFit }

func writeReasons(b *strings.Builder, reasons map[string]int) {
	type kv struct {
		text string
		n    int
	}
	list := make([]kv, 0, len(reasons))
	for t, n := range reasons {
		list = append(list, kv{t, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].text < list[j].text
	})
	for i, r := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(r.n))
		b.WriteByte(' ')
		if r.n == 1 {
			b.WriteString(r.text)
		} else {
			b.WriteString(plural(r.text))
		}
	}
}

// plural turns a reason's leading verb into the plural ("lacks memory" →
// "lack memory").
func plural(reason string) string {
	verb, rest, _ := strings.Cut(reason, " ")
	switch verb {
	case "is":
		verb = "are"
	case "has":
		verb = "have"
	case "does":
		verb = "do"
	case "lacks":
		verb = "lack"
	default:
		return reason
	}
	if rest == "" {
		return verb
	}
	return verb + " " + rest
}

// PickNode places one instance on one of a cluster's nodes. clusterName is
// the cluster running the scheduler: a "direct" constraint naming another
// cluster, or a "clusters" constraint whose allowed list does not name this
// one, makes nothing feasible. The error is a *NoFitError when nothing fits,
// or wraps ErrInvalidSpec.
func PickNode(clusterName string, nodes []Node, spec wire.InstanceSpec) (Placement, error) {
	p, _, _, err := pickNodeAny(clusterName, nodes, &spec)
	return p, err
}

// picked is a placement and the indexes of what it chose.
type picked struct {
	p      Placement
	ci, ni int
}

// pickNodeAny places an instance, overloaded or not, on a node.
func pickNodeAny(clusterName string, nodes []Node, spec *wire.InstanceSpec) (Placement, int, Choice, error) {
	r, ch, err := chooseImplementation(spec, func(s *wire.InstanceSpec) (picked, string, error) {
		p, i, err := pickNode(clusterName, nodes, s)
		return picked{p: p, ni: i}, "node " + p.NodeName, err
	})
	if err != nil {
		return Placement{}, -1, ch, err
	}
	return r.p, r.ni, ch, nil
}

// pickClusterAny places an instance, overloaded or not, on a cluster.
func pickClusterAny(clusters []Cluster, spec *wire.InstanceSpec) (Placement, int, int, Choice, error) {
	r, ch, err := chooseImplementation(spec, func(s *wire.InstanceSpec) (picked, string, error) {
		p, ci, ni, err := pickCluster(clusters, s)
		where := ""
		if err == nil {
			where = "cluster " + clusters[ci].Name
		}
		return picked{p: p, ci: ci, ni: ni}, where, err
	})
	if err != nil {
		return Placement{}, -1, -1, ch, err
	}
	return r.p, r.ci, r.ni, ch, nil
}

// chosen is the spec as it runs with the choice made.
func chosen(spec *wire.InstanceSpec, ch Choice) *wire.InstanceSpec {
	if ch.Index < 0 {
		return spec
	}
	v := spec.Implement(ch.Index)
	return &v
}

func pickNode(clusterName string, nodes []Node, spec *wire.InstanceSpec) (Placement, int, error) {
	r, err := newRequest(spec)
	if err != nil {
		return Placement{}, -1, err
	}
	i := -1
	if len(r.dist) > 0 {
		r.lenient, r.cluster = true, clusterName
		r.resolve(landmarks(clusterName, nodes, nil))
	}
	if f, _ := r.checkCluster(clusterName); f == fitOK {
		i, _ = r.bestNode(nodes)
	}
	if i < 0 {
		return Placement{}, -1, r.explainNodes(clusterName, nodes)
	}
	return Placement{NodeID: nodes[i].ID, NodeName: nodes[i].Name}, i, nil
}

// PickCluster places one instance at the root. A cluster is feasible when it
// is active, passes the "direct" (cluster name) and "clusters" (allowed list)
// constraints, and at least one of its nodes is feasible for the instance on
// its own (capacity is per node, never summed over the cluster); a direct
// constraint's node list applies to the nodes of the cluster it names. The
// placement names the chosen cluster and the node that justified it. The
// error is a *NoFitError when nothing fits, or wraps ErrInvalidSpec.
func PickCluster(clusters []Cluster, spec wire.InstanceSpec) (Placement, error) {
	p, _, _, _, err := pickClusterAny(clusters, &spec)
	return p, err
}

func pickCluster(clusters []Cluster, spec *wire.InstanceSpec) (p Placement, ci, ni int, err error) {
	r, err := newRequest(spec)
	if err != nil {
		return Placement{}, -1, -1, err
	}
	ci, ni = -1, -1
	if len(r.dist) > 0 {
		var marks []landmark
		for i := range clusters {
			if clusters[i].Active {
				marks = landmarks(clusters[i].Name, clusters[i].Nodes, marks)
			}
		}
		r.resolve(marks)
	}
	var bestScore float64
	for i := range clusters {
		c := &clusters[i]
		if !c.Active {
			continue
		}
		if f, _ := r.checkCluster(c.Name); f != fitOK {
			continue
		}
		r.cluster = c.Name
		n, s := r.bestNode(c.Nodes)
		if n < 0 {
			continue
		}
		if ci < 0 || betterCluster(s, c, bestScore, &clusters[ci]) {
			ci, ni, bestScore = i, n, s
		}
	}
	if ci < 0 {
		return Placement{}, -1, -1, r.explainClusters(clusters)
	}
	c := &clusters[ci]
	return Placement{ClusterID: c.ID, NodeID: c.Nodes[ni].ID, NodeName: c.Nodes[ni].Name}, ci, ni, nil
}

// PlaceAllNodes places many instances on a cluster's nodes in order, as
// PickNode does, reserving each placement's resources on its node before
// placing the next, so two instances never both take the last free room.
// It returns one result per spec. The caller's nodes are not modified.
func PlaceAllNodes(clusterName string, nodes []Node, specs []wire.InstanceSpec) []Result {
	results := make([]Result, len(specs))
	if len(specs) == 0 {
		return results
	}
	local := append([]Node(nil), nodes...)
	for i := range specs {
		p, ni, ch, err := pickNodeAny(clusterName, local, &specs[i])
		results[i] = Result{Placement: p, Err: err, Choice: ch}
		if err == nil {
			reserve(&local[ni], chosen(&specs[i], ch))
		}
	}
	return results
}

// PlaceAllClusters places many instances at the root in order, as
// PickCluster does, reserving each placement's resources on the node that
// justified it before placing the next (the cluster may later choose another
// node; the next sync brings the real figures). It returns one result per
// spec. The caller's clusters and nodes are not modified.
func PlaceAllClusters(clusters []Cluster, specs []wire.InstanceSpec) []Result {
	results := make([]Result, len(specs))
	if len(specs) == 0 {
		return results
	}
	local := make([]Cluster, len(clusters))
	copy(local, clusters)
	copied := make([]bool, len(local)) // whether local[i].Nodes is ours yet
	for i := range specs {
		p, ci, ni, ch, err := pickClusterAny(local, &specs[i])
		results[i] = Result{Placement: p, Err: err, Choice: ch}
		if err != nil {
			continue
		}
		if !copied[ci] {
			local[ci].Nodes = append([]Node(nil), local[ci].Nodes...)
			copied[ci] = true
		}
		reserve(&local[ci].Nodes[ni], chosen(&specs[i], ch))
	}
	return results
}

// landmarks appends the active nodes of a cluster as latency targets.
func landmarks(cluster string, nodes []Node, to []landmark) []landmark {
	for i := range nodes {
		n := &nodes[i]
		if n.Active {
			to = append(to, landmark{id: n.ID, name: n.Name, cluster: cluster, location: n.Location, coord: n.Coordinate, services: n.Services})
		}
	}
	return to
}

// reserve takes what spec needs on a node copy: resources and host ports.
// The port list is copied before it grows, never shared with the caller.
func reserve(n *Node, spec *wire.InstanceSpec) {
	n.Reserved = n.Reserved.Add(spec.Resources)
	if ms, err := spec.PortMappings(); err == nil && len(ms) > 0 {
		n.UsedPorts = append(slices.Clip(n.UsedPorts), wire.UsedPorts(ms)...)
	}
}

// invalid returns an error wrapping ErrInvalidSpec.
func invalid(spec *wire.InstanceSpec, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if spec.Key != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidSpec, spec.Key, msg)
	}
	return fmt.Errorf("%w: %s", ErrInvalidSpec, msg)
}
