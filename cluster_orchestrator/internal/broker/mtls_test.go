package broker

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodecert"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
)

// certAuth is the cluster's authenticator in small: passwords, then the
// client certificate against the username (nodecert.Issuer.Check). It
// remembers the serial of the last certificate it saw per user.
type certAuth struct {
	stub   *stubAuth
	issuer *nodecert.Issuer
	mu     sync.Mutex
	seen   map[string]string
}

func (a *certAuth) Authenticate(user string, pw []byte, cert *x509.Certificate) (Principal, bool) {
	p, ok := a.stub.Authenticate(user, pw, cert)
	if !ok || p.Manager {
		return p, ok && cert == nil
	}
	if a.issuer.Check(user, cert, "mqtt") != nil {
		return Principal{}, false
	}
	a.mu.Lock()
	if cert != nil {
		a.seen[user] = cert.SerialNumber.Text(16)
	}
	a.mu.Unlock()
	return p, true
}

func (a *certAuth) serial(user string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[user]
}

type boundNodes map[string]bool

func (n boundNodes) NodeCert(id string) (bool, bool) { b, ok := n[id]; return ok, b }

// TestClientCertificates: over real TLS connections to the broker, the
// auth hook gets the certificate the client presented: a node connects
// with its own; not with another node's, none (it has a certificate
// identity), one of another CA or an expired one. A renewed certificate
// is presented at the next connection, while the connected one goes on.
func TestClientCertificates(t *testing.T) {
	ca, err := pki.NewCA("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &nodecert.Issuer{CA: ca, Cluster: "alpha", TTL: time.Minute, Nodes: boundNodes{"n1": true, "n2": true}}
	serving, err := pki.NewServing(ca, pki.Leaf{Name: "broker", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	auth := &certAuth{stub: newStubAuth(), issuer: issuer, seen: map[string]string{}}
	b, err := New(Config{Listen: "127.0.0.1:0", Auth: auth, Logger: quiet, TLS: issuer.ServerTLS(serving.TLSConfig(), "mqtt")})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	url := "mqtts://" + b.Addr()

	certFor := func(i *nodecert.Issuer, id string) *pki.ClientCert {
		key, csr, err := pki.NewCSR(id)
		if err != nil {
			t.Fatal(err)
		}
		chain, err := i.Issue(id, string(csr), false)
		if err != nil {
			t.Fatal(err)
		}
		cc := pki.OpenClientCert(filepath.Join(t.TempDir(), "id.pem"))
		if err := cc.Set([]byte(chain), key); err != nil {
			t.Fatal(err)
		}
		return cc
	}
	type getCert = func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	dial := func(user, pw string, get getCert, topic string, in inbox) (*mqttc.Client, error) {
		tc := pki.PinnedClient(ca.Pin(), "127.0.0.1")
		tc.GetClientCertificate = get
		o := mqttc.Options{URL: url, TLS: tc, ClientID: mqttc.NodeClientID(user), Username: user, Password: pw, Logger: quiet}
		if in != nil {
			o.OnConnect = subscriber(topic, in)
		}
		return mqttc.Connect(ctxT(t, 3*time.Second), o)
	}
	otherCA, _ := pki.NewCA("another CA", time.Hour)
	expired := *issuer
	expired.TTL = -time.Minute
	n1, n2 := certFor(issuer, "n1"), certFor(issuer, "n2")
	// always presents cc's certificate, even an expired one.
	always := func(cc *pki.ClientCert) getCert {
		return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cc.Current(), nil }
	}
	none := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	for _, tc := range []struct {
		name       string
		get        getCert
		ok, byHook bool
	}{
		{"another node's certificate", n2.GetClientCertificate, false, true},
		{"no certificate", none, false, true},
		{"another CA's certificate", always(certFor(&nodecert.Issuer{CA: otherCA, Cluster: "alpha", TTL: time.Minute, Nodes: issuer.Nodes}, "n1")), false, false},
		{"an expired certificate", always(certFor(&expired, "n1")), false, false},
		{"its own certificate", n1.GetClientCertificate, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial("n1", "pw-n1", tc.get, "", nil)
			if c != nil {
				defer c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("connect as n1: %v; want ok %v", err, tc.ok)
			}
			// The hook refuses with an MQTT answer; a certificate that
			// fails verification ends the TLS handshake.
			if !tc.ok && errors.Is(err, mqttc.ErrNotAuthorized) != tc.byHook {
				t.Errorf("refusal %v; want by the auth hook: %v", err, tc.byHook)
			}
		})
	}

	// Rotation: connected with the first certificate, the node gets a new
	// one; its connection goes on, and the next one presents the new.
	in := make(inbox, 4)
	c, err := dial("n1", "pw-n1", n1.GetClientCertificate, "thicket/node/n1/desired", in)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := auth.serial("n1")
	renewed := certFor(issuer, "n1")
	chain, _, _ := pki.EncodePair(*renewed.Current())
	if err := n1.Set(chain, renewed.Current().PrivateKey.(crypto.Signer)); err != nil {
		t.Fatal(err)
	}
	mgr, err := mqttc.Connect(ctxT(t, 3*time.Second), mqttc.Options{URL: url, TLS: pki.PinnedClient(ca.Pin(), "127.0.0.1"),
		ClientID: "thicket-cluster-test", Username: "manager", Password: "pw-manager", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	publishDesired(t, mgr, "thicket/node/n1/desired", "after renewal")
	in.want(t, msg{"thicket/node/n1/desired", "after renewal"})
	if auth.serial("n1") != first {
		t.Fatal("the connected node reconnected")
	}
	again, err := dial("n1", "pw-n1", n1.GetClientCertificate, "", nil)
	if err != nil {
		t.Fatalf("connect with the renewed certificate: %v", err)
	}
	defer again.Close()
	if got := auth.serial("n1"); got == first || got != n1.Current().Leaf.SerialNumber.Text(16) {
		t.Errorf("the new connection presented certificate %s; want the renewed %s (first %s)", got, n1.Current().Leaf.SerialNumber.Text(16), first)
	}
}
