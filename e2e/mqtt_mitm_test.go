package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestExternalMosquittoMITM: a cluster on an external Mosquitto over TLS
// (--mqtt-url mqtts://user:password@..., --mqtt-ca-file) and its node
// refuse a man in the middle: another Mosquitto over TLS with a
// certificate of another CA for the same address.
//   - When the path to the broker is redirected to it, the running
//     cluster and node fail its TLS verification at their reconnection,
//     say so, and send it no credentials; a plain read of the path shows
//     neither the broker password nor the node's.
//   - A cluster started against it with the real broker's CA does not
//     start serving: it says the broker failed TLS verification.
func TestExternalMosquittoMITM(t *testing.T) {
	s := newSystem(t)
	real := mqttctest.StartMosquittoTLS(t, bridgeAddr)
	fake := mqttctest.StartMosquittoTLS(t, bridgeAddr)
	realAddr, fakeAddr := strings.TrimPrefix(real.URL, "mqtts://"), strings.TrimPrefix(fake.URL, "mqtts://")
	path := startRecordingProxy(t, net.JoinHostPort(bridgeAddr, "0"), realAddr)
	brokerPassword := "broker-pw-" + randomHex(t)
	c := s.addClusterWith(testharness.ClusterOptions{Name: "mq", Bind: "0.0.0.0",
		MQTTURL: "mqtts://thicket:" + brokerPassword + "@" + path.ln.Addr().String(), MQTTCAFile: real.CAFile})
	n := s.addNode(c, "m1", 61, 512, c.nodeToken)
	s.waitNodes(map[string]int{"mq": 1})
	nodePassword := mqttPassword(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path.redirect(fakeAddr)
	for who, p := range map[string]*proc{"cluster": c.proc, "node": n.proc} {
		if err := p.WaitOutput(ctx, 30*time.Second, "failed TLS verification at a reconnection; not sending credentials"); err != nil {
			t.Errorf("the %s did not refuse the man in the middle: %v", who, err)
		}
	}
	seen := path.recorded()
	if len(seen) < 1024 || !bytes.Contains(seen, []byte{0x16, 0x03}) {
		t.Fatalf("%d bytes recorded, no TLS handshake: the test saw no traffic", len(seen))
	}
	if bytes.Contains(seen, []byte(brokerPassword)) {
		t.Error("the broker password crossed the path in clear")
	}
	if bytes.Contains(seen, []byte(nodePassword)) {
		t.Error("the node's MQTT password crossed the path in clear")
	}

	// A cluster started against the man in the middle does not run.
	dir := t.TempDir()
	bctx, bcancel := context.WithTimeout(context.Background(), time.Minute)
	defer bcancel()
	_, err := bin.StartCluster(bctx, s.started, testharness.ClusterOptions{Name: "mqbad", Advertise: bridgeAddr, DataDir: filepath.Join(dir, "data"),
		MQTTURL: "mqtts://thicket:" + brokerPassword + "@" + fakeAddr, MQTTCAFile: real.CAFile, LogDir: dir, Timeout: 8 * time.Second})
	if err == nil {
		t.Fatal("a cluster started against the man in the middle runs")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "cluster-mqbad.log"))
	if !strings.Contains(string(log), "the MQTT broker failed TLS verification; not sending credentials") ||
		!strings.Contains(string(log), "certificate signed by unknown authority") {
		t.Errorf("the cluster does not say why it does not start:\n%s", testharness.Tail(string(log), 2000))
	}
}
