package rootsync

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// The cluster's client certificate towards the root: the link makes a key
// for every registration and renewal, sends its certificate request, and
// keeps the root's certificate with the key in Config.ClientCertFile
// (0600, replaced whole). Every connection to the root presents it
// (GetClientCertificate), so a renewal reaches new handshakes without
// disturbing the sync or the watch. It renews at two thirds of the
// certificate's lifetime; a certificate the root refuses (expired while
// the root was away, say) makes the link register again.

// ClientCertFile is the file, in the cluster's data dir, of its client
// certificate towards the root.
const ClientCertFile = "root-client.pem"

// errCertRefused: the root refused our client certificate (or wanted one).
var errCertRefused = errors.New("client certificate refused by the root")

var mCertRenewals = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "thicket_cluster", Name: "root_certificate_renewals_total",
	Help: "Renewals of the cluster's client certificate towards the root, by result.",
}, []string{"result"})

// getClientCertificate is for the link's TLS configurations: the current
// certificate, if any.
func (l *Link) getClientCertificate(i *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if l.cert == nil {
		return &tls.Certificate{}, nil
	}
	return l.cert.GetClientCertificate(i)
}

// newCSR makes a key and a certificate request for this cluster ("" and a
// nil key without a certificate file: no client certificate).
func (l *Link) newCSR() (crypto.Signer, string, error) {
	if l.cert == nil {
		return nil, "", nil
	}
	key, csr, err := pki.NewCSR(l.cfg.Register.Name)
	if err != nil {
		return nil, "", err
	}
	return key, string(csr), nil
}

// takeCert keeps the certificate chain the root issued for key ("": it
// issued none, which leaves the link with its credential alone).
func (l *Link) takeCert(chainPEM string, key crypto.Signer) error {
	if chainPEM == "" || key == nil {
		return nil
	}
	if err := l.cert.Set([]byte(chainPEM), key); err != nil {
		return fmt.Errorf("the root's client certificate: %w", err)
	}
	// Connections kept open were made with the certificate before (or
	// none): the next calls connect anew and present this one. The watch
	// does so before its next poll.
	l.certGen.Add(1)
	l.http.CloseIdleConnections()
	return nil
}

// renewCerts renews the client certificate at two thirds of its lifetime
// until ctx ends; a failed renewal is tried again every few seconds while
// the certificate is valid.
func (l *Link) renewCerts(ctx context.Context) {
	if l.cert == nil {
		return
	}
	for ctx.Err() == nil {
		at := l.cert.RenewAt()
		if at.IsZero() {
			sleep(ctx, time.Second) // none yet: the registration brings it
			continue
		}
		sleep(ctx, time.Until(at))
		if ctx.Err() != nil || !l.cert.RenewAt().Equal(at) {
			continue // stopped, or a registration brought a new one
		}
		if err := l.renewCert(ctx); err != nil {
			mCertRenewals.WithLabelValues("error").Inc()
			l.log.Warn("renew the cluster's client certificate towards the root", "err", err)
			sleep(ctx, min(5*time.Second, max(time.Second, time.Until(l.cert.Current().Leaf.NotAfter)/10)))
			continue
		}
		mCertRenewals.WithLabelValues("ok").Inc()
		l.log.Info("renewed the cluster's client certificate towards the root", "not_after", l.cert.Current().Leaf.NotAfter)
	}
}

// renewCert asks the root for a new certificate, showing the current one
// and the credential.
func (l *Link) renewCert(ctx context.Context) error {
	l.mu.Lock()
	id := l.id
	l.mu.Unlock()
	if id == nil {
		return errors.New("not registered")
	}
	key, csr, err := l.newCSR()
	if err != nil {
		return err
	}
	var ans wire.ClusterCertificateResponse
	if err := l.post(ctx, "/api/cluster/certificate", id.Credential, wire.ClusterCertificateRequest{Version: wire.Version, CSRPEM: csr}, &ans); err != nil {
		return err
	}
	if ans.CertPEM == "" {
		return errors.New("the root answered no certificate")
	}
	return l.takeCert(ans.CertPEM, key)
}

// freshConns closes client's idle connections when the certificate changed
// since *seen (the watch's client, whose poll holds its connection).
func (l *Link) freshConns(client *http.Client, seen *uint64) {
	if g := l.certGen.Load(); g != *seen {
		*seen = g
		client.CloseIdleConnections()
	}
}
