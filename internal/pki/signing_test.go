package pki

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSigningKeyIsKeptAndCertified(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tls", SigningKeyFile)
	key, err := LoadOrCreateSigningKey(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadOrCreateSigningKey(file)
	if err != nil || !again.Equal(key) {
		t.Fatalf("reloaded another key (%v)", err)
	}
	ca, err := NewCA("root CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.CertifySigningKey(key.Public().(ed25519.PublicKey), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		t.Errorf("not a code signing certificate of the CA: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("the signing certificate also serves TLS")
	}
	if cert.Subject.CommonName != SigningName || !cert.PublicKey.(ed25519.PublicKey).Equal(key.Public()) {
		t.Errorf("certificate: %s", cert.Subject)
	}
	if !cert.NotAfter.After(time.Now().Add(23 * time.Hour)) {
		t.Errorf("valid until %s", cert.NotAfter)
	}

	// Not an Ed25519 key: an error, and the file stays.
	ecKey, _ := encodeKey(ca.Key)
	bad := filepath.Join(t.TempDir(), SigningKeyFile)
	os.WriteFile(bad, ecKey, 0o600)
	if _, err := LoadOrCreateSigningKey(bad); err == nil {
		t.Error("an ECDSA key loaded as the signing key")
	}
	if b, _ := os.ReadFile(bad); string(b) != string(ecKey) {
		t.Error("the bad key file was replaced")
	}
}
