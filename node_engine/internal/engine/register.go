package engine

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// credentialsFile keeps the node's identity in the data dir (mode 0600), so
// that a restarted engine is the same node.
const credentialsFile = "node-credentials.json"

type credentials struct {
	ClusterURL string `json:"cluster_url"`
	// CAPin is the pin of the cluster's CA that the registration was
	// verified with ("" over plain HTTP). The broker's CA
	// (NodeRegisterResponse.MQTTCAPEM) came over that connection, so a
	// restarted node verifies the broker as the first start did.
	CAPin string `json:"ca_pin,omitempty"`
	wire.NodeRegisterResponse
}

// interval is how often the node reports (the cluster says; 1 s if not).
func (c *credentials) interval() time.Duration {
	if c.ReportIntervalMS <= 0 {
		return time.Second
	}
	return time.Duration(c.ReportIntervalMS) * time.Millisecond
}

// ErrJoinRefused: the cluster refused the node join token.
var ErrJoinRefused = errors.New("the cluster refused the node join token")

// ErrNameTaken: the cluster has another node of this name.
var ErrNameTaken = errors.New("the node name is taken")

func (e *Engine) loadCredentials() (*credentials, error) {
	b, err := os.ReadFile(filepath.Join(e.cfg.DataDir, credentialsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if c.ClusterURL != e.cfg.ClusterURL || c.NodeID == "" {
		return nil, nil // another cluster: register anew
	}
	if pin, _, err := pki.ParseJoinToken(e.cfg.JoinToken); err == nil && pin != c.CAPin {
		// The token names another CA (the cluster's CA was replaced): the
		// saved broker CA is not to be trusted any more. The identity still
		// is this node's, to show when it registers again.
		c.MQTTCAPEM, c.MQTTURL = "", ""
	}
	return &c, nil
}

// register asks the cluster for an identity and MQTT credentials, and keeps
// them.
func (e *Engine) register(ctx context.Context) (*credentials, error) {
	trust, err := e.trust()
	if err != nil {
		return nil, err
	}
	d, _ := e.desiredSet()
	req := wire.NodeRegisterRequest{
		Version: wire.Version, Name: e.cfg.Name, Arch: e.arch(),
		Virtualizations: e.reg.Available(ctx), Capacity: e.capacity(), Address: e.cfg.Address,
		Subnet: d.Subnet, Labels: e.cfg.Labels,
	}
	// The identity from before, if any, shows that the name is ours: its
	// password, and its client certificate (over TLS).
	var present *pki.ClientCert
	if saved, err := e.loadCredentials(); err == nil && saved != nil {
		req.NodeID, req.Credential = saved.NodeID, saved.MQTTPassword
		// Only to the CA that issued it: a cluster with a new CA (and a
		// token with its pin) would refuse the handshake over it.
		if id := e.identity().Current(); id != nil && id.Leaf.Subject.CommonName == saved.NodeID && saved.CAPin == trust.pin {
			present = e.identity()
		}
	}
	// A new key for every certificate: the cluster certifies it.
	var key crypto.Signer
	if !trust.plain {
		var csr []byte
		if key, csr, err = pki.NewCSR(e.cfg.Name); err != nil {
			return nil, err
		}
		req.CSRPEM = string(csr)
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(e.cfg.ClusterURL, "/")+"/api/node/register", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+trust.secret)
	resp, err := trust.httpClient(present).Do(hreq)
	if errors.Is(err, pki.ErrPinMismatch) {
		return nil, fmt.Errorf("register with %s: refused the server, nothing sent: %w", e.cfg.ClusterURL, err)
	}
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", e.cfg.ClusterURL, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("register with %s: %w", e.cfg.ClusterURL, ErrJoinRefused)
	case resp.StatusCode == http.StatusConflict:
		var ae struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			ae.Error = string(bytes.TrimSpace(data))
		}
		return nil, fmt.Errorf("register with %s as %q: %w: %s", e.cfg.ClusterURL, e.cfg.Name, ErrNameTaken, ae.Error)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("register with %s: %s: %s", e.cfg.ClusterURL, resp.Status, bytes.TrimSpace(data))
	}
	c := &credentials{ClusterURL: e.cfg.ClusterURL, CAPin: trust.pin}
	if err := json.Unmarshal(data, &c.NodeRegisterResponse); err != nil {
		return nil, fmt.Errorf("register: decode answer: %w", err)
	}
	if c.CertPEM != "" {
		// Kept in its own file with its key; not in the credentials.
		if err := e.identity().Set([]byte(c.CertPEM), key); err != nil {
			return nil, fmt.Errorf("register: the client certificate: %w", err)
		}
		c.CertPEM = ""
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	file := filepath.Join(e.cfg.DataDir, credentialsFile)
	if err := os.WriteFile(file+".tmp", b, 0o600); err != nil {
		return nil, fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		return nil, fmt.Errorf("save credentials: %w", err)
	}
	e.log.Info("registered with the cluster", "cluster", e.cfg.ClusterURL, "node_id", c.NodeID, "name", e.cfg.Name)
	return c, nil
}
