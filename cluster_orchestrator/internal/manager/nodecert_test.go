package manager

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCertBound: a node that registered with a certificate request has a
// certificate identity, kept in the store across a restart; registering
// again without one (back to password-only MQTT) is refused and changes
// nothing; a deleted node is unknown at once.
func TestCertBound(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	open := func() *Manager {
		m, err := New(ctx, Config{ClusterName: "c1", Grace: time.Hour, Tick: time.Second, NodeCerts: true}, realStore(t, dir), pub, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	req := wire.NodeRegisterRequest{Name: "n1", Arch: "amd64", Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}, CSRPEM: "csr"}
	id, err := m.RegisterNode(ctx, req, "pw-1")
	if err != nil {
		t.Fatal(err)
	}
	old, err := m.RegisterNode(ctx, wire.NodeRegisterRequest{Name: "old", Arch: "amd64", Capacity: req.Capacity}, "pw-old")
	if err != nil {
		t.Fatal(err)
	}
	m = open() // restarted
	if known, bound := m.NodeCert(id); !known || !bound {
		t.Fatalf("NodeCert(n1) = %v, %v after a restart; want known and bound", known, bound)
	}
	if known, bound := m.NodeCert(old); !known || bound {
		t.Errorf("NodeCert(old) = %v, %v; want known, not bound", known, bound)
	}
	downgrade := req
	downgrade.CSRPEM, downgrade.NodeID, downgrade.Credential = "", id, "pw-1"
	_, err = m.RegisterNode(ctx, downgrade, "pw-2")
	var cr *CertRequiredError
	if !errors.As(err, &cr) {
		t.Fatalf("registering n1 again without a CSR: %v; want CertRequiredError", err)
	}
	if !m.CheckNodePassword(id, []byte("pw-1")) || m.CheckNodePassword(id, []byte("pw-2")) {
		t.Error("the refused registration changed the node's password")
	}
	again := req
	again.NodeID, again.Credential = id, "pw-1"
	if got, err := m.RegisterNode(ctx, again, "pw-3"); err != nil || got != id {
		t.Fatalf("registering n1 again with a CSR: %q, %v", got, err)
	}
	if _, err := m.DeleteNodes(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	if known, _ := m.NodeCert(id); known {
		t.Error("a deleted node is still known")
	}
}
