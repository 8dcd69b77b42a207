package nodeapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodecert"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// certRegistrar registers nodes by name (id "id-<name>") and knows which
// are registered and bound, as the manager does.
type certRegistrar struct {
	mu    sync.Mutex
	nodes map[string]bool // id → registered with a CSR
}

func (r *certRegistrar) RegisterNode(_ context.Context, req wire.NodeRegisterRequest, _ string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := "id-" + req.Name
	r.nodes[id] = r.nodes[id] || req.CSRPEM != ""
	return id, nil
}

func (r *certRegistrar) NodeCert(id string) (bool, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.nodes[id]
	return ok, b
}

func (r *certRegistrar) forget(id string) {
	r.mu.Lock()
	delete(r.nodes, id)
	r.mu.Unlock()
}

// TestNodeCertificates: over the node API's real TLS, a node registering
// with a certificate request gets a certificate naming its id; it renews
// with that certificate alone; no certificate, another CA's, or a deleted
// node's cannot renew, and a registration showing another node's
// certificate is refused.
func TestNodeCertificates(t *testing.T) {
	ca, err := pki.NewCA("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	reg := &certRegistrar{nodes: map[string]bool{}}
	issuer := &nodecert.Issuer{CA: ca, Cluster: "alpha", TTL: time.Minute, Nodes: reg}
	serving, err := pki.NewServing(ca, pki.Leaf{Name: "cluster", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Handler(Config{JoinToken: "join", MQTTURL: "mqtts://127.0.0.1:1", Certs: issuer}, reg, slog.New(slog.DiscardHandler)))
	srv.TLS = issuer.ServerTLS(serving.TLSConfig(), "api")
	cert, _ := serving.Certificate()
	srv.TLS.Certificates = []tls.Certificate{*cert} // httptest's own otherwise
	srv.StartTLS()
	defer srv.Close()

	// client presents cc's certificate (nil: none).
	client := func(cc *pki.ClientCert) *http.Client {
		tc := pki.PinnedClient(ca.Pin(), "127.0.0.1")
		if cc != nil {
			tc.GetClientCertificate = cc.GetClientCertificate
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}
	post := func(cc *pki.ClientCert, path string, body any, out any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer join")
		resp, err := client(cc).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&raw)
		if out != nil {
			_ = json.Unmarshal(raw, out)
		}
		return resp.StatusCode, string(raw)
	}
	register := func(name string, present *pki.ClientCert, nodeID string) (*pki.ClientCert, int, string) {
		t.Helper()
		key, csr, err := pki.NewCSR(name)
		if err != nil {
			t.Fatal(err)
		}
		var ans wire.NodeRegisterResponse
		code, raw := post(present, "/api/node/register", wire.NodeRegisterRequest{Version: wire.Version, Name: name, NodeID: nodeID,
			Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}, CSRPEM: string(csr)}, &ans)
		if code != http.StatusOK {
			return nil, code, raw
		}
		cc := pki.OpenClientCert(filepath.Join(t.TempDir(), "id.pem"))
		if err := cc.Set([]byte(ans.CertPEM), key); err != nil {
			t.Fatalf("the registration's certificate: %v", err)
		}
		return cc, code, raw
	}
	renew := func(cc *pki.ClientCert) (crypto.Signer, int, string, wire.NodeCertificateResponse) {
		t.Helper()
		key, csr, _ := pki.NewCSR("x")
		var ans wire.NodeCertificateResponse
		code, raw := post(cc, "/api/node/certificate", wire.NodeCertificateRequest{Version: wire.Version, CSRPEM: string(csr)}, &ans)
		return key, code, raw, ans
	}

	n1, code, raw := register("n1", nil, "")
	if code != http.StatusOK {
		t.Fatalf("register n1: %d %s", code, raw)
	}
	leaf := n1.Current().Leaf
	if id, err := pki.NodeOf(leaf, "alpha"); id != "id-n1" || err != nil {
		t.Fatalf("n1's certificate names %q (%v); want id-n1", id, err)
	}
	n2, _, _ := register("n2", nil, "")

	t.Run("renewal with its certificate", func(t *testing.T) {
		key, code, raw, ans := renew(n1)
		if code != http.StatusOK || ans.NodeID != "id-n1" {
			t.Fatalf("renew: %d %s", code, raw)
		}
		if err := n1.Set([]byte(ans.CertPEM), key); err != nil {
			t.Fatal(err)
		}
		if n1.Current().Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			t.Error("the renewal gave the same certificate")
		}
		if _, code, raw, _ := renew(n1); code != http.StatusOK {
			t.Errorf("renew with the renewed certificate: %d %s", code, raw)
		}
	})
	t.Run("re-registration shows its own certificate", func(t *testing.T) {
		if _, code, raw := register("n1", n1, "id-n1"); code != http.StatusOK {
			t.Errorf("register again: %d %s", code, raw)
		}
		if _, code, raw := register("n1", n2, "id-n1"); code != http.StatusForbidden || !strings.Contains(raw, "node id-n2's, not node") {
			t.Errorf("register as n1 with n2's certificate: %d %s; want 403", code, raw)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		otherCA, _ := pki.NewCA("other", time.Hour)
		foreign := &nodecert.Issuer{CA: otherCA, Cluster: "alpha", TTL: time.Minute, Nodes: reg}
		fkey, fcsr, _ := pki.NewCSR("n1")
		fchain, _ := foreign.Issue("id-n1", string(fcsr), false)
		forged := pki.OpenClientCert(filepath.Join(t.TempDir(), "f.pem"))
		if err := forged.Set([]byte(fchain), fkey); err != nil {
			t.Fatal(err)
		}
		if _, code, raw, _ := renew(nil); code != http.StatusUnauthorized {
			t.Errorf("renew without a certificate: %d %s; want 401", code, raw)
		}
		if _, code, raw, _ := renew(forged); code != 0 || !strings.Contains(raw, "tls") {
			t.Errorf("renew with another CA's certificate: %d %s; want the handshake refused", code, raw)
		}
		_, badCSR := post(n1, "/api/node/certificate", wire.NodeCertificateRequest{Version: wire.Version, CSRPEM: "junk"}, nil)
		if !strings.Contains(badCSR, "csr_pem") {
			t.Errorf("renew with a bad CSR: %s", badCSR)
		}
		reg.forget("id-n2") // deleted by an admin
		if _, code, raw, _ := renew(n2); code != http.StatusForbidden || !strings.Contains(raw, "not registered") {
			t.Errorf("renew a deleted node's certificate: %d %s; want 403", code, raw)
		}
	})
	t.Run("a bad certificate request registers nothing", func(t *testing.T) {
		code, raw := post(nil, "/api/node/register", wire.NodeRegisterRequest{Version: wire.Version, Name: "n9",
			Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}, CSRPEM: "junk"}, nil)
		if code != http.StatusBadRequest || !strings.Contains(raw, "csr_pem") {
			t.Errorf("register with a bad CSR: %d %s; want 400", code, raw)
		}
		if known, _ := reg.NodeCert("id-n9"); known {
			t.Error("a registration with a bad CSR was stored")
		}
	})
	// A client that does not ask for a certificate (an older node) gets
	// none, and can still register.
	code, raw = post(nil, "/api/node/register", wire.NodeRegisterRequest{Version: wire.Version, Name: "old",
		Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}}, nil)
	if code != http.StatusOK || strings.Contains(raw, "cert_pem") {
		t.Errorf("register without a CSR: %d %s", code, raw)
	}
}
