// Package nodeapi serves the cluster's HTTP API for worker nodes: node
// registration with the node join token, which answers the node's identity,
// its own MQTT credentials and its client certificate; the renewal of that
// certificate (authenticated by the current one); plus /healthz and
// /metrics.
package nodeapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodecert"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/jsonhttp"
	"github.com/thicket-edge/thicket/internal/pki"
)

// NameRE is the form of a node name.
var NameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Registrar admits nodes. An error with a NodeDeleted method refuses a
// node an admin deleted (409). An error with a NameTaken method refuses a name
// that belongs to another registered node (409).
type Registrar interface {
	RegisterNode(ctx context.Context, req wire.NodeRegisterRequest, password string) (string, error)
}

// Config of the API.
type Config struct {
	// JoinToken is what nodes must show to register: its secret (a
	// token in thk1 form, with the pin of the cluster's CA, counts by its
	// secret, and nodes may show either form).
	JoinToken string
	// MQTTURL is the broker address given to nodes.
	MQTTURL string
	// MQTTCAPEM is the PEM of the CA nodes verify the broker with
	// (wire.NodeRegisterResponse.MQTTCAPEM); empty for a plain broker or
	// one the system's roots trust.
	MQTTCAPEM      string
	ReportInterval time.Duration
	// Tokens, if set, decides which tokens admit a node (the cluster's
	// own and the root's node tokens, see package nodetokens); nil: only
	// JoinToken does.
	Tokens Admitter
	// Metrics serves GET /metrics (nil: not served); see package
	// metricsauth.
	Metrics http.Handler
	// Certs issues and checks nodes' client certificates (nil: plain
	// text, no certificates; certificate requests are ignored).
	Certs *nodecert.Issuer
}

// Handler returns the HTTP handler.
func Handler(cfg Config, reg Registrar, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	_, want, err := pki.ParseJoinToken(cfg.JoinToken)
	if err != nil || want == "" {
		want = cfg.JoinToken
	}
	tokens := cfg.Tokens
	if tokens == nil {
		tokens = onlyToken(want)
	}
	mux.HandleFunc("POST /api/node/register", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, secret, err := pki.ParseJoinToken(tok); err == nil {
			tok = secret
		}
		if !tokens.Known(tok) {
			writeErr(w, http.StatusUnauthorized, "invalid node join token", "")
			return
		}
		var req wire.NodeRegisterRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		if err := dec.Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), "")
			return
		}
		switch {
		case req.Version != wire.Version:
			writeErr(w, http.StatusBadRequest, "protocol version "+req.Version+" not supported; this cluster speaks "+wire.Version, "version")
			return
		case !NameRE.MatchString(req.Name):
			writeErr(w, http.StatusBadRequest, "name must match "+NameRE.String(), "name")
			return
		case wire.CheckCapacity(req.Capacity) != nil:
			writeErr(w, http.StatusBadRequest, wire.CheckCapacity(req.Capacity).Error(), "capacity")
			return
		}
		if cfg.Certs == nil {
			req.CSRPEM = "" // nothing to issue it with
		} else if req.CSRPEM != "" {
			if _, err := pki.ParseCSR([]byte(req.CSRPEM)); err != nil {
				writeErr(w, http.StatusBadRequest, err.Error(), "csr_pem")
				return
			}
		}
		// A node that shows a client certificate must show its own (whether
		// that node is still registered, or deleted, is the registrar's
		// question: a cluster that lost its store takes its nodes back).
		if peer := nodecert.Peer(r.TLS); peer != nil && cfg.Certs != nil {
			if err := cfg.Certs.Names(req.NodeID, peer, "api"); err != nil {
				log.Warn("node registration refused", "node", req.Name, "from", r.RemoteAddr, "err", err)
				writeErr(w, http.StatusForbidden, err.Error(), "")
				return
			}
		}
		undo, ok := admit(w, r, tokens, tok, req, reg, log)
		if !ok {
			return
		}
		pw, err := randomPassword()
		if err != nil {
			undo(context.WithoutCancel(r.Context()))
			writeErr(w, http.StatusInternalServerError, "internal error", "")
			return
		}
		id, err := reg.RegisterNode(r.Context(), req, pw)
		if err != nil {
			undo(context.WithoutCancel(r.Context()))
		}
		var deleted interface{ NodeDeleted() string }
		if errors.As(err, &deleted) {
			log.Warn("node registration refused: the node was deleted", "node", req.Name, "id", deleted.NodeDeleted(), "from", r.RemoteAddr)
			writeErr(w, http.StatusConflict, err.Error(), "node_id")
			return
		}
		var taken interface{ NameTaken() string }
		if errors.As(err, &taken) {
			log.Warn("node registration refused: name taken", "node", req.Name, "from", r.RemoteAddr)
			writeErr(w, http.StatusConflict, err.Error(), "name")
			return
		}
		var certReq interface{ CertRequired() string }
		if errors.As(err, &certReq) {
			log.Warn("node registration refused: no certificate request", "node", req.Name, "from", r.RemoteAddr)
			writeErr(w, http.StatusBadRequest, err.Error(), "csr_pem")
			return
		}
		if err != nil {
			log.Error("register node", "node", req.Name, "err", err)
			writeErr(w, http.StatusInternalServerError, "internal error", "")
			return
		}
		var certPEM string
		if req.CSRPEM != "" {
			if certPEM, err = cfg.Certs.Issue(id, req.CSRPEM, false); err != nil {
				log.Error("issue node certificate", "node", req.Name, "err", err)
				writeErr(w, http.StatusInternalServerError, "internal error", "")
				return
			}
		}
		jsonhttp.Write(w, http.StatusOK, wire.NodeRegisterResponse{
			NodeID: id, MQTTURL: brokerFor(cfg.MQTTURL, r.Host), MQTTUsername: id, MQTTPassword: pw,
			DesiredTopic: wire.DesiredTopic(id), ReportTopic: wire.ReportTopic(id),
			ReportIntervalMS: cfg.ReportInterval.Milliseconds(), MQTTCAPEM: cfg.MQTTCAPEM, CertPEM: certPEM,
		})
	})
	mux.HandleFunc("POST /api/node/certificate", func(w http.ResponseWriter, r *http.Request) {
		renewCert(w, r, cfg.Certs, log)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		jsonhttp.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return mux
}

// brokerFor is the broker URL for a node that reached this API at host
// (the request's Host): the configured one, unless that names a loopback
// address and the node came from elsewhere, when the node gets the host it
// dialled, with the broker's port. A cluster in a container or behind a
// port forward (Docker Compose advertises 127.0.0.1 by default) then
// works for workers on other machines without knowing its outside address.
func brokerFor(mqttURL, host string) string {
	u, err := url.Parse(mqttURL)
	if err != nil {
		return mqttURL
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if (err != nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return mqttURL
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "" || h == "localhost" {
		return mqttURL
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil && a.IsLoopback() {
		return mqttURL
	}
	h = strings.Trim(h, "[]")
	if u.Port() == "" {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		u.Host = h
	} else {
		u.Host = net.JoinHostPort(h, u.Port())
	}
	return u.String()
}

// renewCert issues a node a new certificate: its current one, verified by
// the TLS handshake, is its only credential here.
func renewCert(w http.ResponseWriter, r *http.Request, certs *nodecert.Issuer, log *slog.Logger) {
	if certs == nil {
		writeErr(w, http.StatusNotFound, "this cluster issues no node certificates (it serves plain text)", "")
		return
	}
	peer := nodecert.Peer(r.TLS)
	if peer == nil {
		writeErr(w, http.StatusUnauthorized, "present the node's client certificate", "")
		return
	}
	id, err := certs.Identity(peer)
	if err != nil {
		log.Warn("node certificate renewal refused", "from", r.RemoteAddr, "err", err)
		writeErr(w, http.StatusForbidden, err.Error(), "")
		return
	}
	var req wire.NodeCertificateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), "")
		return
	}
	if req.Version != wire.Version {
		writeErr(w, http.StatusBadRequest, "protocol version "+req.Version+" not supported; this cluster speaks "+wire.Version, "version")
		return
	}
	certPEM, err := certs.Issue(id, req.CSRPEM, true)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error(), "csr_pem")
		return
	}
	log.Debug("node certificate renewed", "id", id)
	jsonhttp.Write(w, http.StatusOK, wire.NodeCertificateResponse{NodeID: id, CertPEM: certPEM})
}

func randomPassword() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func writeErr(w http.ResponseWriter, status int, msg, field string) {
	jsonhttp.Write(w, status, api.Error{Error: msg, Field: field})
}
