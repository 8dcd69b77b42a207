package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestNodeClusterTLS: between node and cluster every byte is TLS with the
// issuer the node's token pins. Each cluster listens on the bridge address
// only and advertises a second address of this machine, where a recording
// TCP proxy forwards to it, as a router on the path would see the traffic.
//
//   - A plain read of a TLS cluster's node API and broker traffic, during a
//     registration and a deploy with a secret environment variable, shows
//     no MQTT password, join token or environment secret; the same read of
//     a cluster run with --insecure-plaintext shows them (so the read
//     works, and the development flag still runs a system).
//   - A man in the middle (a server with another CA) is refused by the node
//     at registration, and at the MQTT connection, each with a message that
//     names the expected pin, and gets nothing secret.
func TestNodeClusterTLS(t *testing.T) {
	s := newSystem(t)
	proxyIP := testharness.E2ENetwork.Prefix + ".250"
	run(t, "ip", "addr", "add", proxyIP+"/24", "dev", testharness.E2ENetwork.Bridge)

	sealed := s.addClusterWith(testharness.ClusterOptions{Name: "sealed", Bind: bridgeAddr, Advertise: proxyIP, Args: []string{"--tls-san", proxyIP}})
	open := s.addClusterWith(testharness.ClusterOptions{Name: "open", Bind: bridgeAddr, Advertise: proxyIP, InsecurePlaintext: true})
	for _, c := range []*cluster{sealed, open} {
		if !strings.Contains(c.proc.Output(), "tls=") {
			t.Fatalf("cluster %s does not say whether it serves TLS:\n%s", c.name, testharness.Tail(c.proc.Output(), 2000))
		}
	}
	if !strings.Contains(open.proc.Output(), "INSECURE: --insecure-plaintext") {
		t.Errorf("the plain-text cluster does not warn:\n%s", testharness.Tail(open.proc.Output(), 2000))
	}
	if !strings.HasPrefix(sealed.nodeURL, "https://") || !strings.HasPrefix(sealed.nodeToken, "thk1") {
		t.Fatalf("sealed cluster: node URL %s, token %.6s…; want https:// and a thk1 token", sealed.nodeURL, sealed.nodeToken)
	}

	// Each cluster's node API and broker behind recording proxies on the
	// second address; nodes are pointed there.
	sealedAPI, sealedMQTT := proxyCluster(t, sealed, proxyIP)
	openAPI, openMQTT := proxyCluster(t, open, proxyIP)

	n1 := s.startNode(sealed, "t1", 110, 1024, sealed.nodeToken, false)
	n2 := s.startNode(open, "t2", 111, 1024, open.nodeToken, false)
	s.waitNodes(map[string]int{"sealed": 1, "open": 1})

	secret := "env-secret-" + randomHex(t)
	ids := s.app("tls", map[string]any{"microservice_name": "sealedweb", "memory": 16, "environment": []string{"API_KEY=" + secret},
		"constraints": pin("sealed", n1.name)}, map[string]any{"microservice_name": "openweb", "memory": 16,
		"environment": []string{"API_KEY=" + secret}, "constraints": pin("open", n2.name)})
	s.scaleUp(ids["sealedweb"])
	s.scaleUp(ids["openweb"])
	s.api.waitInstance(ids["sealedweb"], 0, 2*time.Minute, "running", running)
	s.api.waitInstance(ids["openweb"], 0, 2*time.Minute, "running", running)

	t.Run("a plain read shows no credential or secret", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			c         *cluster
			n         *node
			api, mqtt *recordingProxy
			plain     bool
		}{
			{"TLS", sealed, n1, sealedAPI, sealedMQTT, false},
			{"--insecure-plaintext", open, n2, openAPI, openMQTT, true},
		} {
			_, joinSecret, _ := pki.ParseJoinToken(tc.c.nodeToken)
			secrets := map[string]string{"MQTT password": mqttPassword(t, tc.n), "join token secret": joinSecret, "environment secret": secret}
			apiBytes, mqttBytes := tc.api.recorded(), tc.mqtt.recorded()
			if len(apiBytes) < 500 || len(mqttBytes) < 500 {
				t.Fatalf("%s: the proxies saw %d and %d bytes; the node did not go through them", tc.name, len(apiBytes), len(mqttBytes))
			}
			all := append(apiBytes, mqttBytes...)
			for what, v := range secrets {
				if seen := bytes.Contains(all, []byte(v)); seen != tc.plain {
					t.Errorf("%s: %s in the recorded traffic: %v, want %v", tc.name, what, seen, tc.plain)
				}
			}
			// The TLS traffic shows no protocol either: no HTTP request
			// line, no MQTT protocol name or topic.
			for _, marker := range []string{"POST /api/node/register", "MQTT", "thicket/node/"} {
				if seen := bytes.Contains(all, []byte(marker)); seen != tc.plain {
					t.Errorf("%s: %q in the recorded traffic: %v, want %v", tc.name, marker, seen, tc.plain)
				}
			}
		}
	})

	t.Run("a man in the middle at the node API is refused at registration", func(t *testing.T) {
		mitm, pin, hits := mitmServer(t, proxyIP)
		// The sealed cluster's token, and the man in the middle's address.
		intercepted := *sealed
		intercepted.nodeURL = "https://" + mitm
		n := s.startNode(&intercepted, "t3", 112, 1024, sealed.nodeToken, false)
		select {
		case <-n.proc.Exited():
		case <-time.After(60 * time.Second):
			t.Fatalf("the node did not give up on the man in the middle:\n%s", testharness.Tail(n.proc.Output(), 2000))
		}
		out := n.proc.Output()
		want, _, _ := pki.ParseJoinToken(sealed.nodeToken)
		for _, text := range []string{"thicket-node failed", "refused the server, nothing sent", "not issued by the pinned CA", "expected " + want, "presented " + pin} {
			if !strings.Contains(out, text) {
				t.Errorf("the node's output lacks %q:\n%s", text, testharness.Tail(out, 2000))
			}
		}
		if h := hits.Load(); h != 0 {
			t.Errorf("the man in the middle got %d requests", h)
		}
	})

	t.Run("a man in the middle at the broker is refused at the MQTT connection", func(t *testing.T) {
		fake, got := mitmBroker(t, proxyIP)
		sealedMQTT.redirect(fake)
		defer sealedMQTT.redirect("")
		n := s.startNode(sealed, "t4", 113, 1024, sealed.nodeToken, false)
		want, _, _ := pki.ParseJoinToken(sealed.nodeToken)
		testharness.WaitFor(t, time.Minute, "the node refuses the broker", func() (bool, string) {
			out := n.proc.Output()
			return strings.Contains(out, "registered with the cluster") && strings.Contains(out, "the MQTT broker failed TLS verification") &&
				strings.Contains(out, "not issued by the pinned CA"), testharness.Tail(out, 2000)
		})
		if !strings.Contains(n.proc.Output(), "expected a CA of "+want) {
			t.Errorf("the refusal does not name the CA the node expected:\n%s", testharness.Tail(n.proc.Output(), 2000))
		}
		// n1 was connected: cut off, it reconnects to the man in the
		// middle, and refuses it as loudly.
		testharness.WaitFor(t, 30*time.Second, "the connected node refuses the broker at its reconnection", func() (bool, string) {
			out := n1.proc.Output()
			return strings.Contains(out, "failed TLS verification at a reconnection") || strings.Contains(out, "the MQTT broker failed TLS verification"),
				testharness.Tail(out, 2000)
		})
		if b := got(); len(b) != 0 {
			t.Errorf("the fake broker read %d bytes in clear: %q", len(b), b)
		}
		if pw := mqttPassword(t, n); pw == "" {
			t.Error("the node saved no MQTT credentials")
		}
	})
}

// proxyCluster puts recording TCP proxies on proxyIP, which the cluster
// advertises, in front of its node API and broker on the bridge address
// (same ports), and returns them.
func proxyCluster(t *testing.T, c *cluster, proxyIP string) (api, mqtt *recordingProxy) {
	t.Helper()
	_, apiPort, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(c.nodeURL, "https://"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`mqtt_for_nodes=\w+://[^ ]+:(\d+)`).FindStringSubmatch(c.proc.Output())
	if m == nil {
		t.Fatalf("cluster %s does not log its broker's address:\n%s", c.name, testharness.Tail(c.proc.Output(), 2000))
	}
	api = startRecordingProxy(t, net.JoinHostPort(proxyIP, apiPort), net.JoinHostPort(bridgeAddr, apiPort))
	mqtt = startRecordingProxy(t, net.JoinHostPort(proxyIP, m[1]), net.JoinHostPort(bridgeAddr, m[1]))
	return api, mqtt
}

// recordingProxy forwards TCP connections and keeps every byte it sees,
// both ways, as anyone on the path could.
type recordingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	to     string // "" forwards to target
	buf    bytes.Buffer
	conns  map[net.Conn]bool
}

func startRecordingProxy(t *testing.T, listen, target string) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return p
}

// redirect sends new connections to addr ("" to the target again), and
// cuts the open ones, whose clients then dial again.
func (p *recordingProxy) redirect(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.to = addr
	for c := range p.conns {
		c.Close()
	}
}

func (p *recordingProxy) forward(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	to := p.to
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	if to == "" {
		to = p.target
	}
	up, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, io.TeeReader(c, p)); done <- struct{}{} }()
	go func() { io.Copy(c, io.TeeReader(up, p)); done <- struct{}{} }()
	<-done
}

// Write records.
func (p *recordingProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *recordingProxy) recorded() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

// otherCert is a server certificate for ip from a new CA (not the
// cluster's), and that CA's pin.
func otherCert(t *testing.T, ip string) (tls.Certificate, string) {
	t.Helper()
	ca, cert, err := pki.NewCAWithLeaf("man in the middle CA", pki.Leaf{Name: "thicket-cluster sealed", IPs: []net.IP{net.ParseIP(ip)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.Pin()
}

// mitmServer is an HTTPS server on ip with a certificate of another CA
// for that very address; it returns its address, its CA's pin and how many
// requests it got.
func mitmServer(t *testing.T, ip string) (string, string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	cert, pin := otherCert(t, ip)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return ln.Addr().String(), pin, &hits
}

// mitmBroker is a TLS server on ip with a certificate of another CA that
// keeps whatever it reads after the handshake (an MQTT CONNECT holds the
// password); it returns its address and what it read.
func mitmBroker(t *testing.T, ip string) (string, func() []byte) {
	t.Helper()
	cert, _ := otherCert(t, ip)
	ln, err := tls.Listen("tcp", ip+":0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got bytes.Buffer
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				mu.Lock()
				got.Write(b)
				mu.Unlock()
			}()
		}
	}()
	return ln.Addr().String(), func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(got.Bytes())
	}
}

// mqttPassword is the MQTT password the node saved at registration.
func mqttPassword(t *testing.T, n *node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "node-credentials.json"))
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	var c struct {
		Password string `json:"mqtt_password"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Password == "" {
		t.Fatalf("node %s credentials: %v", n.name, err)
	}
	return c.Password
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
