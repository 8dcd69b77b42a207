package wire

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestResources(t *testing.T) {
	tests := []struct {
		name     string
		r, o     Resources
		add, sub Resources
		fits     bool
	}{
		{"zero", Resources{}, Resources{}, Resources{}, Resources{}, true},
		{"smaller", Resources{2000, 1024, 1}, Resources{500, 256, 0}, Resources{2500, 1280, 1}, Resources{1500, 768, 1}, true},
		{"equal", Resources{500, 256, 1}, Resources{500, 256, 1}, Resources{1000, 512, 2}, Resources{}, true},
		{"too much CPU", Resources{500, 1024, 1}, Resources{501, 0, 0}, Resources{1001, 1024, 1}, Resources{-1, 1024, 1}, false},
		{"too much memory", Resources{500, 1024, 1}, Resources{0, 1025, 0}, Resources{500, 2049, 1}, Resources{500, -1, 1}, false},
		{"too many vGPUs", Resources{500, 1024, 1}, Resources{0, 0, 2}, Resources{500, 1024, 3}, Resources{500, 1024, -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Add(tt.o); got != tt.add {
				t.Errorf("Add = %+v, want %+v", got, tt.add)
			}
			if got := tt.r.Sub(tt.o); got != tt.sub {
				t.Errorf("Sub = %+v, want %+v", got, tt.sub)
			}
			if got := tt.r.Fits(tt.o); got != tt.fits {
				t.Errorf("Fits = %t, want %t", got, tt.fits)
			}
		})
	}
}

func TestInstanceKey(t *testing.T) {
	tests := []struct {
		key     string
		service string
		n       int
		err     string // a part of the error, "" for none
	}{
		{"web.0", "web", 0, ""},
		{"67a1f.12", "67a1f", 12, ""},
		{"a.b.3", "a.b", 3, ""}, // the last dot splits
		{"web", "", 0, "no instance number"},
		{".3", "", 0, "no instance number"},
		{"web.", "", 0, "bad instance number"},
		{"web.x", "", 0, "bad instance number"},
		{"web.-1", "", 0, "bad instance number"},
		{"", "", 0, "no instance number"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			service, n, err := ParseInstanceKey(tt.key)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.key) {
					t.Fatalf("ParseInstanceKey(%q) = %q, %d, %v; want an error naming the key with %q", tt.key, service, n, err, tt.err)
				}
				return
			}
			if err != nil || service != tt.service || n != tt.n {
				t.Fatalf("ParseInstanceKey(%q) = %q, %d, %v; want %q, %d", tt.key, service, n, err, tt.service, tt.n)
			}
			if k := InstanceKey(service, n); k != tt.key {
				t.Errorf("InstanceKey(%q, %d) = %q, want %q", service, n, k, tt.key)
			}
		})
	}
}

func TestDisconnectPolicy(t *testing.T) {
	set := &Disconnect{Replace: false, ReplaceAfter: 30, StopAfter: 60, Reconcile: KeepReplacement}
	tests := []struct {
		name string
		spec InstanceSpec
		want Disconnect
	}{
		{"defaults", InstanceSpec{}, Disconnect{Replace: true, Reconcile: KeepOriginal}},
		{"defaults, one-shot: not replaced", InstanceSpec{OneShot: true}, Disconnect{Replace: false, Reconcile: KeepOriginal}},
		{"set", InstanceSpec{Disconnect: set}, *set},
		{"set wins over one-shot", InstanceSpec{OneShot: true, Disconnect: &Disconnect{Replace: true, Reconcile: KeepOriginal}},
			Disconnect{Replace: true, Reconcile: KeepOriginal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.DisconnectPolicy(); got != tt.want {
				t.Errorf("DisconnectPolicy = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTopics(t *testing.T) {
	if got := DesiredTopic("n-1"); got != "thicket/node/n-1/desired" {
		t.Errorf("DesiredTopic = %q", got)
	}
	if got := ReportTopic("n-1"); got != "thicket/node/n-1/report" {
		t.Errorf("ReportTopic = %q", got)
	}
}

func tcp(host, inst int) PortMapping {
	return PortMapping{HostPort: host, InstancePort: inst, Protocol: ProtocolTCP}
}

func udp(host, inst int) PortMapping {
	return PortMapping{HostPort: host, InstancePort: inst, Protocol: ProtocolUDP}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		field string
		want  []PortMapping
		err   string
	}{
		{"", nil, ""},
		{" ; ", nil, ""},
		{"80", []PortMapping{tcp(80, 80)}, ""},
		{"18080:8080", []PortMapping{tcp(18080, 8080)}, ""},
		{"53:5353/UDP; 80:8080/tcp;", []PortMapping{udp(53, 5353), tcp(80, 8080)}, ""},
		{"80/udp;80/tcp", []PortMapping{udp(80, 80), tcp(80, 80)}, ""},
		{"80:", nil, "container port is empty"},
		{"80;80:81", nil, "mapped twice"},
		{"80/sctp", nil, "not tcp or udp"},
		{"0:80", nil, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := ParsePorts(tt.field)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || got != nil {
					t.Fatalf("ParsePorts(%q) = %+v, %v; want an error with %q", tt.field, got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePorts(%q) = %+v, %v; want %+v", tt.field, got, err, tt.want)
			}
			if err := CheckPorts(got); err != nil {
				t.Errorf("CheckPorts refuses what ParsePorts gives: %v", err)
			}
		})
	}
}

func TestCheckPorts(t *testing.T) {
	tests := []struct {
		name string
		ms   []PortMapping
		err  string
	}{
		{"none", nil, ""},
		{"bounds", []PortMapping{tcp(1, 65535), udp(65535, 1)}, ""},
		{"same host port, other protocol", []PortMapping{tcp(80, 80), udp(80, 80)}, ""},
		{"same instance port twice", []PortMapping{tcp(80, 80), tcp(81, 80)}, ""},
		{"host port 0", []PortMapping{tcp(0, 80)}, "ports[0]: host port 0 is out of range"},
		{"host port too big", []PortMapping{tcp(80, 80), tcp(65536, 80)}, "ports[1]: host port 65536 is out of range"},
		{"instance port 0", []PortMapping{tcp(80, 0)}, "ports[0]: instance port 0 is out of range"},
		{"instance port negative", []PortMapping{tcp(80, -1)}, "instance port -1 is out of range"},
		{"no protocol", []PortMapping{{HostPort: 80, InstancePort: 80}}, `protocol "" is not tcp or udp`},
		{"upper-case protocol", []PortMapping{{HostPort: 80, InstancePort: 80, Protocol: "TCP"}}, `protocol "TCP" is not tcp or udp`},
		{"host port twice", []PortMapping{tcp(80, 80), udp(53, 53), tcp(80, 81)}, "ports[2]: host port 80/tcp is mapped twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPorts(tt.ms)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("CheckPorts(%+v) = %v, want %q", tt.ms, err, tt.err)
			}
		})
	}
}

func TestUsedPorts(t *testing.T) {
	if got := tcp(8080, 80).UsedPort(); got != "8080/tcp" {
		t.Errorf("UsedPort = %q", got)
	}
	if got := UsedPorts([]PortMapping{tcp(8080, 80), udp(53, 5353)}); !slices.Equal(got, []string{"8080/tcp", "53/udp"}) {
		t.Errorf("UsedPorts = %q", got)
	}
	if got := UsedPorts(nil); got != nil {
		t.Errorf("UsedPorts(nil) = %q, want nil", got)
	}
}

// TestPortMappings: a spec's ports are its parsed Ports, checked; a spec
// from a root that predates them has only the port field, which is parsed;
// with Ports set, the field is not read.
func TestPortMappings(t *testing.T) {
	tests := []struct {
		name string
		spec InstanceSpec
		want []PortMapping
		err  string
	}{
		{"none", InstanceSpec{}, nil, ""},
		{"parsed", InstanceSpec{Port: "18080:8080;53/udp", Ports: []PortMapping{tcp(18080, 8080), udp(53, 53)}},
			[]PortMapping{tcp(18080, 8080), udp(53, 53)}, ""},
		{"field only (an earlier root)", InstanceSpec{Port: "18080:8080;53/udp"}, []PortMapping{tcp(18080, 8080), udp(53, 53)}, ""},
		{"field only, bad", InstanceSpec{Port: "80:"}, nil, "container port is empty"},
		{"parsed wins over the field", InstanceSpec{Port: "not read", Ports: []PortMapping{tcp(80, 80)}}, []PortMapping{tcp(80, 80)}, ""},
		{"parsed, bad", InstanceSpec{Port: "80", Ports: []PortMapping{tcp(80, 0)}}, nil, "instance port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec.PortMappings()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || got != nil {
					t.Fatalf("PortMappings = %+v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("PortMappings = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestSameBut(t *testing.T) {
	base := func() NodeInfo {
		return NodeInfo{ID: "n1", Name: "edge-1", Arch: "arm64", Virtualizations: []string{"container", "wasm"},
			Capacity: Resources{4000, 4096, 1}, Reserved: Resources{1000, 512, 0}, UsedPorts: []string{"80/tcp"},
			CPUPercent: 12.5, MemoryPercent: 40, Address: "192.0.2.10", Active: true,
			LastSeen:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Network:      &NodeNetwork{NodeID: "n1", Subnet: "10.64.1.0/24", VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.10", PublicPort: 4789},
			Capabilities: []string{CapabilityKVM}}
	}
	tests := []struct {
		name   string
		change func(*NodeInfo)
		same   bool
	}{
		{"unchanged", func(*NodeInfo) {}, true},
		{"usage", func(n *NodeInfo) { n.CPUPercent, n.MemoryPercent = 99, 99 }, true},
		{"last seen", func(n *NodeInfo) { n.LastSeen = n.LastSeen.Add(time.Minute) }, true},
		{"network copied", func(n *NodeInfo) { c := *n.Network; n.Network = &c }, true},
		{"id", func(n *NodeInfo) { n.ID = "n2" }, false},
		{"name", func(n *NodeInfo) { n.Name = "edge-2" }, false},
		{"arch", func(n *NodeInfo) { n.Arch = "amd64" }, false},
		{"virtualizations", func(n *NodeInfo) { n.Virtualizations = []string{"container"} }, false},
		{"capacity", func(n *NodeInfo) { n.Capacity.MemoryMB++ }, false},
		{"reserved", func(n *NodeInfo) { n.Reserved.MilliCPU++ }, false},
		{"used ports", func(n *NodeInfo) { n.UsedPorts = append(n.UsedPorts, "53/udp") }, false},
		{"address", func(n *NodeInfo) { n.Address = "192.0.2.11" }, false},
		{"active", func(n *NodeInfo) { n.Active = false }, false},
		{"network", func(n *NodeInfo) { c := *n.Network; c.PublicPort = 4790; n.Network = &c }, false},
		{"network gone", func(n *NodeInfo) { n.Network = nil }, false},
		{"capabilities", func(n *NodeInfo) { n.Capabilities = nil }, false},
		{"not ready", func(n *NodeInfo) { n.NotReady = "no net manager" }, false},
		{"coordinate", func(n *NodeInfo) { n.Coordinate = &Coordinate{Vec: []float64{1}} }, true},
		{"location", func(n *NodeInfo) { n.Location = "munich" }, false},
		{"probe port", func(n *NodeInfo) { c := *n.Network; c.ProbePort = 51822; n.Network = &c }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.change(&b)
			if got := a.SameBut(b); got != tt.same {
				t.Errorf("a.SameBut(b) = %t, want %t", got, tt.same)
			}
			if got := b.SameBut(a); got != tt.same {
				t.Errorf("b.SameBut(a) = %t, want %t", got, tt.same)
			}
		})
	}
}

func TestSameNetwork(t *testing.T) {
	n := &NodeNetwork{NodeID: "n1", Subnet: "10.64.1.0/24"}
	c := *n
	other := &NodeNetwork{NodeID: "n1", Subnet: "10.64.2.0/24"}
	tests := []struct {
		name string
		a, b *NodeNetwork
		want bool
	}{
		{"both absent", nil, nil, true},
		{"one absent", n, nil, false},
		{"other absent", nil, n, false},
		{"same", n, n, true},
		{"equal copies", n, &c, true},
		{"different", n, other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameNetwork(tt.a, tt.b); got != tt.want {
				t.Errorf("SameNetwork = %t, want %t", got, tt.want)
			}
		})
	}
}

// Fully set values of the messages, for the round trips.
var (
	at = time.Date(2026, 12, 6, 1, 2, 3, 400_000_000, time.UTC)

	fullSpec = InstanceSpec{Key: "web.3", ServiceID: "web", InstanceNumber: 3, ApplicationName: "shop", ApplicationNamespace: "prod",
		MicroserviceName: "web", MicroserviceNamespace: "prod", Virtualization: "container", Code: "docker.io/library/nginx:latest",
		Arch: []string{"amd64", "arm64"}, Cmd: []string{"nginx", "-g", "daemon off;"}, Environment: []string{"A=1"},
		Port: "18080:80;53/udp", Resources: Resources{1000, 128, 1}, OneShot: true,
		Constraints: []Constraint{{Type: "direct", Node: "edge-1;edge-2", Cluster: "c1", Allowed: []string{"c1", "c2"},
			Area: "munich", Location: "48.1,11.5", Threshold: 20, Rigidness: 0.9, ConvergenceTime: 300, Service: "db"}},
		RRIP: "10.30.0.5", ClosestIP: "10.30.0.6", Labels: map[string]string{"team": "edge"},
		Disconnect: &Disconnect{Replace: true, ReplaceAfter: 30, StopAfter: 600, Reconcile: KeepReplacement},
		Security:   &Security{Privileged: true, CapAdd: []string{"CAP_NET_ADMIN"}, PidsLimit: 100, Compat32: true},
		Implementations: []Implementation{{Name: "va-wasm", Virtualization: "wasm", Code: "https://h/m.wasm", Arch: []string{"amd64"},
			Cmd: []string{"run"}, Resources: Resources{MilliCPU: 100, MemoryMB: 64, VGPUs: 1}}},
		NodeSelector: map[string]string{"zone": "a"},
		Completions:  4, Retries: 6, Ended: StatusCompleted,
		Ports: []PortMapping{tcp(18080, 80), udp(53, 53)},
		Jobs:  []string{"cam-1", "cam-2"}, JobsLease: 30,
		JobGrant: &JobGrant{Version: 4, Jobs: []string{"cam-2"}, LeaseS: 30, PoolSize: 2}}
	fullStatus = InstanceStatus{Key: "web.3", Status: StatusRunning, Detail: "up", Node: "edge-1", NodeID: "n1",
		HostIP: "192.0.2.10", HostPort: 18080, InstanceIP: "10.64.1.2", ExitCode: 137, Restarts: 2, StartedAt: at,
		CPUPercent: 3.5, MemoryMB: 42, Logs: "listening\n", JobsVersion: 4, Jobs: []string{"cam-2"}, RestartAt: at.Add(4 * time.Second),
		Implementation: "va-wasm", Choice: []string{"va-wasm (wasm): chosen (node n1)"}}
	fullEvent     = Event{Key: "web.3", Time: at, Source: "node", Message: "exited with code 3"}
	fullNodeToken = NodeToken{ID: "ab12cd34", Hash: "ab12cd34ef", ExpiresAt: &at, SingleUse: true, NodeName: "w1", UsedAt: &at, UsedBy: "w1"}
	fullNetwork   = NodeNetwork{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.1.0/24", VTEPMAC: "02:00:00:00:00:01",
		PublicIP: "192.0.2.10", PublicPort: 4789, ProbePort: 51822}
	fullCoord = Coordinate{Vec: []float64{0.001, -0.002}, Error: 0.4, Adjustment: -0.0001, Height: 0.00002}
	fullNode  = NodeInfo{ID: "n1", Name: "edge-1", Arch: "arm64", Virtualizations: []string{"container", "unikernel"},
		Capacity: Resources{4000, 4096, 1}, Reserved: Resources{1000, 128, 1}, UsedPorts: []string{"18080/tcp"},
		CPUPercent: 12.5, MemoryPercent: 40.25, Address: "192.0.2.10", Active: true, LastSeen: at, Network: &fullNetwork,
		Capabilities: []string{CapabilityKVM}, NotReady: "net manager does not answer", Labels: map[string]string{"zone": "a"},
		Coordinate: &fullCoord, Location: "48.14,11.58"}
	fullOverlay = Network{Peers: []NodeNetwork{fullNetwork},
		Services: []ServiceRoute{{IP: "10.30.0.5", Mode: RouteRoundRobin, ServiceID: "web",
			Backends: []Backend{{IP: "10.64.1.2", NodeID: "n1", ClusterID: "c1"}},
			Tenant:   "alice", AllowUsers: []string{"bob"}, AllowServices: []string{"cart"}}}}
)

// messages are one fully set value of each message type.
var messages = []any{
	fullSpec,
	fullStatus,
	fullNode,
	NodeRegisterRequest{Version: Version, Name: "edge-1", Arch: "arm64", Virtualizations: []string{"wasm"}, Labels: map[string]string{"zone": "a"},
		Capacity: Resources{4000, 4096, 2}, Address: "192.0.2.10", Subnet: "10.64.1.0/24", NodeID: "n1", Credential: "secret",
		CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"},
	NodeRegisterResponse{NodeID: "n1", MQTTURL: "mqtt://192.0.2.1:1883", MQTTUsername: "n1", MQTTPassword: "secret",
		DesiredTopic: DesiredTopic("n1"), ReportTopic: ReportTopic("n1"), ReportIntervalMS: 5000,
		MQTTCAPEM: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n", CertPEM: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"},
	NodeCertificateRequest{Version: Version, CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"},
	NodeCertificateResponse{NodeID: "n1", CertPEM: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"},
	NodeDesired{Version: Version, Generation: 7, Instances: []InstanceSpec{fullSpec}, Subnet: "10.64.1.0/24",
		ClusterID: "c1", Network: fullOverlay, Removed: []string{"web.1"}},
	NodeReport{Version: Version, NodeID: "n1", Time: at, Node: fullNode, Generation: 7,
		Instances: []InstanceStatus{fullStatus}, Full: true, Events: []Event{fullEvent}},
	ClusterRegisterRequest{Version: Version, Name: "c1", Location: "lab", Address: "192.0.2.1", Port: 10100, Credential: "c-1.secret",
		CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"},
	ClusterRegisterResponse{ClusterID: "c-1", Credential: "cred", Block: "10.64.0.0/16", CertPEM: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"},
	ClusterCertificateRequest{Version: Version, CSRPEM: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"},
	ClusterCertificateResponse{CertPEM: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"},
	ClusterSync{Version: Version, Nodes: []NodeInfo{fullNode}, Instances: []InstanceStatus{fullStatus}, Generation: 9,
		Delta: true, Epoch: "e1", GoneNodes: []string{"n9"}, WantBlocks: 1, Events: []Event{fullEvent},
		NodeTokenUses: []NodeTokenUse{{ID: "ab12cd34", Node: "w1", At: at}}, CAPin: "sha256:00",
		Coordinate: &fullCoord, Location: "munich"},
	ClusterSyncAck{Version: Version, Epoch: "e1", Resync: true, SyncIntervalMS: 2000},
	ClusterDesired{Version: Version, Generation: 9, Epoch: "e1", Delta: true, Instances: []InstanceSpec{fullSpec},
		Removed: []string{"web.1"}, NetworkUnchanged: true, SyncIntervalMS: 2000, Block: "10.64.0.0/16",
		Blocks: []string{"10.64.0.0/16", "10.65.0.0/16"}, Network: fullOverlay, DeletedNodes: []string{"n9"},
		NodeTokens: []NodeToken{fullNodeToken}, CordonedNodes: []string{"n7"}, DrainedNodes: []string{"n8"}},
}

// unset returns the paths of the fields of v that hold their zero value,
// looking into structs, pointers and the first element of slices.
func unset(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return unset(v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				return []string{path}
			}
			return nil
		}
		var out []string
		for i := range v.NumField() {
			out = append(out, unset(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		return unset(v.Index(0), path+"[0]")
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// TestRoundTrip: every message, every field set, comes back from JSON as
// it was: no field lacks its tag or is dropped.
func TestRoundTrip(t *testing.T) {
	for _, m := range messages {
		typ := reflect.TypeOf(m)
		t.Run(typ.Name(), func(t *testing.T) {
			// The table must set every field, or a new one would go untested.
			if zero := unset(reflect.ValueOf(m), typ.Name()); len(zero) > 0 {
				t.Fatalf("the test's value leaves fields unset: %s", strings.Join(zero, ", "))
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(typ)
			if err := json.Unmarshal(b, got.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), m) {
				t.Errorf("round trip through %s\ngave %+v\nwant %+v", b, got.Elem().Interface(), m)
			}
		})
	}
}

// TestZeroValues: a message with nothing set decodes to itself, and leaves
// out what is optional (omitempty/omitzero); the fields every decoder of an
// earlier version expects are there.
func TestZeroValues(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{InstanceSpec{}, `{"key":"","service_id":"","instance_number":0,"app_name":"","app_ns":"","service_name":"",` +
			`"service_ns":"","virtualization":"","code":"","resources":{"milli_cpu":0,"memory_mb":0,"vgpus":0}}`},
		{InstanceStatus{}, `{"key":"","status":""}`},
		{Disconnect{}, `{"replace":false,"reconcile":""}`},
		{NodeReport{}, `{"version":"","node_id":"","time":"0001-01-01T00:00:00Z","node":{"id":"","name":"","arch":"",` +
			`"virtualizations":null,"capacity":{"milli_cpu":0,"memory_mb":0,"vgpus":0},"reserved":{"milli_cpu":0,"memory_mb":0,"vgpus":0},` +
			`"cpu_percent":0,"memory_percent":0,"active":false},"generation":0,"instances":null}`},
		{ClusterSyncAck{}, `{"version":"","epoch":"","sync_interval_ms":0}`},
		{Network{}, `{"peers":null,"services":null}`},
	}
	for _, tt := range tests {
		t.Run(reflect.TypeOf(tt.v).Name(), func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("encoded\n%s\nwant\n%s", b, tt.want)
			}
			got := reflect.New(reflect.TypeOf(tt.v))
			if err := json.Unmarshal(b, got.Interface()); err != nil || !reflect.DeepEqual(got.Elem().Interface(), tt.v) {
				t.Errorf("decoded %+v, %v; want %+v", got.Elem().Interface(), err, tt.v)
			}
		})
	}
}

// TestEarlierRoot: a cluster's desired set as a root of an earlier version
// of the protocol sent it (no parsed ports, no disconnect policy, no
// delta fields) decodes, with the port field parsed and the default
// policy; a spec of this version still carries the port field as written,
// for the clusters and nodes of earlier versions.
func TestEarlierRoot(t *testing.T) {
	const earlier = `{"version":"v1","generation":4,"instances":[{"key":"web.0","service_id":"web","instance_number":0,
		"app_name":"shop","app_ns":"prod","service_name":"web","service_ns":"prod","virtualization":"container",
		"code":"nginx","port":"18080:80;53/udp","resources":{"milli_cpu":1000,"memory_mb":64,"vgpus":0}}],
		"sync_interval_ms":2000,"block":"10.64.0.0/16","network":{"peers":[],"services":[]}}`
	var d ClusterDesired
	if err := json.Unmarshal([]byte(earlier), &d); err != nil {
		t.Fatal(err)
	}
	want := ClusterDesired{Version: Version, Generation: 4, SyncIntervalMS: 2000, Block: "10.64.0.0/16",
		Network: Network{Peers: []NodeNetwork{}, Services: []ServiceRoute{}},
		Instances: []InstanceSpec{{Key: "web.0", ServiceID: "web", ApplicationName: "shop", ApplicationNamespace: "prod",
			MicroserviceName: "web", MicroserviceNamespace: "prod", Virtualization: "container", Code: "nginx",
			Port: "18080:80;53/udp", Resources: Resources{1000, 64, 0}}}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("decoded %+v\nwant %+v", d, want)
	}
	spec := &d.Instances[0]
	if ms, err := spec.PortMappings(); err != nil || !reflect.DeepEqual(ms, []PortMapping{tcp(18080, 80), udp(53, 53)}) {
		t.Errorf("PortMappings = %+v, %v", ms, err)
	}
	if p := spec.DisconnectPolicy(); p != (Disconnect{Replace: true, Reconcile: KeepOriginal}) {
		t.Errorf("DisconnectPolicy = %+v, want the defaults", p)
	}

	// This version sends both: an earlier tier reads "port".
	b, err := json.Marshal(fullSpec)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	if string(keys["port"]) != `"18080:80;53/udp"` ||
		string(keys["ports"]) != `[{"host_port":18080,"instance_port":80,"protocol":"tcp"},{"host_port":53,"instance_port":53,"protocol":"udp"}]` {
		t.Errorf("port %s, ports %s", keys["port"], keys["ports"])
	}
}

// TestMalformed: JSON that is not a message of the type is refused, not
// half-decoded into something a tier would act on.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name string
		into any
		data string
	}{
		{"not JSON", &NodeDesired{}, `{"version":"v1",`},
		{"instances not a list", &NodeDesired{}, `{"version":"v1","instances":{}}`},
		{"generation a string", &ClusterDesired{}, `{"generation":"4"}`},
		{"ports the old text where the list goes", &InstanceSpec{}, `{"key":"web.0","ports":"80:80"}`},
		{"port a number", &InstanceSpec{}, `{"key":"web.0","port":80}`},
		{"host port a string", &PortMapping{}, `{"host_port":"80"}`},
		{"time not a time", &NodeReport{}, `{"time":"yesterday"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(tt.data), tt.into); err == nil {
				t.Errorf("decoded %s into %+v", tt.data, tt.into)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	// Every message that crosses a tier on its own names the version.
	for _, m := range []any{NodeRegisterRequest{}, NodeDesired{}, NodeReport{}, ClusterRegisterRequest{}, ClusterSync{},
		ClusterSyncAck{}, ClusterDesired{}, ClusterCertificateRequest{}} {
		f, ok := reflect.TypeOf(m).FieldByName("Version")
		if !ok || f.Tag.Get("json") != "version" {
			t.Errorf("%T: no version field (%v)", m, f.Tag)
		}
	}
	if Version != "v1" {
		t.Errorf("Version = %q: a new major version needs new compatibility notes and tests", Version)
	}
}

// FuzzCheckPorts: whatever port field ParsePorts accepts gives mappings
// that CheckPorts accepts, each taking its own entry of UsedPorts, and a
// spec carrying them parsed publishes what one carrying only the field does.
func FuzzCheckPorts(f *testing.F) {
	for _, s := range []string{"", "80", "18080:8080;53/udp", "80/udp;80/tcp", "1:65535/TCP;", "80;80", "0", "x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		ms, err := ParsePorts(field)
		if err != nil {
			return
		}
		if err := CheckPorts(ms); err != nil {
			t.Fatalf("ParsePorts(%q) = %+v, which CheckPorts refuses: %v", field, ms, err)
		}
		used := UsedPorts(ms)
		if len(used) != len(ms) || len(slices.Compact(slices.Sorted(slices.Values(used)))) != len(ms) {
			t.Fatalf("UsedPorts(%+v) = %q: not one distinct entry per mapping", ms, used)
		}
		legacy := InstanceSpec{Port: field}
		parsed := InstanceSpec{Port: field, Ports: ms}
		a, errA := legacy.PortMappings()
		b, errB := parsed.PortMappings()
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("field %q: from the field %+v, %v; parsed %+v, %v", field, a, errA, b, errB)
		}
	})
}

func TestEvents(t *testing.T) {
	long := Event{Message: strings.Repeat("é", MaxEventMessage)}.Bounded()
	if len(long.Message) > MaxEventMessage || !utf8.ValidString(long.Message) {
		t.Errorf("a bounded message is %d bytes, valid UTF-8 %v", len(long.Message), utf8.ValidString(long.Message))
	}
	var q []Event
	for i := range 5 {
		q = AppendEvents(q, 3, Event{Message: strconv.Itoa(i)})
	}
	if len(q) != 3 || q[0].Message != "2" || q[2].Message != "4" {
		t.Errorf("a queue bounded to 3 keeps %v, want the newest three", q)
	}
}
