package scheduler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// mkNode is an active amd64 container node with the given capacity and
// reservations (milli-CPU, MB); its ID is "id-" + name.
func mkNode(name string, capCPU, capMem, resCPU, resMem int64) Node {
	return Node{NodeInfo: wire.NodeInfo{
		ID:              "id-" + name,
		Name:            name,
		Arch:            "amd64",
		Virtualizations: []string{"container"},
		Capacity:        wire.Resources{MilliCPU: capCPU, MemoryMB: capMem},
		Reserved:        wire.Resources{MilliCPU: resCPU, MemoryMB: resMem},
		Active:          true,
	}}
}

// mkSpec is a container instance needing cpu milli-CPU and mem MB.
func mkSpec(cpu, mem int64) wire.InstanceSpec {
	return wire.InstanceSpec{
		Key:            "svc.0",
		Virtualization: "container",
		Resources:      wire.Resources{MilliCPU: cpu, MemoryMB: mem},
	}
}

func direct(cluster, nodes string) wire.Constraint {
	return wire.Constraint{Type: "direct", Cluster: cluster, Node: nodes}
}

func allowed(names ...string) wire.Constraint {
	return wire.Constraint{Type: "clusters", Allowed: names}
}

func TestCheckNode(t *testing.T) {
	tests := []struct {
		name string
		node func(*Node)
		spec func(*wire.InstanceSpec)
		want filter
	}{
		{"fits", nil, nil, fitOK},
		{"inactive", func(n *Node) { n.Active = false }, nil, failInactive},
		{"inactive before anything else", func(n *Node) { n.Active = false; n.Virtualizations = nil },
			func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 1 << 40 }, failInactive},
		{"network not ready", func(n *Node) { n.NotReady = "network: thk0 is owned by another thicket-net" }, nil, failNotReady},
		{"not ready before capacity", func(n *Node) { n.NotReady = "network: no answer" },
			func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 1 << 40 }, failNotReady},
		{"cordoned", func(n *Node) { n.Cordoned = true }, nil, failCordoned},
		{"cordoned before capacity and constraints", func(n *Node) { n.Cordoned = true; n.Virtualizations = nil },
			func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 1 << 40 }, failCordoned},
		{"inactive before cordoned", func(n *Node) { n.Cordoned = true; n.Active = false }, nil, failInactive},

		{"virtualization missing", nil, func(s *wire.InstanceSpec) { s.Virtualization = "unikernel" }, failVirtualization},
		{"virtualization among several", func(n *Node) { n.Virtualizations = []string{"container", "wasm", "unikernel"} },
			func(s *wire.InstanceSpec) { s.Virtualization = "unikernel" }, fitOK},
		{"virtualization case", func(n *Node) { n.Virtualizations = []string{"WASM"} },
			func(s *wire.InstanceSpec) { s.Virtualization = "wasm" }, fitOK},
		{"node runs nothing", func(n *Node) { n.Virtualizations = nil }, nil, failVirtualization},

		{"labels match", func(n *Node) { n.Labels = map[string]string{"zone": "a", "gpu": "yes"} },
			func(s *wire.InstanceSpec) { s.NodeSelector = map[string]string{"zone": "a"} }, fitOK},
		{"label value differs", func(n *Node) { n.Labels = map[string]string{"zone": "b"} },
			func(s *wire.InstanceSpec) { s.NodeSelector = map[string]string{"zone": "a"} }, failLabels},
		{"label missing", nil, func(s *wire.InstanceSpec) { s.NodeSelector = map[string]string{"zone": ""} }, failLabels},
		{"labels before virtualization", func(n *Node) { n.Virtualizations = nil },
			func(s *wire.InstanceSpec) { s.NodeSelector = map[string]string{"zone": "a"} }, failLabels},
		{"arch any", func(n *Node) { n.Arch = "riscv64" }, nil, fitOK},
		{"arch listed", nil, func(s *wire.InstanceSpec) { s.Arch = []string{"arm64", "amd64"} }, fitOK},
		{"arch not listed", func(n *Node) { n.Arch = "arm64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"amd64"} }, failArch},
		{"arch x86_64 node, amd64 spec", func(n *Node) { n.Arch = "x86_64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"amd64"} }, fitOK},
		{"arch amd64 node, x86_64 spec", nil, func(s *wire.InstanceSpec) { s.Arch = []string{"x86_64"} }, fitOK},
		{"arch aarch64 node, arm64 spec", func(n *Node) { n.Arch = "aarch64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"arm64"} }, fitOK},
		{"arch arm64 node, aarch64 spec", func(n *Node) { n.Arch = "arm64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"aarch64"} }, fitOK},
		{"arch aarch64 is not amd64", func(n *Node) { n.Arch = "aarch64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"x86_64"} }, failArch},
		{"arch upper case", func(n *Node) { n.Arch = "AMD64" }, func(s *wire.InstanceSpec) { s.Arch = []string{"amd64"} }, fitOK},
		{"arch armv7l is arm", func(n *Node) { n.Arch = "armv7l" }, func(s *wire.InstanceSpec) { s.Arch = []string{"arm"} }, fitOK},
		{"arch unknown node", func(n *Node) { n.Arch = "" }, func(s *wire.InstanceSpec) { s.Arch = []string{"amd64"} }, failArch},

		{"cpu exactly fits", func(n *Node) { n.Reserved.MilliCPU = 3000 }, func(s *wire.InstanceSpec) { s.Resources.MilliCPU = 1000 }, fitOK},
		{"cpu short by one", func(n *Node) { n.Reserved.MilliCPU = 3001 }, func(s *wire.InstanceSpec) { s.Resources.MilliCPU = 1000 }, failCPU},
		{"memory exactly fits", func(n *Node) { n.Reserved.MemoryMB = 7680 }, func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 512 }, fitOK},
		{"memory short", func(n *Node) { n.Reserved.MemoryMB = 7681 }, func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 512 }, failMemory},
		{"cpu checked before memory", func(n *Node) { n.Reserved = n.Capacity }, func(s *wire.InstanceSpec) { s.Resources.MemoryMB = 1 }, failCPU},
		{"zero request fits a full node", func(n *Node) { n.Reserved = n.Capacity }, func(s *wire.InstanceSpec) { s.Resources = wire.Resources{} }, fitOK},
		{"unrequested overcommitted dimension", func(n *Node) { n.Reserved.MemoryMB = 9000 },
			func(s *wire.InstanceSpec) { s.Resources = wire.Resources{MilliCPU: 100} }, fitOK},
		{"vgpu on node without", nil, func(s *wire.InstanceSpec) { s.Resources.VGPUs = 1 }, failVGPU},
		{"vgpu free", func(n *Node) { n.Capacity.VGPUs = 2; n.Reserved.VGPUs = 1 }, func(s *wire.InstanceSpec) { s.Resources.VGPUs = 1 }, fitOK},
		{"vgpu taken", func(n *Node) { n.Capacity.VGPUs = 2; n.Reserved.VGPUs = 2 }, func(s *wire.InstanceSpec) { s.Resources.VGPUs = 1 }, failVGPU},
		{"vgpu node, no vgpu asked", func(n *Node) { n.Capacity.VGPUs = 2; n.Reserved.VGPUs = 2 }, nil, fitOK},

		{"node list contains", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{direct("c", "other;n1")} }, fitOK},
		{"node list trimmed", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{direct("c", " other ; n1 ;")} }, fitOK},
		{"node list lacks", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{direct("c", "n2;n3")} }, failNodeList},
		{"node list prefix is not a match", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{direct("c", "n10;n")} }, failNodeList},
		{"node list empty entries only", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{direct("c", " ; ;")} }, fitOK},
		{"node lists intersect, in both", nil, func(s *wire.InstanceSpec) {
			s.Constraints = []wire.Constraint{direct("c", "n1;n2"), direct("c", "n1;n3")}
		}, fitOK},
		{"node lists intersect, in one", nil, func(s *wire.InstanceSpec) {
			s.Constraints = []wire.Constraint{direct("c", "n1;n2"), direct("c", "n2;n3")}
		}, failNodeList},
		{"node list before resources", nil, func(s *wire.InstanceSpec) {
			s.Resources.MemoryMB = 1 << 20
			s.Constraints = []wire.Constraint{direct("c", "n2")}
		}, failNodeList},
		{"clusters constraint ignored by node filters", nil, func(s *wire.InstanceSpec) { s.Constraints = []wire.Constraint{allowed("x", "c")} }, fitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mkNode("n1", 4000, 8192, 0, 0)
			if tt.node != nil {
				tt.node(&n)
			}
			s := mkSpec(500, 256)
			if tt.spec != nil {
				tt.spec(&s)
			}
			r, err := newRequest(&s)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.checkNode(&n); got != tt.want {
				t.Errorf("checkNode = %d, want %d", got, tt.want)
			}
			// PickNode over the single node agrees.
			p, err := PickNode("c", []Node{n}, s)
			if (tt.want == fitOK) != (err == nil) {
				t.Fatalf("PickNode = %+v, %v; want fit %v", p, err, tt.want == fitOK)
			}
			if err == nil && p.NodeID != "id-n1" {
				t.Errorf("PickNode placed on %q", p.NodeID)
			}
		})
	}
}

func TestCheckCluster(t *testing.T) {
	tests := []struct {
		name        string
		constraints []wire.Constraint
		cluster     string
		want        filter
	}{
		{"none", nil, "edge", fitOK},
		{"direct this cluster", []wire.Constraint{direct("edge", "")}, "edge", fitOK},
		{"direct other cluster", []wire.Constraint{direct("gpu", "")}, "edge", failDirectCluster},
		{"direct is case-sensitive", []wire.Constraint{direct("Edge", "")}, "edge", failDirectCluster},
		{"direct without cluster", []wire.Constraint{direct("", "n1")}, "edge", fitOK},
		{"allowed in list", []wire.Constraint{allowed("a", "edge")}, "edge", fitOK},
		{"allowed not in list", []wire.Constraint{allowed("a", "b")}, "edge", failAllowed},
		{"allowed empty list", []wire.Constraint{allowed()}, "edge", fitOK},
		{"both hold", []wire.Constraint{allowed("edge"), direct("edge", "n1")}, "edge", fitOK},
		{"direct holds, allowed not", []wire.Constraint{direct("edge", ""), allowed("gpu")}, "edge", failAllowed},
		{"two directs disagree", []wire.Constraint{direct("edge", ""), direct("gpu", "")}, "edge", failDirectCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mkSpec(0, 0)
			s.Constraints = tt.constraints
			r, err := newRequest(&s)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := r.checkCluster(tt.cluster); got != tt.want {
				t.Errorf("checkCluster(%q) = %d, want %d", tt.cluster, got, tt.want)
			}
		})
	}
}

func TestPickNodeClusterConstraints(t *testing.T) {
	nodes := []Node{mkNode("n1", 4000, 8192, 0, 0), mkNode("n2", 4000, 8192, 0, 0), mkNode("n3", 4000, 8192, 0, 0)}
	tests := []struct {
		name        string
		constraints []wire.Constraint
		wantNode    string // "" for no fit
		wantReason  string
	}{
		{"direct this cluster", []wire.Constraint{direct("edge", "")}, "n1", ""},
		{"direct this cluster with nodes", []wire.Constraint{direct("edge", "n3;n2")}, "n2", ""},
		{"direct other cluster", []wire.Constraint{direct("gpu", "n1")}, "",
			"is in cluster edge, not the direct constraint's cluster (gpu)"},
		{"allowed", []wire.Constraint{allowed("gpu", "edge")}, "n1", ""},
		{"not allowed", []wire.Constraint{allowed("gpu", "core")}, "",
			"is in cluster edge, not in the clusters constraint's allowed list (gpu, core)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mkSpec(100, 100)
			s.Constraints = tt.constraints
			p, err := PickNode("edge", nodes, s)
			if tt.wantNode != "" {
				if err != nil || p.NodeName != tt.wantNode || p.NodeID != "id-"+tt.wantNode || p.ClusterID != "" {
					t.Fatalf("PickNode = %+v, %v; want %s", p, err, tt.wantNode)
				}
				return
			}
			var nf *NoFitError
			if !errors.As(err, &nf) {
				t.Fatalf("PickNode = %+v, %v; want a NoFitError", p, err)
			}
			want := map[string]int{tt.wantReason: 3}
			if nf.Kind != KindNode || nf.Candidates != 3 || !maps.Equal(nf.Reasons, want) {
				t.Errorf("NoFitError = %+v, want reasons %v", nf, want)
			}
			if !strings.Contains(err.Error(), "3 are in cluster edge, not ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestInvalidSpec(t *testing.T) {
	tests := []struct {
		name string
		spec func(*wire.InstanceSpec)
		want string
	}{
		{"no virtualization", func(s *wire.InstanceSpec) { s.Virtualization = "" }, "virtualization is empty"},
		{"negative cpu", func(s *wire.InstanceSpec) { s.Resources.MilliCPU = -1 }, "negative"},
		{"negative vgpu", func(s *wire.InstanceSpec) { s.Resources.VGPUs = -1 }, "negative"},
		{"unknown constraint", func(s *wire.InstanceSpec) {
			s.Constraints = []wire.Constraint{allowed("a"), {Type: "near"}}
		}, `constraints[1]: unknown type "near"`},
	}
	nodes := []Node{mkNode("n1", 4000, 8192, 0, 0)}
	clusters := []Cluster{{ID: "c1", Name: "a", Active: true, Nodes: nodes}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mkSpec(100, 100)
			tt.spec(&s)
			_, err1 := PickNode("a", nodes, s)
			_, err2 := PickCluster(clusters, s)
			for _, err := range []error{err1, err2} {
				if !errors.Is(err, ErrInvalidSpec) || errors.Is(err, ErrNoFit) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want ErrInvalidSpec with %q", err, tt.want)
				}
				if !strings.Contains(err.Error(), "svc.0") {
					t.Errorf("err = %v does not name the instance", err)
				}
			}
		})
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		list string
		want []string
	}{
		{"", nil},
		{" ", nil},
		{";; ;", nil},
		{"a", []string{"a"}},
		{"a;b", []string{"a", "b"}},
		{" a ; b ;", []string{"a", "b"}},
		{"a;;b;", []string{"a", "b"}},
		{"xavier1;xavier_2;node-3.local", []string{"xavier1", "xavier_2", "node-3.local"}},
	}
	for _, tt := range tests {
		if got := splitList(tt.list); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("splitList(%q) = %q, want %q", tt.list, got, tt.want)
		}
	}
}

// TestHostPorts: until instances get their own network, two instances that
// publish the same host port cannot share a node.
func TestHostPorts(t *testing.T) {
	node := func(name string, used ...string) Node {
		return Node{NodeInfo: wire.NodeInfo{ID: name, Name: name, Active: true, Virtualizations: []string{"container"},
			Capacity: wire.Resources{MilliCPU: 8000, MemoryMB: 8192}, UsedPorts: used}}
	}
	spec := wire.InstanceSpec{Key: "s.0", Virtualization: "container", Port: "8080:80/tcp",
		Ports:     []wire.PortMapping{{HostPort: 8080, InstancePort: 80, Protocol: wire.ProtocolTCP}},
		Resources: wire.Resources{MilliCPU: 100, MemoryMB: 64}}
	cases := []struct {
		name   string
		nodes  []Node
		port   string
		want   string // node name, or "" for no fit
		reason string
	}{
		{"free", []Node{node("a")}, "8080:80", "a", ""},
		{"taken", []Node{node("a", "8080/tcp")}, "8080:80", "", "has host port 8080/tcp in use"},
		{"other protocol is free", []Node{node("a", "8080/udp")}, "8080:80/tcp", "a", ""},
		{"taken on the fuller node: goes to the other", []Node{node("a", "8080/tcp"), node("b")}, "8080:80", "b", ""},
		{"one of two taken", []Node{node("a", "9090/tcp")}, "8080:80;9090:90", "", "has host port 8080/tcp or 9090/tcp in use"},
		{"no ports", []Node{node("a", "8080/tcp")}, "", "a", ""},
	}
	// The root sends the ports parsed and as written; a root that predates
	// Ports sends only the text.
	for _, c := range cases {
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/legacy=%t", c.name, legacy), func(t *testing.T) {
				s := spec
				s.Port, s.Ports = c.port, nil
				if !legacy {
					var err error
					if s.Ports, err = wire.ParsePorts(c.port); err != nil {
						t.Fatal(err)
					}
				}
				hostPortCase(t, c.nodes, s, c.want, c.reason)
			})
		}
	}
	// In a batch, the first instance takes the port: the second goes elsewhere
	// and the third finds no node; the caller's nodes keep their ports.
	nodes := []Node{node("a"), node("b")}
	rs := PlaceAllNodes("c", nodes, []wire.InstanceSpec{spec, spec, spec})
	if rs[0].Err != nil || rs[1].Err != nil || rs[0].Placement.NodeName == rs[1].Placement.NodeName {
		t.Errorf("two instances with one port: %+v", rs[:2])
	}
	if !errors.Is(rs[2].Err, ErrNoFit) {
		t.Errorf("third instance: want no fit, got %+v", rs[2])
	}
	if len(nodes[0].UsedPorts)+len(nodes[1].UsedPorts) != 0 {
		t.Errorf("caller's nodes changed: %+v", nodes)
	}
}

// hostPortCase places spec on nodes and wants the node called want, or no
// fit for reason when want is "".
func hostPortCase(t *testing.T, nodes []Node, spec wire.InstanceSpec, want, reason string) {
	t.Helper()
	p, err := PickNode("c", nodes, spec)
	if want == "" {
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Fatalf("want no fit with %q, got %+v, %v", reason, p, err)
		}
		return
	}
	if err != nil || p.NodeName != want {
		t.Fatalf("want %s, got %+v, %v", want, p, err)
	}
}

// TestUnikernelsPreferKVM: a unikernel goes to a node that runs it with
// KVM, even when another node fits better; other workloads do not care.
func TestUnikernelsPreferKVM(t *testing.T) {
	node := func(name string, reservedMB int64, caps ...string) Node {
		return Node{NodeInfo: wire.NodeInfo{ID: name, Name: name, Active: true, Virtualizations: []string{"container", "unikernel"},
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}, Reserved: wire.Resources{MemoryMB: reservedMB}, Capabilities: caps}}
	}
	nodes := []Node{node("emulated", 3000), node("kvm", 0, wire.CapabilityKVM)}
	for _, c := range []struct{ virt, want string }{{"unikernel", "kvm"}, {"container", "emulated"}} {
		p, err := PickNode("c", nodes, wire.InstanceSpec{Key: "s.0", Virtualization: c.virt, Resources: wire.Resources{MemoryMB: 128}})
		if err != nil || p.NodeName != c.want {
			t.Errorf("%s: placed on %+v (%v), want %s", c.virt, p, err, c.want)
		}
	}
}
