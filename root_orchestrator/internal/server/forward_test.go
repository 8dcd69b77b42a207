package server

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// TestForwardClientCert: a follower forwards the client certificate it
// verified to the leader, which takes it from the follower's replica
// certificate; a header a client sent itself reaches no one.
func TestForwardClientCert(t *testing.T) {
	ca, err := pki.NewCA("root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(h http.Handler) *httptest.Server {
		cert, err := ca.Issue(pki.Leaf{Name: "root", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(h)
		s.TLS = pki.VerifyClients(&tls.Config{Certificates: []tls.Certificate{cert}}, ca, nil)
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	leader := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pki.ClusterOf(pki.ClientOf(r, ca))
		if err != nil {
			id = "none"
		}
		_, _ = io.WriteString(w, id)
	}))
	follower := serve(forwardTo(leader.URL, ca.Pool(), pki.ReplicaCert(ca), slog.New(slog.DiscardHandler)))
	alpha, err := ca.Issue(pki.ClusterLeaf("c1", "alpha", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	beta, err := ca.Issue(pki.ClusterLeaf("c2", "beta", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		header string
		want   string
	}{
		{"alpha by the follower", &alpha, "", "c1"},
		{"alpha claiming beta's in the header", &alpha, base64.StdEncoding.EncodeToString(beta.Leaf.Raw), "c1"},
		{"none, claiming beta's in the header", nil, base64.StdEncoding.EncodeToString(beta.Leaf.Raw), "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
			if tc.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{*tc.cert}
			}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("GET", follower.URL+"/api/cluster/desired", nil)
			if tc.header != "" {
				req.Header.Set(pki.ForwardedClientCert, tc.header)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tc.want {
				t.Errorf("the leader saw %q, want %q", b, tc.want)
			}
		})
	}
}
