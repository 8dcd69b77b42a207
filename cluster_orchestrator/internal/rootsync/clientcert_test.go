package rootsync

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// issue is the fake root's certificate for the key of csrPEM ("": none).
func (r *fakeRoot) issue(csrPEM string) string {
	if csrPEM == "" {
		return ""
	}
	pub, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		r.t.Errorf("the cluster's CSR: %v", err)
		return ""
	}
	leaf, err := r.ca.Sign(pub, pki.ClusterLeaf("cluster-1", "c1", r.certTTL))
	if err != nil {
		r.t.Errorf("sign: %v", err)
		return ""
	}
	r.issued = append(r.issued, leaf.SerialNumber.String())
	return string(r.ca.ChainPEM(leaf))
}

// renew is the fake root's POST /api/cluster/certificate: the current
// certificate and the credential.
func (r *fakeRoot) renew(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cert := pki.Peer(req.TLS)
	if id, err := pki.ClusterOf(cert); err != nil || id != "cluster-1" || req.Header.Get("Authorization") != "Bearer "+r.credential {
		http.Error(w, `{"error":"client certificate refused"}`, http.StatusForbidden)
		return
	}
	var body wire.ClusterCertificateRequest
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.Version != wire.Version {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	r.renewals++
	writeJSONTest(w, wire.ClusterCertificateResponse{CertPEM: r.issue(body.CSRPEM)})
}

// serialOf is the serial of the client certificate a request's connection
// presented ("" none).
func serialOf(req *http.Request) string {
	if c := pki.Peer(req.TLS); c != nil {
		return c.SerialNumber.String()
	}
	return ""
}

// TestClientCertRenewal: the link registers with a CSR, keeps the root's
// certificate with its key in a 0600 file, presents it with every sync,
// renews it at two thirds of its lifetime (here 3 s) while it syncs on,
// and new connections present the renewed one.
func TestClientCertRenewal(t *testing.T) {
	root, srv := newFakeRoot(t)
	root.certTTL = 3 * time.Second
	root.acks = []wire.ClusterSyncAck{{Version: wire.Version, Epoch: "E1", SyncIntervalMS: 300}}
	file := filepath.Join(t.TempDir(), ClientCertFile)
	l, err := New(context.Background(), Config{RootURL: srv.URL, JoinToken: pinned(t, srv.URL, "join-token"),
		Register: wire.ClusterRegisterRequest{Name: "c1"}, Interval: time.Hour, ClientCertFile: file},
		clusterStore(t), &fakeCluster{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	time.Sleep(5500 * time.Millisecond)
	l.http.CloseIdleConnections() // the next sync makes a new connection
	time.Sleep(800 * time.Millisecond)
	cancel()
	<-done

	root.mu.Lock()
	defer root.mu.Unlock()
	if root.registered != 1 || root.renewals < 2 {
		t.Fatalf("registered %d times, renewed %d times; want once and at least twice in 6 s of a 3 s certificate", root.registered, root.renewals)
	}
	if len(root.presented) < 5 || slices.Contains(root.presented, "") {
		t.Errorf("syncs presented %q; want a certificate each time", root.presented)
	}
	latest := root.issued[len(root.issued)-1]
	if got := root.presented[len(root.presented)-1]; got != latest {
		t.Errorf("the last sync (a new connection) presented certificate %s, want the latest %s (issued %q)", got, latest, root.issued)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("certificate file: %v %v, want mode 0600", fi, err)
	}
	if c := pki.OpenClientCert(file).Current(); c == nil || c.Leaf.SerialNumber.String() != latest {
		t.Errorf("the file holds %v, want the latest certificate %s", c, latest)
	}
}
