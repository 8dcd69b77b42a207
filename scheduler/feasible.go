package scheduler

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
)

// Constraint types (as in the SLA).
const (
	constraintDirect   = "direct"
	constraintClusters = "clusters"
)

// filter names the first feasibility filter a candidate fails.
type filter uint8

const (
	fitOK filter = iota
	// Node filters, in the order they are applied.
	failInactive
	failNotReady
	failCordoned
	failNodeList
	failLabels
	failVirtualization
	failArch
	failCPU
	failMemory
	failVGPU
	failPort
	failLatencyTarget
	failNoCoordinate
	failLatency
	failSite
	failNoLocation
	failGeo
	numNodeFilters
	// Cluster filters.
	failDirectCluster
	failAllowed
)

// request is an instance spec checked once and ready to test candidates
// against. Testing a candidate allocates nothing.
type request struct {
	spec *wire.InstanceSpec
	need wire.Resources
	// nodeLists holds the entries of each direct constraint's node list
	// that has some; a node must be in all of them.
	nodeLists [][]string
	// ports are the host ports the instance publishes ("8080/tcp").
	ports []string
	// dist are the latency and geo constraints (distance.go); lenient:
	// latency targets not among the landmarks are not checked (a
	// cluster's scheduler); cluster: the name of the cluster whose nodes
	// are being checked.
	dist    []distance
	lenient bool
	cluster string
	locs    map[string]geo.Location // parsed node locations
}

func newRequest(spec *wire.InstanceSpec) (request, error) {
	r := request{spec: spec, need: spec.Resources}
	if spec.Virtualization == "" {
		return r, invalid(spec, "virtualization is empty")
	}
	if r.need.MilliCPU < 0 || r.need.MemoryMB < 0 || r.need.VGPUs < 0 {
		return r, invalid(spec, "resources are negative (%d milli-CPU, %d MB, %d vGPUs)",
			r.need.MilliCPU, r.need.MemoryMB, r.need.VGPUs)
	}
	ms, err := spec.PortMappings()
	if err != nil {
		return r, invalid(spec, "port: %v", err)
	}
	r.ports = wire.UsedPorts(ms)
	for i := range spec.Constraints {
		c := &spec.Constraints[i]
		switch c.Type {
		case constraintDirect:
			if list := splitList(c.Node); len(list) > 0 {
				r.nodeLists = append(r.nodeLists, list)
			}
		case constraintClusters:
		case constraintLatency, constraintGeo:
			if err := r.parseDistance(i, c); err != nil {
				return r, err
			}
		default:
			return r, invalid(spec, "constraints[%d]: unknown type %q (direct, clusters, latency or geo)", i, c.Type)
		}
	}
	return r, nil
}

// checkCluster applies the constraints that name clusters to the cluster
// called name. On failure it also returns the index of the failing
// constraint. A direct constraint without a cluster and a clusters
// constraint with an empty allowed list restrict nothing.
func (r *request) checkCluster(name string) (filter, int) {
	for i := range r.spec.Constraints {
		c := &r.spec.Constraints[i]
		switch c.Type {
		case constraintDirect:
			if c.Cluster != "" && c.Cluster != name {
				return failDirectCluster, i
			}
		case constraintClusters:
			if len(c.Allowed) > 0 && !contains(c.Allowed, name) {
				return failAllowed, i
			}
		}
	}
	return fitOK, -1
}

// checkNode applies the node filters in order and returns the first that
// fails, or fitOK.
func (r *request) checkNode(n *Node) filter {
	if !n.Active {
		return failInactive
	}
	if n.NotReady != "" {
		return failNotReady
	}
	if n.Cordoned {
		return failCordoned
	}
	if r.nodeLists != nil && !r.inNodeLists(n.Name) {
		return failNodeList
	}
	for k, v := range r.spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return failLabels
		}
	}
	if !hasVirtualization(n.Virtualizations, r.spec.Virtualization) {
		return failVirtualization
	}
	if len(r.spec.Arch) > 0 && !archIn(n.Arch, r.spec.Arch) {
		return failArch
	}
	// A dimension the instance does not ask for never rejects a node, even
	// one whose reservations exceed its capacity there.
	if r.need.MilliCPU > 0 && r.need.MilliCPU > n.Capacity.MilliCPU-n.Reserved.MilliCPU {
		return failCPU
	}
	if r.need.MemoryMB > 0 && r.need.MemoryMB > n.Capacity.MemoryMB-n.Reserved.MemoryMB {
		return failMemory
	}
	if r.need.VGPUs > 0 && r.need.VGPUs > n.Capacity.VGPUs-n.Reserved.VGPUs {
		return failVGPU
	}
	for _, p := range r.ports {
		if contains(n.UsedPorts, p) {
			return failPort
		}
	}
	if len(r.dist) > 0 {
		f, _, _ := r.checkDistance(&n.NodeInfo, r.cluster)
		return f
	}
	return fitOK
}

// inNodeLists reports whether name is in every node list.
func (r *request) inNodeLists(name string) bool {
	for _, list := range r.nodeLists {
		if !contains(list, name) {
			return false
		}
	}
	return true
}

// splitList returns the entries of a ';'-separated list, trimmed, without
// the empty ones.
func splitList(list string) []string {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	entries := strings.Split(list, ";")
	n := 0
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" {
			entries[n] = e
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return entries[:n]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasVirtualization(list []string, v string) bool {
	for _, x := range list {
		if x == v || strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// archIn reports whether the node architecture a is one of want, aliases
// considered.
func archIn(a string, want []string) bool {
	a = normArch(a)
	if a == "" {
		return false
	}
	for _, w := range want {
		if normArch(w) == a {
			return true
		}
	}
	return false
}

// normArch maps an architecture name to Go's (GOARCH) spelling: uname's
// x86_64 and aarch64 are amd64 and arm64.
func normArch(a string) string {
	switch a {
	case "amd64", "arm64", "arm", "riscv64":
		return a
	case "x86_64", "x86-64", "x64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armv7l", "armv7", "armhf", "armv6l":
		return "arm"
	}
	if l := strings.ToLower(strings.TrimSpace(a)); l != a {
		return normArch(l)
	}
	return a
}

// tally counts rejected nodes per filter while explaining a failure.
type tally struct {
	n [numNodeFilters]int
	// maxFree is, per resource, the most any node rejected for lacking that
	// resource has free.
	maxFree wire.Resources
	// notReady is the first not-ready node's reason.
	notReady string
	// dist is, per distance filter, the first failing constraint and the
	// nearest value measured.
	dist map[filter]distFail
}

type distFail struct {
	i       int
	nearest float64
}

func (t *tally) add(r *request, n *Node) {
	f := r.checkNode(n)
	t.n[f]++
	switch f {
	case failCPU:
		t.maxFree.MilliCPU = max(t.maxFree.MilliCPU, n.Capacity.MilliCPU-n.Reserved.MilliCPU)
	case failMemory:
		t.maxFree.MemoryMB = max(t.maxFree.MemoryMB, n.Capacity.MemoryMB-n.Reserved.MemoryMB)
	case failVGPU:
		t.maxFree.VGPUs = max(t.maxFree.VGPUs, n.Capacity.VGPUs-n.Reserved.VGPUs)
	case failNotReady:
		if t.notReady == "" {
			t.notReady = n.NotReady
		}
	case failLatencyTarget, failNoCoordinate, failLatency, failSite, failNoLocation, failGeo:
		_, i, v := r.checkDistance(&n.NodeInfo, r.cluster)
		if t.dist == nil {
			t.dist = map[filter]distFail{}
		}
		old, seen := t.dist[f]
		switch {
		case !seen:
			t.dist[f] = distFail{i, v}
		case old.i == i && (math.IsNaN(old.nearest) || v < old.nearest):
			t.dist[f] = distFail{i, v}
		}
	}
}

// into adds the counted reasons to m.
func (t *tally) into(r *request, m map[string]int) {
	for f := failInactive; f < numNodeFilters; f++ {
		if t.n[f] > 0 {
			m[r.nodeReason(f, t)] += t.n[f]
		}
	}
}

// nodeReason is the text of a node filter's rejection, singular.
func (r *request) nodeReason(f filter, t *tally) string {
	maxFree := t.maxFree
	switch f {
	case failInactive:
		return "is inactive"
	case failNotReady:
		return "is not ready (" + t.notReady + ")"
	case failCordoned:
		return "is cordoned"
	case failNodeList:
		return "is not in the direct constraint's node list"
	case failLabels:
		return "does not have the labels " + labelList(r.spec.NodeSelector)
	case failVirtualization:
		return "does not run " + r.spec.Virtualization
	case failArch:
		return "is not " + strings.Join(r.spec.Arch, " or ")
	case failCPU:
		return "lacks CPU (need " + cores(r.need.MilliCPU) + ", at most " + cores(maxFree.MilliCPU) + " free)"
	case failMemory:
		return "lacks memory (need " + strconv.FormatInt(r.need.MemoryMB, 10) + " MB, at most " +
			strconv.FormatInt(maxFree.MemoryMB, 10) + " MB free)"
	case failVGPU:
		return "lacks vGPUs (need " + strconv.FormatInt(r.need.VGPUs, 10) + ", at most " +
			strconv.FormatInt(maxFree.VGPUs, 10) + " free)"
	case failPort:
		return "has host port " + strings.Join(r.ports, " or ") + " in use"
	case failLatencyTarget, failNoCoordinate, failLatency, failSite, failNoLocation, failGeo:
		d := t.dist[f]
		return r.distReason(f, d.i, d.nearest)
	}
	return "fails filter " + strconv.Itoa(int(f))
}

// cores renders milli-CPU as cores: 1500 → "1.5 cores".
func cores(milli int64) string {
	s := strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
	if milli == 1000 {
		return s + " core"
	}
	return s + " cores"
}

// clusterReason is the text of a cluster constraint's rejection of the
// cluster called name, singular: about the cluster itself at the root
// (asNodes false), about each of its nodes in the cluster's own scheduler.
func (r *request) clusterReason(f filter, i int, name string, asNodes bool) string {
	c := &r.spec.Constraints[i]
	var why string
	switch f {
	case failDirectCluster:
		why = "the direct constraint's cluster (" + c.Cluster + ")"
	case failAllowed:
		why = "in the clusters constraint's allowed list (" + strings.Join(c.Allowed, ", ") + ")"
	default:
		why = "accepted by filter " + strconv.Itoa(int(f))
	}
	if asNodes {
		return "is in cluster " + name + ", not " + why
	}
	return "is not " + why
}

// explainNodes builds the error for a PickNode that found nothing.
func (r *request) explainNodes(clusterName string, nodes []Node) *NoFitError {
	e := &NoFitError{Kind: KindNode, Candidates: len(nodes), Reasons: map[string]int{}}
	if len(nodes) == 0 {
		return e
	}
	if f, i := r.checkCluster(clusterName); f != fitOK {
		e.Reasons[r.clusterReason(f, i, clusterName, true)] = len(nodes)
		return e
	}
	var t tally
	r.cluster = clusterName
	for i := range nodes {
		t.add(r, &nodes[i])
	}
	t.into(r, e.Reasons)
	return e
}

// explainClusters builds the error for a PickCluster that found nothing.
func (r *request) explainClusters(clusters []Cluster) *NoFitError {
	e := &NoFitError{Kind: KindCluster, Candidates: len(clusters), Reasons: map[string]int{}}
	var t tally
	for i := range clusters {
		c := &clusters[i]
		if !c.Active {
			e.Reasons["is inactive"]++
			continue
		}
		if f, ci := r.checkCluster(c.Name); f != fitOK {
			e.Reasons[r.clusterReason(f, ci, c.Name, false)]++
			continue
		}
		if len(c.Nodes) == 0 {
			e.Reasons["has no nodes"]++
			continue
		}
		e.Reasons["has no node that fits"]++
		e.Nodes += len(c.Nodes)
		r.cluster = c.Name
		for j := range c.Nodes {
			t.add(r, &c.Nodes[j])
		}
	}
	if e.Nodes > 0 {
		e.NodeReasons = map[string]int{}
		t.into(r, e.NodeReasons)
	}
	return e
}

// labelList renders a node selector: "zone=a, gpu=yes", sorted.
func labelList(m map[string]string) string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
