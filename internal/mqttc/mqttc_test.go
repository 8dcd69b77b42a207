package mqttc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

type msg struct{ topic, payload string }

func collect(ch chan msg) func(string, []byte) {
	return func(topic string, payload []byte) {
		select {
		case ch <- msg{topic, string(payload)}:
		default:
		}
	}
}

func waitMsg(t *testing.T, ch chan msg) msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return msg{}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestMosquitto checks that mqttc works against Mosquitto, the external
// broker a cluster may use instead of its embedded one: a retained message
// published before the subscriber exists reaches it, through the mqtt://
// alias, and live messages follow.
func TestMosquitto(t *testing.T) {
	url := mqttctest.StartMosquitto(t)
	alias := strings.Replace(url, "tcp://", "mqtt://", 1)

	pub, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{URL: url, ClientID: "publisher"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	topic := "thicket/node/n1/desired"
	if err := pub.Publish(ctxT(t, 5*time.Second), topic, 1, true, []byte("gen-1")); err != nil {
		t.Fatal(err)
	}

	got := make(chan msg, 10)
	connects := 0
	sub, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{
		URL: alias, ClientID: "subscriber",
		OnConnect: func(c *mqttc.Client) {
			connects++
			if err := c.Subscribe(context.Background(), topic, 1, collect(got)); err != nil {
				t.Errorf("subscribe: %v", err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if connects != 1 {
		t.Fatalf("OnConnect ran %d times before Connect returned, want 1", connects)
	}
	if m := waitMsg(t, got); m != (msg{topic, "gen-1"}) {
		t.Fatalf("retained: got %+v", m)
	}
	if err := pub.Publish(ctxT(t, 5*time.Second), topic, 1, true, []byte("gen-2")); err != nil {
		t.Fatal(err)
	}
	if m := waitMsg(t, got); m != (msg{topic, "gen-2"}) {
		t.Fatalf("live: got %+v", m)
	}
}

// TestConnectRetriesUntilContext: with nothing listening, Connect keeps
// retrying and returns the context's error.
func TestConnectRetriesUntilContext(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testharness.FreePort(t))

	start := time.Now()
	_, err := mqttc.Connect(ctxT(t, 700*time.Millisecond), mqttc.Options{URL: "tcp://" + addr, ClientID: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Fatalf("gave up after %v, before the context ended", d)
	}
}

// TestConnectWaitsForBroker: a broker that comes up while Connect retries
// is used.
func TestConnectWaitsForBroker(t *testing.T) {
	url := mqttctest.StartMosquitto(t)
	// StartMosquitto returned once it listens; a Connect started now must
	// succeed on its first or a later attempt.
	c, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Connected() {
		t.Fatal("not connected")
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, url := range []string{"", "localhost:1883", "http://h:1", "tcp://h", "tcp://u:p@h:1", "tcp://h:1/x"} {
		if _, err := mqttc.Connect(context.Background(), mqttc.Options{URL: url}); err == nil {
			t.Errorf("URL %q accepted", url)
		}
	}
}

func TestPublishTooLarge(t *testing.T) {
	url := mqttctest.StartMosquitto(t)
	c, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Publish(ctxT(t, 5*time.Second), "thicket/x", 0, false, make([]byte, mqttc.MaxPayload+1))
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("got %v", err)
	}
}

// TestMosquittoTLS: over mqtts:// the client trusts exactly the CA it is
// given (Mosquitto sends its certificate without the CA): with it, messages
// flow; with another CA, or the system's roots, nothing connects and the
// error says why; a plain client gets no MQTT answer from the TLS port.
func TestMosquittoTLS(t *testing.T) {
	m := mqttctest.StartMosquittoTLS(t, "127.0.0.1")
	tc, err := pki.CAClient(m.CAPEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttc.Connect(ctxT(t, 10*time.Second), mqttc.Options{URL: m.URL, TLS: tc, ClientID: "tls"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan msg, 1)
	if err := c.Subscribe(ctxT(t, 5*time.Second), "thicket/tls", 1, collect(got)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t, 5*time.Second), "thicket/tls", 1, false, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if m := waitMsg(t, got); m.payload != "over tls" {
		t.Fatalf("got %+v", m)
	}

	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherTLS, err := pki.CAClient(other.PEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.Replace(m.URL, "mqtts://", "tcp://", 1)
	for _, tc := range []struct {
		name string
		o    mqttc.Options
		want string
	}{
		{"another CA", mqttc.Options{URL: m.URL, TLS: otherTLS}, "not issued by the pinned CA"},
		{"system roots", mqttc.Options{URL: m.URL}, "certificate"},
		{"plain client", mqttc.Options{URL: plain}, "context deadline exceeded"},
		{"TLS config for a plain URL", mqttc.Options{URL: plain, TLS: tc}, "a TLS configuration for a plain URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqttc.Connect(ctxT(t, 1500*time.Millisecond), tc.o)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
