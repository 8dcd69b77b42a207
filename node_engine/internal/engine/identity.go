package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// identityFile holds the node's client certificate (chain) and its key,
// in PEM, mode 0600, replaced as a whole at every renewal.
const identityFile = "node-identity.pem"

// identity is the node's client certificate, read from the data dir on
// first use.
func (e *Engine) identity() *pki.ClientCert {
	e.identOnce.Do(func() { e.ident = pki.OpenClientCert(filepath.Join(e.cfg.DataDir, identityFile)) })
	return e.ident
}

// renewRetry bounds the wait between failed renewals.
const renewRetry = 30 * time.Second

// renewCerts renews the node's client certificate at two thirds of its
// lifetime, for as long as ctx lasts. The new one is used from the next
// handshake on: the MQTT connection and the instances are not disturbed.
// A node whose certificate ran out (the cluster was away) gets a new one
// when it registers again (see serve).
func (e *Engine) renewCerts(ctx context.Context) {
	retry := time.Second
	for {
		wait := renewRetry
		if at := e.identity().RenewAt(); !at.IsZero() {
			wait = time.Until(at)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		cur := e.identity().Current()
		if cur == nil || time.Now().Before(e.identity().RenewAt()) {
			continue // none (yet), or renewed by a registration meanwhile
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := e.renewCert(rctx)
		cancel()
		if err == nil {
			retry = time.Second
			continue
		}
		if ctx.Err() != nil {
			return
		}
		left := time.Until(cur.Leaf.NotAfter)
		e.log.Warn("cannot renew the node's client certificate; retrying", "err", err, "expires_in", left.Round(time.Second), "in", retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, renewRetry, max(left/10, time.Second))
	}
}

// renewCert asks the cluster for a certificate for a new key, presenting
// the current certificate as the node's only credential.
func (e *Engine) renewCert(ctx context.Context) error {
	trust, err := e.trust()
	if err != nil {
		return err
	}
	if trust.plain {
		return errors.New("no client certificates over plain HTTP")
	}
	key, csr, err := pki.NewCSR(e.cfg.Name)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(wire.NodeCertificateRequest{Version: wire.Version, CSRPEM: string(csr)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(e.cfg.ClusterURL, "/")+"/api/node/certificate", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := trust.httpClient(e.identity()).Do(req)
	if err != nil {
		return fmt.Errorf("renew the client certificate at %s: %w", e.cfg.ClusterURL, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("renew the client certificate at %s: %s: %s", e.cfg.ClusterURL, resp.Status, bytes.TrimSpace(data))
	}
	var ans wire.NodeCertificateResponse
	if err := json.Unmarshal(data, &ans); err != nil {
		return fmt.Errorf("renew the client certificate: decode answer: %w", err)
	}
	e.mu.Lock()
	id := e.nodeID
	e.mu.Unlock()
	if id != "" && ans.NodeID != id {
		return fmt.Errorf("renew the client certificate: the cluster answered for node %q, this is %q", ans.NodeID, id)
	}
	if err := e.identity().Set([]byte(ans.CertPEM), key); err != nil {
		return fmt.Errorf("renew the client certificate: %w", err)
	}
	leaf := e.identity().Current().Leaf
	e.log.Info("client certificate renewed", "node_id", ans.NodeID, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC())
	return nil
}
