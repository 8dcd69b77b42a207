// Package nodecert is the client certificate identity of the cluster's
// nodes: the cluster's CA issues each node, at registration and at every
// renewal, a short-lived certificate for the key the node keeps (common
// name its id, URI SAN spiffe://thicket/cluster/<cluster>/node/<id>), and
// Check decides whether what a client presented authenticates it as a
// node. Deleted nodes are unknown to the manager, so their certificates
// are refused at once.
package nodecert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/thicket-edge/thicket/internal/pki"
)

// DefaultTTL is the validity of a node certificate (--node-cert-ttl).
const DefaultTTL = 7 * 24 * time.Hour

// MinTTL bounds --node-cert-ttl from below: a node renews at two thirds of
// it and needs a few seconds to.
const MinTTL = 10 * time.Second

// Nodes tells which nodes exist (the cluster manager).
type Nodes interface {
	// NodeCert: id is registered (not deleted), and whether it registered
	// with a certificate request (then it must present its certificate).
	NodeCert(id string) (known, bound bool)
}

// Issuer issues node certificates with the cluster's CA.
type Issuer struct {
	CA      *pki.CA
	Cluster string // the cluster's name, in the identity URI
	TTL     time.Duration
	Nodes   Nodes
}

// Issue certifies the key of the certificate request csrPEM for node id;
// renew says why (a renewal or a registration), for the metrics. It
// returns the chain in PEM (the node's certificate, then the CA's).
func (i *Issuer) Issue(id, csrPEM string, renew bool) (string, error) {
	pub, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		return "", err
	}
	leaf, err := i.CA.Sign(pub, pki.NodeLeaf(i.Cluster, id, i.TTL))
	if err != nil {
		return "", err
	}
	how := "register"
	if renew {
		how = "renew"
	}
	mIssued.WithLabelValues(how).Inc()
	return string(i.CA.ChainPEM(leaf)), nil
}

// ErrRefused is every refusal of Check.
var ErrRefused = errors.New("client certificate refused")

// Check decides whether a client that claims to be node id (its MQTT
// username, or the node its request is for) and presented cert (verified
// against the cluster's CA by the TLS handshake; nil: none) is that node:
// a certificate must name id, and a node with a certificate identity
// must present it. where ("mqtt", "api") labels the refusal metric.
func (i *Issuer) Check(id string, cert *x509.Certificate, where string) error {
	err := i.check(id, cert)
	if err != nil {
		mRefused.WithLabelValues(where).Inc()
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

func (i *Issuer) check(id string, cert *x509.Certificate) error {
	known, bound := i.Nodes.NodeCert(id)
	if cert == nil {
		if bound {
			return fmt.Errorf("node %s has a client certificate identity and presented none", id)
		}
		return nil // a node that registered without a CSR (an older node)
	}
	got, err := pki.NodeOf(cert, i.Cluster)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("the certificate is node %s's, not node %s's", got, id)
	}
	if !known {
		return fmt.Errorf("node %s is not registered (deleted by an admin, or unknown)", id)
	}
	return nil
}

// Names checks only that cert names node id (for a registration, which
// the registrar decides).
func (i *Issuer) Names(id string, cert *x509.Certificate, where string) error {
	got, err := pki.NodeOf(cert, i.Cluster)
	if err == nil && got != id {
		err = fmt.Errorf("the certificate is node %s's, not node %q's", got, id)
	}
	if err != nil {
		mRefused.WithLabelValues(where).Inc()
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// Identity is the node a verified client certificate names, if it is a
// registered node with a certificate identity (for renewal: the
// certificate alone authenticates).
func (i *Issuer) Identity(cert *x509.Certificate) (string, error) {
	id, err := pki.NodeOf(cert, i.Cluster)
	if err == nil {
		if known, bound := i.Nodes.NodeCert(id); !known || !bound {
			err = fmt.Errorf("node %s is not registered with a certificate identity (deleted by an admin, or unknown)", id)
		}
	}
	if err != nil {
		mRefused.WithLabelValues("api").Inc()
		return "", fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return id, nil
}

// ServerTLS is base (a listener's configuration) asking clients for a
// certificate and verifying any they present against the cluster's CA
// (chain, validity, client use): a certificate of another CA or an expired
// one fails the handshake, counted with label where. A client without one
// may go on (the manager's own client; older nodes; a node registering
// afresh), to be checked by Check.
func (i *Issuer) ServerTLS(base *tls.Config, where string) *tls.Config {
	return pki.VerifyClients(base, i.CA, func(error) { mRefused.WithLabelValues(where).Inc() })
}

// Peer is the client certificate of a connection served with ServerTLS
// (verified by then), or nil.
func Peer(cs *tls.ConnectionState) *x509.Certificate { return pki.Peer(cs) }

var (
	mIssued = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "node_certificates_issued_total",
		Help: "Node client certificates issued, at registration (how=register) and renewal (how=renew).",
	}, []string{"how"})
	mRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "node_certificates_refused_total",
		Help: "Node client certificates refused (another node's, a deleted node's, missing where required), by listener (mqtt, api).",
	}, []string{"where"})
)
