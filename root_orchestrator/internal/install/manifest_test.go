package install

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// testSigner is a signing key certified by ca.
func testSigner(t *testing.T, ca *pki.CA) *Signer {
	t.Helper()
	key, _, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.CertifySigningKey(key.Public().(ed25519.PublicKey), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: key, CertPEM: certPEM}
}

func TestManifestIsSignedAndListsTheDownloads(t *testing.T) {
	dir := t.TempDir()
	here := runtime.GOOS + "-" + runtime.GOARCH
	files := map[string]string{
		"thicket-node-linux-arm64": "node arm64",
		"thicket-net-" + here:      "net explicit",
		"thicket-net":              "net plain (shadowed by the explicit file)",
		"thicket-cluster":          "cluster plain",
		"README":                   "not a binary",
		"thicket-bogus-linux-arm":  "not a binary either",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, Config{DownloadsDir: dir})
	if code, body := get(t, h.Downloads(), "/download/manifest.txt", ""); code != 404 || !strings.Contains(body, "--allow-unsigned") {
		t.Errorf("unsigned root: %d %q", code, body)
	}
	ca, err := pki.NewCA("root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.SetSigner(testSigner(t, ca))

	code, m := get(t, h.Downloads(), "/download/manifest.txt", "")
	lines := []string{"# thicket download manifest v1"}
	for _, e := range [][2]string{
		{"thicket-cluster-" + here, files["thicket-cluster"]},
		{"thicket-net-" + here, files["thicket-net-"+here]},
		{"thicket-node-linux-arm64", files["thicket-node-linux-arm64"]},
	} {
		lines = append(lines, fmt.Sprintf("%s %d %s", sum([]byte(e[1])), len(e[1]), e[0]))
	}
	if want := strings.Join(lines, "\n") + "\n"; code != 200 || m != want {
		t.Fatalf("manifest: %d\n%s\nwant\n%s", code, m, want)
	}
	_, sig := get(t, h.Downloads(), "/download/manifest.txt.sig", "")
	_, certPEM := get(t, h.Downloads(), "/download/manifest.crt", "")
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("manifest.crt: no PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		t.Errorf("the signing certificate is not a code signing certificate of the CA: %v", err)
	}
	if cert.Subject.CommonName != pki.SigningName || cert.IsCA {
		t.Errorf("signing certificate: %s, CA %v", cert.Subject, cert.IsCA)
	}
	pub := cert.PublicKey.(ed25519.PublicKey)
	if err := VerifyManifest(pub, []byte(m), []byte(sig)); err != nil {
		t.Error(err)
	}
	if err := VerifyManifest(pub, []byte(strings.Replace(m, "arm64", "amd64", 1)), []byte(sig)); err == nil {
		t.Error("a changed manifest verifies")
	}

	// A changed binary: a new manifest, signed anew.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "thicket-node-linux-arm64"), []byte("node arm64 v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, m2 := get(t, h.Downloads(), "/download/manifest.txt", "")
	_, sig2 := get(t, h.Downloads(), "/download/manifest.txt.sig", "")
	if m2 == m || !strings.Contains(m2, sum([]byte("node arm64 v2"))+" 13 thicket-node-linux-arm64\n") {
		t.Errorf("manifest after a change:\n%s", m2)
	}
	if err := VerifyManifest(pub, []byte(m2), []byte(sig2)); err != nil {
		t.Errorf("after a change: %v", err)
	}
}

// TestScriptsVerifyTheSignedManifest runs the scripts' download code
// (lib.sh's fetch_bins, install_bins) with openssl and curl against a root
// over TLS and a mirror: only binaries that match the manifest the root's
// CA vouches for are installed; anything else installs nothing.
func TestScriptsVerifyTheSignedManifest(t *testing.T) {
	for _, tool := range []string{"openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install %s): %v", tool, tool, err)
		}
	}
	platform := runtime.GOOS + "-" + runtime.GOARCH
	node := bytes.Repeat([]byte("thicket-node binary\n"), 100)
	dl := t.TempDir()
	if err := os.WriteFile(filepath.Join(dl, "thicket-node-"+platform), node, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Config{DownloadsDir: dl})
	good := testSigner(t, ca)
	// A key the CA certified for something else (a client), named as the
	// signing key.
	clientKey, _, _ := pki.NewSigningKey()
	clientCert, err := ca.Sign(clientKey.Public(), pki.Leaf{Name: pki.SigningName, Client: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	notSigning := &Signer{Key: clientKey, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCert.Raw})}

	var tamper func(name string, body []byte) []byte
	downloads := h.Downloads()
	root := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tamper == nil {
			downloads.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		downloads.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		w.Write(tamper(strings.TrimPrefix(r.URL.Path, "/download/"), rec.Body.Bytes()))
	}))
	serving, err := ca.Issue(pki.Leaf{Name: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	root.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
	root.StartTLS()
	defer root.Close()

	mirrorDir := t.TempDir()
	mirror := httptest.NewServer(http.FileServer(http.Dir(mirrorDir)))
	defer mirror.Close()
	mirrorHas := func(b []byte) {
		if err := os.WriteFile(filepath.Join(mirrorDir, "thicket-node-"+platform), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var lib bytes.Buffer
	if err := templates.ExecuteTemplate(&lib, "lib.sh", Data{}); err != nil {
		t.Fatal(err)
	}
	script := "PROG=test.sh\nBAKED_ROOT_URL=\nscript_opt() { return 1; }\n" + lib.String() + `
parse_args "$@"
setup_dirs
detect_platform
root_trust
make_tmp
fetch_bins "$TMP" thicket-node 'thicket?'
install_bins "$TMP"
echo INSTALLED
`
	tampered := bytes.Clone(node)
	tampered[0] = 'T'
	for _, c := range []struct {
		name   string
		signer *Signer
		mirror []byte // nil: no mirror
		tamper func(name string, body []byte) []byte
		args   []string
		env    []string
		want   string // "": installs
	}{
		{name: "from the root", signer: good},
		{name: "from a mirror", signer: good, mirror: node},
		{name: "a mirror with a tampered binary", signer: good, mirror: tampered, want: "checksum mismatch for thicket-node-" + platform + " from " + mirror.URL},
		{name: "a mirror with a longer binary", signer: good, mirror: append(bytes.Clone(node), 'x'), want: "size mismatch for thicket-node-" + platform},
		{name: "a tampered manifest", signer: good, mirror: tampered, tamper: func(name string, b []byte) []byte {
			if name != ManifestFile {
				return b
			}
			return bytes.Replace(b, []byte(sum(node)), []byte(sum(tampered)), 1)
		}, want: "its signature does not verify with the root's signing key"},
		{name: "a manifest signed by another CA's key", signer: testSigner(t, other), want: "its signing certificate is not issued by the root CA " + ca.Pin()},
		{name: "a certificate of the CA that is not for code signing", signer: notSigning, want: "manifest.crt is not the root's download signing certificate"},
		{name: "no openssl", signer: good, env: []string{"PATH=" + withoutOpenSSL(t)}, want: "openssl is missing (apt-get install openssl)"},
		{name: "a root that signs nothing", want: "this root signs no download manifest"},
		{name: "a root that signs nothing, --allow-unsigned", args: []string{"--allow-unsigned"}},
		{name: "a root that signs nothing, a mirror", mirror: node, args: []string{"--allow-unsigned"}, want: "this root signs no download manifest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.SetSigner(c.signer)
			tamper = c.tamper
			dir := t.TempDir()
			data, prefix := filepath.Join(dir, "data"), filepath.Join(dir, "bin")
			args := append([]string{"--root-url", root.URL, "--ca-file", caFile, "--data-dir", data, "--prefix", prefix}, c.args...)
			if c.mirror != nil {
				mirrorHas(c.mirror)
				args = append(args, "--download-url", mirror.URL)
			}
			out, err := runScript(t, script, c.env, args...)
			if c.want == "" {
				if err != nil || !strings.Contains(out, "INSTALLED") {
					t.Fatalf("%v\n%s", err, out)
				}
				if got, _ := os.ReadFile(filepath.Join(prefix, "thicket-node")); !bytes.Equal(got, node) {
					t.Errorf("installed %d bytes, not the root's binary", len(got))
				}
				return
			}
			if err == nil || !strings.Contains(out, c.want) || !strings.Contains(out, "nothing was installed") {
				t.Errorf("%v\n%s\nwant %q and nothing was installed", err, out, c.want)
			}
			for _, d := range []string{data, prefix} {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("%s exists after a refused install", d)
				}
			}
		})
	}
}

// withoutOpenSSL is a PATH with every program of this machine's but openssl.
func withoutOpenSSL(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() == "openssl" {
				continue
			}
			os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())) // the first in PATH wins
		}
	}
	return dir
}
