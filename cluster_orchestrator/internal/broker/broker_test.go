package broker

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
)

// stubAuth is a node registry of three clients: nodes n1 and n2 and the
// manager. revoke removes one.
type stubAuth struct {
	mu    sync.Mutex
	users map[string]stubUser
}

type stubUser struct {
	password string
	p        Principal
}

func newStubAuth() *stubAuth {
	return &stubAuth{users: map[string]stubUser{
		"n1":      {"pw-n1", Principal{NodeID: "n1"}},
		"n2":      {"pw-n2", Principal{NodeID: "n2"}},
		"manager": {"pw-manager", Principal{Manager: true}},
	}}
}

func (a *stubAuth) Authenticate(username string, password []byte, _ *x509.Certificate) (Principal, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[username]
	if !ok || u.password != string(password) {
		return Principal{}, false
	}
	return u.p, true
}

func (a *stubAuth) revoke(username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, username)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startBroker(t *testing.T, auth Authenticator) (*Broker, string) {
	t.Helper()
	b, err := New(Config{Listen: "127.0.0.1:0", Auth: auth, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %q is not the bound address", b.Addr())
	}
	return b, "tcp://" + b.Addr()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url, user, password string, onConnect func(*mqttc.Client)) *mqttc.Client {
	t.Helper()
	clientID := "thicket-cluster-test"
	if user != "manager" {
		clientID = mqttc.NodeClientID(user)
	}
	c, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{
		URL: url, ClientID: clientID, Username: user, Password: password, Logger: quiet, OnConnect: onConnect,
	})
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(c.Close)
	return c
}

// subscriber is an OnConnect that subscribes to topic. A failure shows as
// a message that never arrives (OnConnect runs on paho's goroutines, where
// the test may already have ended).
func subscriber(topic string, in inbox) func(*mqttc.Client) {
	return func(c *mqttc.Client) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Subscribe(ctx, topic, 1, in.handler)
	}
}

type msg struct{ topic, payload string }

type inbox chan msg

func (in inbox) handler(topic string, payload []byte) {
	select {
	case in <- msg{topic, string(payload)}:
	default:
	}
}

func (in inbox) want(t *testing.T, m msg) {
	t.Helper()
	select {
	case got := <-in:
		if got != m {
			t.Fatalf("got %+v, want %+v", got, m)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("did not receive %+v within 10s", m)
	}
}

// none checks that nothing arrives within a short while. Callers first
// wait for a message sent after the forbidden one on the same path, so
// the wait only has to cover a reordering that should not happen.
func (in inbox) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-in:
		t.Fatalf("unexpected message %+v", got)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestConnectRefused(t *testing.T) {
	_, url := startBroker(t, newStubAuth())
	cases := []struct {
		name string
		o    mqttc.Options
	}{
		{"anonymous", mqttc.Options{ClientID: mqttc.NodeClientID("n1")}},
		{"wrong password", mqttc.Options{ClientID: mqttc.NodeClientID("n1"), Username: "n1", Password: "pw-n2"}},
		{"unknown user", mqttc.Options{ClientID: mqttc.NodeClientID("n9"), Username: "n9", Password: "pw-n1"}},
		{"empty password", mqttc.Options{ClientID: mqttc.NodeClientID("n1"), Username: "n1"}},
		// A node may only use mqttc.NodeClientID: otherwise it could take
		// over another node's session.
		{"another node's client id", mqttc.Options{ClientID: mqttc.NodeClientID("n2"), Username: "n1", Password: "pw-n1"}},
		{"client id = node id", mqttc.Options{ClientID: "n1", Username: "n1", Password: "pw-n1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.URL, tc.o.Logger = url, quiet
			start := time.Now()
			c, err := mqttc.Connect(ctxT(t, 10*time.Second), tc.o)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, mqttc.ErrNotAuthorized) {
				t.Fatalf("got %v, want ErrNotAuthorized", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v: a refusal must not be retried", d)
			}
		})
	}
}

// TestRetainedDesired: the manager publishes n1's desired set before n1
// connects; n1 receives it when it subscribes.
func TestRetainedDesired(t *testing.T) {
	_, url := startBroker(t, newStubAuth())
	mgr := connect(t, url, "manager", "pw-manager", nil)
	publishDesired(t, mgr, wire.DesiredTopic("n1"), "desired-1")
	in := make(inbox, 10)
	connect(t, url, "n1", "pw-n1", subscriber(wire.DesiredTopic("n1"), in))
	in.want(t, msg{wire.DesiredTopic("n1"), "desired-1"})

	publishDesired(t, mgr, wire.DesiredTopic("n1"), "desired-2")
	in.want(t, msg{wire.DesiredTopic("n1"), "desired-2"})
}

// TestSubscribeACL: n1 may subscribe to nothing but its own desired topic;
// refused subscriptions deliver nothing, retained or live.
func TestSubscribeACL(t *testing.T) {
	_, url := startBroker(t, newStubAuth())
	mgr := connect(t, url, "manager", "pw-manager", nil)
	publishDesired(t, mgr, wire.DesiredTopic("n2"), "n2-retained")
	n1In, n2In := make(inbox, 10), make(inbox, 10)
	n1 := connect(t, url, "n1", "pw-n1", nil)
	connect(t, url, "n2", "pw-n2", subscriber(wire.DesiredTopic("n2"), n2In))
	n2In.want(t, msg{wire.DesiredTopic("n2"), "n2-retained"})

	for _, filter := range []string{
		wire.DesiredTopic("n2"),
		wire.ReportTopic("n1"), // its own, but write-only
		wire.ReportTopic("n2"),
		"thicket/#",
		"#",
		"+/node/n1/desired",
		"thicket/node/+/desired",
		"thicket/node/n1/#",
		"$SYS/#",
		"$share/g/" + wire.DesiredTopic("n1"),
	} {
		err := n1.Subscribe(ctxT(t, 5*time.Second), filter, 1, n1In.handler)
		if !errors.Is(err, mqttc.ErrSubscriptionRefused) {
			t.Errorf("n1 subscribe %q: got %v, want ErrSubscriptionRefused", filter, err)
		}
	}
	publishDesired(t, mgr, wire.DesiredTopic("n2"), "n2-live")
	n2In.want(t, msg{wire.DesiredTopic("n2"), "n2-live"})
	n1In.none(t)
	if !n1.Connected() {
		t.Fatal("a refused subscription must not cost the connection")
	}
}

// TestPublishACL: n1 may publish only to its own report topic.
func TestPublishACL(t *testing.T) {
	_, url := startBroker(t, newStubAuth())
	reports := make(inbox, 10)
	mgr := connect(t, url, "manager", "pw-manager", nil)
	if err := mgr.Subscribe(ctxT(t, 5*time.Second), "thicket/node/+/report", 1, reports.handler); err != nil {
		t.Fatal(err)
	}
	n1In := make(inbox, 10)
	n1 := connect(t, url, "n1", "pw-n1", subscriber(wire.DesiredTopic("n1"), n1In))

	// QoS 0: a forbidden publish is dropped; the connection stays.
	for _, topic := range []string{wire.ReportTopic("n2"), wire.DesiredTopic("n1"), wire.DesiredTopic("n2"), "thicket/other", "other"} {
		if err := n1.Publish(ctxT(t, 5*time.Second), topic, 0, true, []byte("forged")); err != nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
	}
	if err := n1.Publish(ctxT(t, 5*time.Second), wire.ReportTopic("n1"), 0, false, []byte("report-1")); err != nil {
		t.Fatal(err)
	}
	reports.want(t, msg{wire.ReportTopic("n1"), "report-1"})
	reports.none(t)
	n1In.none(t) // its forged retained desired set was not stored either

	// QoS 1: mochi answers a forbidden publish of an MQTT 3.1.1 client by
	// closing the connection (the spec allows that or a silent PUBACK).
	// The publish fails; the client reconnects and works again.
	err := n1.Publish(ctxT(t, time.Second), wire.ReportTopic("n2"), 1, false, []byte("forged-qos1"))
	if err == nil {
		t.Fatal("forbidden QoS 1 publish acknowledged")
	}
	waitFor(t, "n1 reconnected", n1.Connected)
	if err := n1.Publish(ctxT(t, 5*time.Second), wire.ReportTopic("n1"), 1, false, []byte("report-2")); err != nil {
		t.Fatal(err)
	}
	reports.want(t, msg{wire.ReportTopic("n1"), "report-2"})
	reports.none(t)
}

// TestDisconnect: Disconnect drops a node's connection; it reconnects (and
// gets its retained desired set again) unless its credentials were revoked.
func TestDisconnect(t *testing.T) {
	auth := newStubAuth()
	b, url := startBroker(t, auth)
	mgr := connect(t, url, "manager", "pw-manager", nil)
	publishDesired(t, mgr, wire.DesiredTopic("n1"), "d1")
	in := make(inbox, 10)
	var connects atomic.Int32
	n1 := connect(t, url, "n1", "pw-n1", func(c *mqttc.Client) {
		connects.Add(1)
		_ = c.Subscribe(context.Background(), wire.DesiredTopic("n1"), 1, in.handler)
	})
	in.want(t, msg{wire.DesiredTopic("n1"), "d1"})
	if got := b.ConnectedClients(); got != 2 {
		t.Fatalf("ConnectedClients = %d, want 2", got)
	}

	b.Disconnect("n1")
	in.want(t, msg{wire.DesiredTopic("n1"), "d1"}) // after the automatic reconnect
	if got := connects.Load(); got != 2 {
		t.Fatalf("OnConnect ran %d times, want 2", got)
	}

	auth.revoke("n1")
	b.Disconnect("n1")
	waitFor(t, "n1 disconnected", func() bool { return !n1.Connected() && b.ConnectedClients() == 1 })
	publishDesired(t, mgr, wire.DesiredTopic("n1"), "d2")
	time.Sleep(1500 * time.Millisecond) // past the client's first reconnect attempt
	if n1.Connected() {
		t.Fatal("revoked node reconnected")
	}
	in.none(t)

	b.Disconnect("n1") // not connected: no-op
	b.Disconnect("nobody")
}

// publishDesired publishes a retained desired set as the manager and waits
// until the broker has delivered it to the current subscribers. mochi sends
// the PUBACK before it fans a message out, so a client subscribing right
// after the PUBACK could get the message twice (retained, then live). The
// broker reads a connection's packets in order, so the PUBACK of a second
// publish on the same connection marks the end of the first one's fan-out.
func publishDesired(t *testing.T, mgr *mqttc.Client, topic, payload string) {
	t.Helper()
	if err := mgr.Publish(ctxT(t, 5*time.Second), topic, 1, true, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Publish(ctxT(t, 5*time.Second), "thicket/test/barrier", 1, false, nil); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{Listen: ":0"}); err == nil {
		t.Fatal("New without Auth succeeded")
	}
	if _, err := New(Config{Auth: newStubAuth()}); err == nil {
		t.Fatal("New without Listen succeeded")
	}
	b, _ := startBroker(t, newStubAuth())
	if err := b.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	other, err := New(Config{Listen: b.Addr(), Auth: newStubAuth(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Start(); err == nil || !strings.Contains(err.Error(), b.Addr()) {
		t.Fatalf("Start on a used port: got %v", err)
	}
}

// TestCloseDisconnectsClients: Close disconnects the listener's clients and
// returns, also while clients come and go (mochi's own closer could
// deadlock then: closeSafeTCP).
func TestCloseDisconnectsClients(t *testing.T) {
	for round := range 5 {
		auth := newStubAuth()
		for _, n := range []string{"n3", "n4"} {
			auth.users[n] = stubUser{"pw-" + n, Principal{NodeID: n}}
		}
		b, url := startBroker(t, auth)
		var clients []*mqttc.Client
		for i := 1; i <= 4; i++ {
			clients = append(clients, connect(t, url, fmt.Sprintf("n%d", i), fmt.Sprintf("pw-n%d", i), nil))
		}
		waitFor(t, "4 clients connected", func() bool { return b.ConnectedClients() == 4 })
		// Clients leaving while the broker closes.
		for _, c := range clients[2:] {
			go c.Close()
		}
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return in 10 s", round)
		}
		for i, c := range clients[:2] {
			waitFor(t, fmt.Sprintf("n%d disconnected by Close", i), func() bool { return !c.Connected() })
		}
	}
}
