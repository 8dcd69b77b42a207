package httpapi

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// Cluster client certificates: a cluster that registers with a certificate
// request gets a short-lived client certificate from the root's CA (common
// name its name, URI SAN spiffe://thicket/cluster/<id>), renews it at
// POST /api/cluster/certificate, and from then on every call of its
// credential must come over a connection that presented it. The TLS
// listener verifies what clients present (server.go); here a verified
// certificate is matched to the cluster whose credential the call carries.

// DefaultClusterCertTTL is the validity of a cluster certificate
// (--cluster-cert-ttl); MinClusterCertTTL bounds it from below (a cluster
// renews at two thirds of it and needs a few seconds to).
const (
	DefaultClusterCertTTL = 30 * 24 * time.Hour
	MinClusterCertTTL     = 10 * time.Second
)

// clusterCerts issues cluster certificates.
type clusterCerts struct {
	ca  *pki.CA
	ttl time.Duration
}

// IssueClusterCerts makes the API issue cluster certificates with ca
// (which holds its key) valid for ttl, and require them of the clusters
// bound to one. Without it (a root on an operator's certificate without
// the CA's key) clusters authenticate with their credential alone.
func (s *Server) IssueClusterCerts(ca *pki.CA, ttl time.Duration) {
	s.clusterCerts = &clusterCerts{ca: ca, ttl: ttl}
}

// ClusterCertRefused counts a client certificate the TLS handshake refused
// (another CA's, expired), for the listener's verification.
func ClusterCertRefused(error) { mClusterCertRefused.WithLabelValues("handshake").Inc() }

func (cc *clusterCerts) issue(cl *state.Cluster, csr crypto.PublicKey, how string) (string, error) {
	leaf, err := cc.ca.Sign(csr, pki.ClusterLeaf(cl.ID, cl.Name, cc.ttl))
	if err != nil {
		return "", fmt.Errorf("issue the certificate of cluster %s: %w", cl.Name, err)
	}
	mClusterCertIssued.WithLabelValues(how).Inc()
	return string(cc.ca.ChainPEM(leaf)), nil
}

// checkClusterCert decides whether a call with cl's credential came with
// the right certificate: one presented must name cl, and a cluster bound
// to a certificate must present it. A mismatch is 403.
func (s *Server) checkClusterCert(c echo.Context, cl *state.Cluster) (*x509.Certificate, error) {
	if s.clusterCerts == nil {
		return nil, nil // nothing verified what a client presents
	}
	cert := pki.ClientOf(c.Request(), s.clusterCerts.ca)
	var err error
	switch {
	case cert == nil && cl.CertBound:
		err = fmt.Errorf("cluster %s has a client certificate identity and presented none", cl.Name)
	case cert != nil:
		var id string
		if id, err = pki.ClusterOf(cert); err == nil && id != cl.ID {
			err = fmt.Errorf("the certificate is cluster %s's, not cluster %s's (%s)", id, cl.ID, cl.Name)
		}
	}
	if err != nil {
		mClusterCertRefused.WithLabelValues("api").Inc()
		s.log.Warn("cluster call refused: client certificate", "cluster", cl.Name, "from", c.RealIP(), "err", err)
		return nil, &Error{Status: http.StatusForbidden, Message: "client certificate refused: " + err.Error()}
	}
	return cert, nil
}

// renewClusterCert issues a bound cluster a new certificate for the key of
// its CSR; the call must carry both its current certificate and its
// credential.
func (s *Server) renewClusterCert(c echo.Context) error {
	if s.clusterCerts == nil {
		return &Error{Status: http.StatusNotImplemented, Message: "this root issues no cluster certificates (it serves an operator's certificate without its CA's key)"}
	}
	cl, err := s.authCluster(c)
	if err != nil {
		return err
	}
	var req wire.ClusterCertificateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkVersion(req.Version); err != nil {
		return err
	}
	if pki.ClientOf(c.Request(), s.clusterCerts.ca) == nil || !cl.CertBound {
		mClusterCertRefused.WithLabelValues("api").Inc()
		return &Error{Status: http.StatusForbidden, Message: "a renewal needs the cluster's current client certificate (a cluster without one registers with a CSR)"}
	}
	pub, err := pki.ParseCSR([]byte(req.CSRPEM))
	if err != nil {
		return errBadRequest(err.Error(), "csr_pem")
	}
	chain, err := s.clusterCerts.issue(cl, pub, "renew")
	if err != nil {
		return err
	}
	s.log.Info("cluster certificate renewed", "cluster", cl.Name, "id", cl.ID)
	return c.JSON(http.StatusOK, wire.ClusterCertificateResponse{CertPEM: chain})
}

var (
	mClusterCertIssued = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "cluster_certificates_issued_total",
		Help: "Cluster client certificates issued, at registration (how=register) and renewal (how=renew).",
	}, []string{"how"})
	mClusterCertRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "cluster_certificates_refused_total",
		Help: "Cluster client certificates refused: by the TLS handshake (where=handshake: another CA's, expired) or by a cluster call (where=api: another cluster's, missing where required).",
	}, []string{"where"})
)

// clusterCSR reads a registration's certificate request: nil when there is
// none or this root issues no certificates (the cluster then goes on with
// its credential alone), a 400 when it is broken.
func (s *Server) clusterCSR(csrPEM string) (crypto.PublicKey, error) {
	if csrPEM == "" || s.clusterCerts == nil {
		return nil, nil
	}
	pub, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		return nil, errBadRequest(err.Error(), "csr_pem")
	}
	return pub, nil
}
