package pki

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"
)

// Serving is a listener's certificate, issued by a CA for the listener's
// names and issued again, in memory, once less than a third of its
// validity is left: a listener that runs for years never serves an expired
// certificate, and a restart issues one for the names of that start.
type Serving struct {
	ca   *CA
	leaf Leaf
	// Now is the clock (time.Now when nil), for tests.
	Now func() time.Time

	mu  sync.Mutex
	cur *tls.Certificate
}

// NewServing issues the first certificate for l (which must be a server's).
func NewServing(ca *CA, l Leaf) (*Serving, error) {
	if !l.Server {
		return nil, fmt.Errorf("pki: serving certificate for %s: not a server's", l.Name)
	}
	if l.Validity <= 0 {
		l.Validity = 90 * 24 * time.Hour
	}
	s := &Serving{ca: ca, leaf: l}
	if _, err := s.Certificate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Certificate returns the current certificate, issuing a new one when the
// current one has less than a third of its validity left.
func (s *Serving) Certificate() (*tls.Certificate, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && now().Before(s.cur.Leaf.NotAfter.Add(-s.leaf.Validity/3)) {
		return s.cur, nil
	}
	c, err := s.ca.Issue(s.leaf)
	if err != nil {
		if s.cur != nil && now().Before(s.cur.Leaf.NotAfter) {
			return s.cur, nil // still valid: try again at the next handshake
		}
		return nil, err
	}
	s.cur = &c
	return s.cur, nil
}

// TLSConfig is a server configuration serving the certificate.
func (s *Serving) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.Certificate() },
	}
}
