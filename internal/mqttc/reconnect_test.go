package mqttc_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/pki"
)

// lockedBuffer is a log sink for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsBroker runs a mochi broker over TLS on addr with a certificate of a
// new CA; it returns how to stop it early, the CA and its address.
func tlsBroker(t *testing.T, addr string) (func(), *pki.CA, string) {
	t.Helper()
	ca, cert, err := pki.NewCAWithLeaf("broker CA", pki.Leaf{Name: "broker", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(mqttctest.AllowAll), nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err := srv.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = srv.Close() }) }
	t.Cleanup(stop)
	return stop, ca, ln.Address()
}

// TestReconnectRefusesAnotherCA: a client connected to a broker it
// verified refuses, when it reconnects, a broker of another CA at the same
// address (a man in the middle after the first connection), and says so
// as an error.
func TestReconnectRefusesAnotherCA(t *testing.T) {
	first, ca, addr := tlsBroker(t, "127.0.0.1:0")
	var logs lockedBuffer
	c, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{URL: "mqtts://" + addr, TLS: pki.PinnedClient(ca.Pin(), "127.0.0.1"),
		ClientID: "n", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first()
	tlsBroker(t, addr)                           // another CA, same address
	deadline := time.Now().Add(30 * time.Second) // paho backs off up to 5 s between tries
	for !strings.Contains(logs.String(), "failed TLS verification at a reconnection") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged at the reconnection:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Connected() {
		t.Error("connected to the broker of another CA")
	}
	if !strings.Contains(logs.String(), "not issued by the pinned CA") {
		t.Errorf("the refusal does not say why:\n%s", logs.String())
	}
}
