package apitest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// certCall sends a cluster call over a connection presenting cert (none:
// nil) with credential cred, and returns status and body.
func (r *root) certCall(t *testing.T, cert *tls.Certificate, method, path, cred string, body any) (int, string) {
	t.Helper()
	c := r.httpClient()
	if cert != nil {
		tr := c.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		c.Transport = tr
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newClusterKey makes a key and CSR, and returns a function that turns the
// root's chain for it into a TLS certificate.
func newClusterKey(t *testing.T) (string, func(chainPEM string) *tls.Certificate) {
	t.Helper()
	key, csr, err := pki.NewCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	return string(csr), func(chainPEM string) *tls.Certificate {
		t.Helper()
		file := t.TempDir() + "/cert.pem"
		cc := pki.OpenClientCert(file)
		if err := cc.Set([]byte(chainPEM), key); err != nil {
			t.Fatalf("the root's certificate: %v", err)
		}
		return cc.Current()
	}
}

// TestClusterCertificates: a cluster registering with a CSR gets a client
// certificate naming it; from then on its calls need it, another
// cluster's certificate is refused (403, counted), a deleted cluster's
// certificate works no more, and it renews with its certificate and
// credential. A cluster without a CSR keeps its credential alone.
func TestClusterCertificates(t *testing.T) {
	r, admin, join, g := rootForClusters(t, "clustercert")
	register := func(name string) (wire.ClusterRegisterResponse, *tls.Certificate) {
		t.Helper()
		csr, pair := newClusterKey(t)
		resp := r.do("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: name, CSRPEM: csr})
		var reg wire.ClusterRegisterResponse
		if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &reg) != nil || reg.CertPEM == "" {
			t.Fatalf("register %s with a CSR: %s", name, resp)
		}
		return reg, pair(reg.CertPEM)
	}
	alpha, alphaCert := register("alpha")
	beta, betaCert := register("beta")
	gamma := g.mustRegister(join, "gamma", "") // no CSR
	if gamma.CertPEM != "" {
		t.Errorf("a registration without a CSR got a certificate")
	}

	leaf := alphaCert.Leaf
	if id, err := pki.ClusterOf(leaf); err != nil || id != alpha.ClusterID || leaf.Subject.CommonName != "alpha" {
		t.Errorf("alpha's certificate names %q (%v), CN %q; want %s", id, err, leaf.Subject.CommonName, alpha.ClusterID)
	}
	if life := time.Until(leaf.NotAfter); life < 700*time.Hour || life > 721*time.Hour {
		t.Errorf("certificate valid for %s more, want the default 720h", life)
	}

	sync := wire.ClusterSync{Version: wire.Version, Delta: true}
	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue(pki.ClusterLeaf(alpha.ClusterID, "alpha", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		method string
		path   string
		cred   string
		status int
		want   string
	}{
		{"alpha with its certificate", alphaCert, "POST", "/api/cluster/sync", alpha.Credential, http.StatusOK, ""},
		{"alpha without it", nil, "POST", "/api/cluster/sync", alpha.Credential, http.StatusForbidden, "presented none"},
		{"alpha with beta's", betaCert, "POST", "/api/cluster/sync", alpha.Credential, http.StatusForbidden, "is cluster " + beta.ClusterID + "'s"},
		{"alpha's watch with its certificate", alphaCert, "GET", "/api/cluster/desired?delta=1&wait=0s", alpha.Credential, http.StatusOK, ""},
		{"alpha's watch with beta's", betaCert, "GET", "/api/cluster/desired?delta=1&wait=0s", alpha.Credential, http.StatusForbidden, "client certificate refused"},
		{"alpha's watch without", nil, "GET", "/api/cluster/desired?delta=1&wait=0s", alpha.Credential, http.StatusForbidden, "presented none"},
		{"gamma without one", nil, "POST", "/api/cluster/sync", gamma.Credential, http.StatusOK, ""},
		{"gamma with alpha's", alphaCert, "POST", "/api/cluster/sync", gamma.Credential, http.StatusForbidden, "client certificate refused"},
		{"another CA's", &foreign, "POST", "/api/cluster/sync", alpha.Credential, 0, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = sync
			}
			status, got := r.certCall(t, tc.cert, tc.method, tc.path, tc.cred, body)
			if status != tc.status || !strings.Contains(got, tc.want) {
				t.Errorf("%s %s = %d %s; want %d saying %q", tc.method, tc.path, status, got, tc.status, tc.want)
			}
		})
	}

	// Renewal: the current certificate and the credential, a new key.
	csr, pair := newClusterKey(t)
	renew := wire.ClusterCertificateRequest{Version: wire.Version, CSRPEM: csr}
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		cred   string
		body   wire.ClusterCertificateRequest
		status int
		want   string
	}{
		{"without the certificate", nil, alpha.Credential, renew, http.StatusForbidden, "presented none"},
		{"with beta's", betaCert, alpha.Credential, renew, http.StatusForbidden, "client certificate refused"},
		{"with the certificate, another credential", alphaCert, beta.Credential, renew, http.StatusForbidden, "client certificate refused"},
		{"with the certificate, no credential", alphaCert, "", renew, http.StatusUnauthorized, "invalid cluster credential"},
		{"a broken CSR", alphaCert, alpha.Credential, wire.ClusterCertificateRequest{Version: wire.Version, CSRPEM: "hello"}, http.StatusBadRequest, "CERTIFICATE REQUEST"},
		{"gamma (no certificate identity)", nil, gamma.Credential, renew, http.StatusForbidden, "current client certificate"},
	} {
		t.Run("renew "+tc.name, func(t *testing.T) {
			status, got := r.certCall(t, tc.cert, "POST", "/api/cluster/certificate", tc.cred, tc.body)
			if status != tc.status || !strings.Contains(got, tc.want) {
				t.Errorf("renew = %d %s; want %d saying %q", status, got, tc.status, tc.want)
			}
		})
	}
	status, got := r.certCall(t, alphaCert, "POST", "/api/cluster/certificate", alpha.Credential, renew)
	var ans wire.ClusterCertificateResponse
	if status != http.StatusOK || json.Unmarshal([]byte(got), &ans) != nil {
		t.Fatalf("renew = %d %s", status, got)
	}
	renewed := pair(ans.CertPEM)
	if id, _ := pki.ClusterOf(renewed.Leaf); id != alpha.ClusterID || renewed.Leaf.SerialNumber.Cmp(alphaCert.Leaf.SerialNumber) == 0 {
		t.Errorf("renewed certificate names %q, serial %v (was %v)", id, renewed.Leaf.SerialNumber, alphaCert.Leaf.SerialNumber)
	}
	if status, got := r.certCall(t, renewed, "POST", "/api/cluster/sync", alpha.Credential, sync); status != http.StatusOK {
		t.Errorf("sync with the renewed certificate = %d %s", status, got)
	}

	// No way back: alpha registers again only with a CSR.
	if resp := r.do("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "alpha", Credential: alpha.Credential}); resp.Status != http.StatusBadRequest ||
		!strings.Contains(string(resp.Body), "client certificate identity") {
		t.Errorf("alpha registering again without a CSR = %s, want 400", resp)
	}
	if status, got := r.certCall(t, renewed, "POST", "/api/cluster/sync", alpha.Credential, sync); status != http.StatusOK {
		t.Errorf("the refused registration changed alpha: sync = %d %s", status, got)
	}

	// A broken CSR at registration is refused and registers nothing.
	if resp := r.do("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "delta", CSRPEM: "hello"}); resp.Status != http.StatusBadRequest {
		t.Errorf("register with a broken CSR = %s, want 400", resp)
	}
	var list []struct {
		Name string `json:"cluster_name"`
	}
	r.must("GET", "/api/clusters", admin, nil, &list)
	for _, c := range list {
		if c.Name == "delta" {
			t.Errorf("a registration with a broken CSR registered the cluster")
		}
	}

	// A deleted cluster's certificate is refused at once, with its
	// credential (revoked) or with another's.
	r.must("DELETE", "/api/clusters/"+beta.ClusterID, admin, nil, nil)
	if status, got := r.certCall(t, betaCert, "POST", "/api/cluster/sync", beta.Credential, sync); status != http.StatusUnauthorized {
		t.Errorf("deleted cluster's sync = %d %s, want 401", status, got)
	}
	if status, got := r.certCall(t, betaCert, "POST", "/api/cluster/sync", gamma.Credential, sync); status != http.StatusForbidden {
		t.Errorf("deleted cluster's certificate with gamma's credential = %d %s, want 403", status, got)
	}

	tok, err := r.started.MetricsToken()
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(r.do("GET", "/metrics", tok, nil).Body)
	for metric, least := range map[string]float64{
		`thicket_root_cluster_certificates_issued_total{how="register"}`:     2,
		`thicket_root_cluster_certificates_issued_total{how="renew"}`:        1,
		`thicket_root_cluster_certificates_refused_total{where="api"}`:       8,
		`thicket_root_cluster_certificates_refused_total{where="handshake"}`: 1,
	} {
		m := regexp.MustCompile(regexp.QuoteMeta(metric) + ` (\S+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("no %s in /metrics", metric)
			continue
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v < least {
			t.Errorf("%s = %v, want at least %v", metric, v, least)
		}
	}
}
