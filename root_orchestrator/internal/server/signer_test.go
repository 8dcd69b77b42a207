package server

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// TestDownloadSignerKeepsItsKey: the signing key survives a restart (the
// scripts need no new trust) and its certificate is issued anew by the CA.
func TestDownloadSignerKeepsItsKey(t *testing.T) {
	ca, err := pki.NewCA("root CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), TLSDir, pki.SigningKeyFile)
	first, err := downloadSigner(context.Background(), ca, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	second, err := downloadSigner(context.Background(), ca, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Key.Equal(second.Key) {
		t.Error("a new signing key at the second start")
	}
	block, _ := pem.Decode(second.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		t.Error(err)
	}
	if !cert.PublicKey.(ed25519.PublicKey).Equal(second.Key.Public()) {
		t.Error("the certificate is not for the key")
	}
}
