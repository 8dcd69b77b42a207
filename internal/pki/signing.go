package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SigningKeyFile is the file name, in a CA's directory, of the key that
// signs the download manifest.
const SigningKeyFile = "download-signing.key"

// SigningName is the common name of the certificate of the download
// signing key: the install scripts accept no other.
const SigningName = "thicket-root download signing"

// NewSigningKey makes an Ed25519 key and returns it in PEM (PKCS #8).
func NewSigningKey() (ed25519.PrivateKey, []byte, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	return key, keyPEM, err
}

// ParseSigningKey reads an Ed25519 key in PEM (PKCS #8).
func ParseSigningKey(keyPEM []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("pki: signing key: no PRIVATE KEY in PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: signing key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: signing key: a %T, not Ed25519", k)
	}
	return key, nil
}

// LoadOrCreateSigningKey reads the Ed25519 key in file, or makes one and
// writes it there (0600) when there is none.
func LoadOrCreateSigningKey(file string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err == nil {
		key, err := ParseSigningKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, file)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pki: signing key: %w", err)
	}
	key, keyPEM, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := writeFile(file, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// CertifySigningKey issues the certificate (PEM) of a download signing key:
// named SigningName, for code signing only, so that whoever pins the CA
// trusts what the key signs and nothing else it could present.
func (ca *CA) CertifySigningKey(pub ed25519.PublicKey, validity time.Duration) ([]byte, error) {
	leaf, err := ca.Sign(pub, Leaf{Name: SigningName, CodeSigning: true, Validity: validity})
	if err != nil {
		return nil, err
	}
	return encodeCert(leaf.Raw), nil
}
