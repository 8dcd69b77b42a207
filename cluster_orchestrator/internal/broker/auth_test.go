package broker

import (
	"crypto/x509"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// badIDAuth accepts anyone and makes them the node named by the username,
// so that the hook's own checks of node IDs can be tested.
type badIDAuth struct{}

func (badIDAuth) Authenticate(username string, _ []byte, _ *x509.Certificate) (Principal, bool) {
	return Principal{NodeID: username}, true
}

func connectPacket(user, password, willTopic string) packets.Packet {
	var pk packets.Packet
	pk.Connect.Username, pk.Connect.UsernameFlag = []byte(user), user != ""
	pk.Connect.Password, pk.Connect.PasswordFlag = []byte(password), password != ""
	if willTopic != "" {
		pk.Connect.WillFlag, pk.Connect.WillTopic = true, willTopic
	}
	return pk
}

func TestAuthenticate(t *testing.T) {
	cases := []struct {
		name     string
		auth     Authenticator
		clientID string
		user, pw string
		will     string
		ok       bool
	}{
		{"node", newStubAuth(), "thicket-node-n1", "n1", "pw-n1", "", true},
		{"manager, any client id", newStubAuth(), "cluster-manager", "manager", "pw-manager", "", true},
		{"anonymous", newStubAuth(), "thicket-node-n1", "", "", "", false},
		{"wrong password", newStubAuth(), "thicket-node-n1", "n1", "pw-n2", "", false},
		{"node, another node's client id", newStubAuth(), "thicket-node-n2", "n1", "pw-n1", "", false},
		{"node, client id = node id", newStubAuth(), "n1", "n1", "pw-n1", "", false},
		{"node, the manager's client id", newStubAuth(), "thicket-cluster-c1", "n1", "pw-n1", "", false},
		{"node, will on own report", newStubAuth(), "thicket-node-n1", "n1", "pw-n1", "thicket/node/n1/report", true},
		{"node, will on foreign report", newStubAuth(), "thicket-node-n1", "n1", "pw-n1", "thicket/node/n2/report", false},
		{"node, will on own desired", newStubAuth(), "thicket-node-n1", "n1", "pw-n1", "thicket/node/n1/desired", false},
		{"manager, will under thicket/", newStubAuth(), "m", "manager", "pw-manager", "thicket/cluster/status", true},
		{"manager, will elsewhere", newStubAuth(), "m", "manager", "pw-manager", "other", false},
		{"node id with +", badIDAuth{}, "thicket-node-+", "+", "x", "", false},
		{"node id with #", badIDAuth{}, "thicket-node-#", "#", "x", "", false},
		{"node id with /", badIDAuth{}, "thicket-node-a/b", "a/b", "x", "", false},
		{"plain node id", badIDAuth{}, "thicket-node-edge-7", "edge-7", "x", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newAuthHook(tc.auth, quiet)
			cl := &mqtt.Client{ID: tc.clientID}
			if got := h.OnConnectAuthenticate(cl, connectPacket(tc.user, tc.pw, tc.will)); got != tc.ok {
				t.Fatalf("OnConnectAuthenticate = %v, want %v", got, tc.ok)
			}
			if _, stored := h.sessions[tc.clientID]; stored != tc.ok {
				t.Fatalf("session stored = %v, want %v", stored, tc.ok)
			}
		})
	}
}

func TestACL(t *testing.T) {
	h := newAuthHook(newStubAuth(), quiet)
	n1, mgr := &mqtt.Client{ID: "thicket-node-n1"}, &mqtt.Client{ID: "mgr"}
	if !h.OnConnectAuthenticate(n1, connectPacket("n1", "pw-n1", "")) ||
		!h.OnConnectAuthenticate(mgr, connectPacket("manager", "pw-manager", "")) {
		t.Fatal("setup: authentication failed")
	}
	cases := []struct {
		cl    *mqtt.Client
		topic string
		write bool
		ok    bool
	}{
		{n1, "thicket/node/n1/desired", false, true},
		{n1, "thicket/node/n1/report", true, true},
		{n1, "thicket/node/n1/desired", true, false},
		{n1, "thicket/node/n1/report", false, false},
		{n1, "thicket/node/n2/desired", false, false},
		{n1, "thicket/node/n2/report", true, false},
		{n1, "thicket/node/+/desired", false, false},
		{n1, "thicket/node/n1/+", false, false},
		{n1, "thicket/#", false, false},
		{n1, "#", false, false},
		{n1, "thicket/node/n1/desired/x", false, false},
		{n1, "thicket/node/n1", false, false},
		{mgr, "thicket/node/+/report", false, true},
		{mgr, "thicket/#", false, true},
		{mgr, "thicket", false, true},
		{mgr, "thicket/node/n7/desired", true, true},
		{mgr, "#", false, false},
		{mgr, "$SYS/#", false, false},
		{mgr, "thicketx/a", true, false},
		{mgr, "other/thicket/a", true, false},
		{&mqtt.Client{ID: "thicket-node-n1"}, "thicket/node/n1/desired", false, false}, // another client object with n1's ID
		{&mqtt.Client{ID: "stranger"}, "thicket/node/n1/desired", false, false},
	}
	for _, tc := range cases {
		if got := h.OnACLCheck(tc.cl, tc.topic, tc.write); got != tc.ok {
			t.Errorf("client %s topic %q write %v: got %v, want %v", tc.cl.ID, tc.topic, tc.write, got, tc.ok)
		}
	}

	// A client that ends its session loses its rights, but not a newer
	// client that took its ID over.
	n1b := &mqtt.Client{ID: "thicket-node-n1"}
	if !h.OnConnectAuthenticate(n1b, connectPacket("n1", "pw-n1", "")) {
		t.Fatal("reconnect refused")
	}
	h.OnDisconnect(n1, nil, true)
	if !h.OnACLCheck(n1b, "thicket/node/n1/report", true) {
		t.Fatal("the old client's disconnect removed the new client's session")
	}
	if h.OnACLCheck(n1, "thicket/node/n1/report", true) {
		t.Fatal("the old client kept its rights")
	}
	h.OnDisconnect(n1b, nil, false) // persistent session: kept
	if !h.OnACLCheck(n1b, "thicket/node/n1/desired", false) {
		t.Fatal("a persistent session lost its rights at disconnect")
	}
	h.OnClientExpired(n1b)
	if h.OnACLCheck(n1b, "thicket/node/n1/desired", false) {
		t.Fatal("an expired session kept its rights")
	}
}

// TestACLCheckAllocs: the ACL check runs for every publish and every
// delivery; it must not allocate.
func TestACLCheckAllocs(t *testing.T) {
	h := newAuthHook(newStubAuth(), quiet)
	n1 := &mqtt.Client{ID: "thicket-node-n1"}
	h.OnConnectAuthenticate(n1, connectPacket("n1", "pw-n1", ""))
	mgr := &mqtt.Client{ID: "mgr"}
	h.OnConnectAuthenticate(mgr, connectPacket("manager", "pw-manager", ""))
	topic := "thicket/node/n1/report"
	allocs := testing.AllocsPerRun(1000, func() {
		if !h.OnACLCheck(n1, topic, true) || !h.OnACLCheck(mgr, topic, false) {
			t.Fatal("denied")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per check, want 0", allocs)
	}
}

// BenchmarkACLCheck is the hook's cost for one report: the publisher's
// write check and the manager's read check on delivery.
func BenchmarkACLCheck(b *testing.B) {
	h := newAuthHook(newStubAuth(), quiet)
	n1 := &mqtt.Client{ID: "thicket-node-n1"}
	h.OnConnectAuthenticate(n1, connectPacket("n1", "pw-n1", ""))
	mgr := &mqtt.Client{ID: "mgr"}
	h.OnConnectAuthenticate(mgr, connectPacket("manager", "pw-manager", ""))
	topic := "thicket/node/n1/report"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.OnACLCheck(n1, topic, true)
			h.OnACLCheck(mgr, topic, false)
		}
	})
}
