package broker

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
)

// TestTLSListener: with Config.TLS the broker speaks MQTT over TLS only. A
// node that pins the broker's CA connects and gets its retained desired
// set; one that pins another CA refuses the broker before it sends its
// password; a plain MQTT CONNECT gets no CONNACK.
func TestTLSListener(t *testing.T) {
	ca, cert, err := pki.NewCAWithLeaf("cluster CA", pki.Leaf{Name: "broker", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Listen: "127.0.0.1:0", Auth: newStubAuth(), Logger: quiet,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	url := "mqtts://" + b.Addr()

	dial := func(pin, user, pw string) (*mqttc.Client, error) {
		clientID := "thicket-cluster-test"
		if user != "manager" {
			clientID = mqttc.NodeClientID(user)
		}
		return mqttc.Connect(ctxT(t, 2*time.Second), mqttc.Options{URL: url, TLS: pki.PinnedClient(pin, "127.0.0.1"),
			ClientID: clientID, Username: user, Password: pw, Logger: quiet})
	}
	mgr, err := dial(ca.Pin(), "manager", "pw-manager")
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	publishDesired(t, mgr, "thicket/node/n1/desired", "set-1")
	in := make(inbox, 4)
	n1, err := mqttc.Connect(ctxT(t, 5*time.Second), mqttc.Options{URL: url, TLS: pki.PinnedClient(ca.Pin(), "127.0.0.1"),
		ClientID: mqttc.NodeClientID("n1"), Username: "n1", Password: "pw-n1", Logger: quiet, OnConnect: subscriber("thicket/node/n1/desired", in)})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	in.want(t, msg{"thicket/node/n1/desired", "set-1"})

	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dial(other.Pin(), "n2", "pw-n2"); err == nil || !strings.Contains(err.Error(), "not issued by the pinned CA") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("a node pinning another CA: %v", err)
	}

	// A plain MQTT 3.1.1 CONNECT (client id "x", no credentials): a plain
	// broker answers 0x20 (CONNACK); this one reads it as a TLS record and
	// closes, without an MQTT answer.
	conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connect := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'x'}
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	if n > 0 && buf[0] == 0x20 {
		t.Fatalf("a plain CONNECT got a CONNACK: % x", buf[:n])
	}
	if bytes.Contains(buf[:n], []byte("MQTT")) {
		t.Fatalf("plain answer % x", buf[:n])
	}
}
