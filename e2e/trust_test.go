package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"time"
)

// trusting is an HTTP client that trusts the CA in caFile (a tier's
// <data-dir>/tls/ca.crt) for HTTPS, when the file exists.
func trusting(caFile string, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return c
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	c.Transport = t
	return c
}

// httpsGet is httpGet trusting the CA in caFile.
func httpsGet(url, caFile string) (string, error) {
	resp, err := trusting(caFile, 3*time.Second).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
