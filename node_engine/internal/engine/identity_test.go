package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// certCluster is a node API that issues client certificates with its CA,
// as the cluster does: at registration for the CSR, and at renewal for
// the node its verified client certificate names.
type certCluster struct {
	ca  *pki.CA
	ttl time.Duration
	mu  sync.Mutex
	// presented: the serial of the certificate each request showed ("").
	presented []string
	renewals  int
	refuse    bool
}

func (c *certCluster) issue(id, csr string) string {
	pub, err := pki.ParseCSR([]byte(csr))
	if err != nil {
		return ""
	}
	leaf, err := c.ca.Sign(pub, pki.NodeLeaf("alpha", id, c.ttl))
	if err != nil {
		return ""
	}
	return string(c.ca.ChainPEM(leaf))
}

func (c *certCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var peer string
	if len(r.TLS.PeerCertificates) > 0 {
		peer = r.TLS.PeerCertificates[0].SerialNumber.Text(16)
	}
	c.mu.Lock()
	c.presented = append(c.presented, peer)
	refuse := c.refuse
	c.mu.Unlock()
	switch r.URL.Path {
	case "/api/node/register":
		var req wire.NodeRegisterRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(wire.NodeRegisterResponse{NodeID: "id-1", MQTTURL: "mqtts://127.0.0.1:1", MQTTPassword: "pw",
			CertPEM: c.issue("id-1", req.CSRPEM)})
	case "/api/node/certificate":
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, `{"error":"no certificate"}`, http.StatusUnauthorized)
			return
		}
		id, err := pki.NodeOf(r.TLS.PeerCertificates[0], "alpha")
		if err != nil || refuse {
			http.Error(w, `{"error":"refused"}`, http.StatusForbidden)
			return
		}
		var req wire.NodeCertificateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		c.mu.Lock()
		c.renewals++
		c.mu.Unlock()
		_ = json.NewEncoder(w).Encode(wire.NodeCertificateResponse{NodeID: id, CertPEM: c.issue(id, req.CSRPEM)})
	}
}

// TestClientCertificateRotation: the node registers with a certificate
// request and keeps the certificate with its key (0600, not in the
// credentials); it renews at two thirds of the lifetime, presenting the
// current certificate, each time with a new key; registering again it
// presents its certificate. A refused renewal is retried.
func TestClientCertificateRotation(t *testing.T) {
	ca, err := pki.NewCA("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.NewServing(ca, pki.Leaf{Name: "cluster", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cl := &certCluster{ca: ca, ttl: 3 * time.Second}
	srv := httptest.NewUnstartedServer(cl)
	cert, _ := serving.Certificate()
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	srv.StartTLS()
	defer srv.Close()
	tok, _ := pki.JoinToken(ca.Pin(), "join")
	dir := t.TempDir()
	e := newTestEngine(Config{ClusterURL: srv.URL, JoinToken: tok, DataDir: dir})

	c, err := e.register(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.nodeID = c.NodeID
	first := e.identity().Current()
	if first == nil {
		t.Fatal("no client certificate after the registration")
	}
	if id, err := pki.NodeOf(first.Leaf, "alpha"); id != "id-1" || err != nil {
		t.Fatalf("the certificate names %q, %v", id, err)
	}
	st, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v; want mode 0600", identityFile, st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, credentialsFile)); json.Valid(b) && containsCert(b) {
		t.Error("the credentials file holds the certificate")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.renewCerts(ctx); close(done) }()
	serials := map[string]bool{first.Leaf.SerialNumber.Text(16): true}
	keys := map[string]bool{}
	pubKey := func(c *tls.Certificate) string { b, _ := x509.MarshalPKIXPublicKey(c.Leaf.PublicKey); return string(b) }
	keys[pubKey(first)] = true
	deadline := time.Now().Add(10 * time.Second)
	for len(serials) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur := e.identity().Current()
		if time.Now().After(cur.Leaf.NotAfter) {
			t.Fatal("the certificate expired before it was renewed")
		}
		serials[cur.Leaf.SerialNumber.Text(16)] = true
		keys[pubKey(cur)] = true
	}
	if len(serials) < 3 {
		t.Fatalf("%d certificates in 10 s with a 3 s lifetime; want renewals", len(serials))
	}
	cancel()
	<-done
	if len(keys) < 3 {
		t.Errorf("%d keys for %d certificates; want a new key each time", len(keys), len(serials))
	}
	cl.mu.Lock()
	for i, p := range cl.presented[1:] {
		if p == "" {
			t.Errorf("renewal %d presented no certificate", i)
		}
	}
	cl.refuse = true
	cl.mu.Unlock()
	before := e.identity().Current()
	if err := e.renewCert(context.Background()); err == nil || e.identity().Current() != before {
		t.Errorf("a refused renewal: %v; want an error and the certificate kept", err)
	}
	cl.mu.Lock()
	cl.refuse = false
	cl.mu.Unlock()

	// Registering again, it shows its certificate.
	if _, err := e.register(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	last := cl.presented[len(cl.presented)-1]
	cl.mu.Unlock()
	if last == "" {
		t.Error("the registration of a known node presented no certificate")
	}
}

func containsCert(b []byte) bool {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	_, ok := m["cert_pem"]
	return ok
}

// TestNewClusterCA: a cluster that now has another CA (its nodes got a new
// token with the new pin) is not shown the certificate of the old one,
// which its handshake would refuse: the node registers and gets one of the
// new CA.
func TestNewClusterCA(t *testing.T) {
	serve := func(ca *pki.CA) *tls.Config {
		serving, err := pki.NewServing(ca, pki.Leaf{Name: "cluster", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := serving.Certificate()
		return &tls.Config{Certificates: []tls.Certificate{*cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	}
	oldCA, _ := pki.NewCA("old CA", time.Hour)
	newCA, _ := pki.NewCA("new CA", time.Hour)
	cl := &certCluster{ca: oldCA, ttl: time.Hour}
	srv := httptest.NewUnstartedServer(cl)
	srv.TLS = serve(oldCA)
	srv.StartTLS()
	defer srv.Close()
	tok, _ := pki.JoinToken(oldCA.Pin(), "join")
	dir := t.TempDir()
	if _, err := newTestEngine(Config{ClusterURL: srv.URL, JoinToken: tok, DataDir: dir}).register(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The same address, another CA (the cluster lost its own).
	srv.Close()
	srv2 := httptest.NewUnstartedServer(&certCluster{ca: newCA, ttl: time.Hour})
	ln, err := net.Listen("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("listen on the old address again: %v", err)
	}
	srv2.Listener.Close()
	srv2.Listener = ln
	srv2.TLS = serve(newCA)
	srv2.StartTLS()
	defer srv2.Close()
	tok2, _ := pki.JoinToken(newCA.Pin(), "join")
	e := newTestEngine(Config{ClusterURL: srv.URL, JoinToken: tok2, DataDir: dir})
	if _, err := e.register(context.Background()); err != nil {
		t.Fatalf("register with the cluster's new CA: %v", err)
	}
	if got := e.identity().Current().Leaf.Issuer.CommonName; got != "new CA" {
		t.Errorf("the certificate is issued by %q; want the new CA", got)
	}
}
