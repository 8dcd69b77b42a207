package nodecert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thicket-edge/thicket/internal/pki"
)

// nodes is the manager's registry, in memory.
type nodes map[string]bool // id → bound

func (n nodes) NodeCert(id string) (bool, bool) {
	bound, ok := n[id]
	return ok, bound
}

func newIssuer(t *testing.T, n nodes) *Issuer {
	t.Helper()
	ca, err := pki.NewCA("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{CA: ca, Cluster: "alpha", TTL: time.Minute, Nodes: n}
}

// issue gives node id a certificate through a certificate request, as the
// node API does.
func issue(t *testing.T, i *Issuer, id string) tls.Certificate {
	t.Helper()
	key, csr, err := pki.NewCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := i.Issue(id, string(csr), false)
	if err != nil {
		t.Fatal(err)
	}
	cc := pki.OpenClientCert(t.TempDir() + "/id.pem")
	if err := cc.Set([]byte(chain), key); err != nil {
		t.Fatal(err)
	}
	return *cc.Current()
}

// TestCheck: who a client claims to be (its MQTT username) against the
// certificate it presented.
func TestCheck(t *testing.T) {
	reg := nodes{"n1": true, "n2": true, "old": false, "gone": true}
	i := newIssuer(t, reg)
	n1, n2, gone := issue(t, i, "n1"), issue(t, i, "n2"), issue(t, i, "gone")
	delete(reg, "gone") // deleted by an admin after it got its certificate
	otherCluster := &Issuer{CA: i.CA, Cluster: "beta", TTL: time.Minute, Nodes: reg}
	beta := issue(t, otherCluster, "n1")
	for _, tc := range []struct {
		name string
		id   string
		cert *x509.Certificate
		err  string
	}{
		{"its own", "n1", n1.Leaf, ""},
		{"another node's", "n1", n2.Leaf, "the certificate is node n2's, not node n1's"},
		{"none, bound", "n1", nil, "presented none"},
		{"none, registered without a CSR", "old", nil, ""},
		{"a node without a CSR shows another's", "old", n1.Leaf, "not node old's"},
		{"a deleted node's", "gone", gone.Leaf, "not registered"},
		{"another cluster's", "n1", beta.Leaf, "not a node certificate of this cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(mRefused.WithLabelValues("mqtt"))
			err := i.Check(tc.id, tc.cert, "mqtt")
			if (err == nil) != (tc.err == "") || err != nil && (!strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrRefused)) {
				t.Errorf("Check: %v; want %q", err, tc.err)
			}
			if d := testutil.ToFloat64(mRefused.WithLabelValues("mqtt")) - before; d != map[bool]float64{true: 0, false: 1}[err == nil] {
				t.Errorf("refusals counted: %v", d)
			}
		})
	}
	if id, err := i.Identity(n1.Leaf); id != "n1" || err != nil {
		t.Errorf("Identity(n1's) = %q, %v", id, err)
	}
	if _, err := i.Identity(gone.Leaf); err == nil {
		t.Error("a deleted node's certificate identifies it")
	}
}

// TestServerTLS: over real TLS connections, the listener takes a node
// certificate of its CA or none, and refuses one of another CA and an
// expired one in the handshake.
func TestServerTLS(t *testing.T) {
	i := newIssuer(t, nodes{"n1": true})
	serving, err := pki.NewServing(i.CA, pki.Leaf{Name: "cluster", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", i.ServerTLS(serving.TLSConfig(), "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan *x509.Certificate, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.Handshake() == nil {
				cs := tc.ConnectionState()
				select {
				case peers <- Peer(&cs):
				default:
				}
				_, _ = tc.Write([]byte("ok"))
			}
			tc.Close()
		}
	}()
	other := newIssuer(t, nodes{"n1": true})
	expiredIssuer := *i
	expiredIssuer.TTL = -time.Minute
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"its node's", ptr(issue(t, i, "n1")), true},
		{"none", nil, true},
		{"another CA's", ptr(issue(t, other, "n1")), false},
		{"expired", ptr(issue(t, &expiredIssuer, "n1")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(mRefused.WithLabelValues("test"))
			cfg := pki.PinnedClient(i.CA.Pin(), "127.0.0.1")
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if tc.cert == nil {
					return &tls.Certificate{}, nil
				}
				return tc.cert, nil
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
			var got []byte
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				got, err = io.ReadAll(c) // a refusal arrives with the server's first flight after the client's
				c.Close()
			}
			if ok := err == nil && string(got) == "ok"; ok != tc.ok {
				t.Fatalf("connection: %q, %v; want ok %v", got, err, tc.ok)
			}
			if tc.ok {
				var p *x509.Certificate
				select {
				case p = <-peers:
				case <-time.After(5 * time.Second):
					t.Fatal("the server saw no handshake")
				}
				if (p != nil) != (tc.cert != nil) {
					t.Errorf("Peer = %v; want the certificate presented", p)
				}
			}
			if d := testutil.ToFloat64(mRefused.WithLabelValues("test")) - before; (d == 1) == tc.ok {
				t.Errorf("refusals counted: %v", d)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
