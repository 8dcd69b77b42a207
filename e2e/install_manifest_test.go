package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// testManifestRefusals (part of TestInstallScripts): worker.sh installs
// nothing that does not match the manifest signed with the root's key,
// whose certificate the pinned CA issued: a mirror (--download-url, plain
// HTTP) serving a tampered binary; a man in the middle holding a
// certificate of the root's CA (a stolen serving certificate) that changes
// the manifest to announce that binary; the same one serving a manifest
// signed by a key that another CA certified. The untampered path is the
// install TestInstallScripts makes from the root.
func testManifestRefusals(t *testing.T, hostNS, workerSh, root, caFile, clusterURL, nodeToken, dl, platform string) {
	ca, err := pki.LoadCA(caFile, filepath.Join(filepath.Dir(caFile), pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	// The mirror: the root's binaries, thicket-net with one byte changed.
	mirrorDir := t.TempDir()
	for _, b := range []string{"thicket-net", "thicket-node"} {
		copyFile(t, filepath.Join(dl, b+"-"+platform), filepath.Join(mirrorDir, b+"-"+platform))
	}
	netFile := filepath.Join(mirrorDir, "thicket-net-"+platform)
	good := sha256File(t, netFile)
	body, err := os.ReadFile(netFile)
	if err != nil {
		t.Fatal(err)
	}
	body[len(body)/2] ^= 0xff
	if err := os.WriteFile(netFile, body, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := sha256File(t, netFile)
	mirror := httptest.NewUnstartedServer(http.FileServer(http.Dir(mirrorDir)))
	if mirror.Listener, err = net.Listen("tcp", net.JoinHostPort(bridgeAddr, "0")); err != nil {
		t.Fatal(err)
	}
	mirror.Start()
	defer mirror.Close()

	// The man in the middle: everything from the root but the manifest.
	other, err := pki.NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := other.CertifySigningKey(otherKey.Public().(ed25519.PublicKey), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rootURL, _ := url.Parse(root)
	proxy := httputil.NewSingleHostReverseProxy(rootURL)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	var mu sync.Mutex
	mode, served := "", []string{}
	proxy.ModifyResponse = func(resp *http.Response) error {
		mu.Lock()
		defer mu.Unlock()
		p := resp.Request.URL.Path
		if !strings.HasPrefix(p, "/download/manifest") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		served = append(served, mode+" "+p)
		switch {
		case mode == "tamper" && p == "/download/manifest.txt":
			b = bytes.Replace(b, []byte(good), []byte(bad), 1)
		case mode == "other" && p == "/download/manifest.crt":
			b = otherCert
		case mode == "other" && p == "/download/manifest.txt.sig":
			m, err := httpsGet(root+"/download/manifest.txt", caFile)
			if err != nil {
				return err
			}
			b = ed25519.Sign(otherKey, []byte(m))
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Del("Content-Length")
		return nil
	}
	mitm := httptest.NewUnstartedServer(proxy)
	serving, err := ca.Issue(pki.Leaf{Name: "thicket-root", IPs: []net.IP{net.ParseIP(bridgeAddr)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if mitm.Listener, err = net.Listen("tcp", net.JoinHostPort(bridgeAddr, "0")); err != nil {
		t.Fatal(err)
	}
	mitm.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
	mitm.StartTLS()
	defer mitm.Close()

	for _, c := range []struct {
		name, mode, rootURL, want string
	}{
		{"a mirror with a tampered binary", "", root, "checksum mismatch for thicket-net-" + platform + " from " + mirror.URL},
		{"a tampered manifest", "tamper", mitm.URL, "refused the download manifest of " + mitm.URL + ": its signature does not verify"},
		{"a manifest signed by another CA's key", "other", mitm.URL, "refused the download manifest of " + mitm.URL + ": its signing certificate is not issued by the root CA " + ca.Pin()},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			mode, served = c.mode, nil
			mu.Unlock()
			prefix, data := t.TempDir(), t.TempDir()
			out, err := curlSh(t, hostNS, workerSh, "--cluster-url", clusterURL, "--token", nodeToken, "--data-dir", data, "--prefix", prefix,
				"--root-url", c.rootURL, "--download-url", mirror.URL)
			if err == nil || !strings.Contains(out, c.want) || !strings.Contains(out, "nothing was installed") {
				t.Fatalf("worker.sh: %v\n%s\nwant %q", err, out, c.want)
			}
			for _, d := range []string{prefix, data} {
				if entries, _ := os.ReadDir(d); len(entries) != 0 {
					t.Errorf("left in %s despite the refusal: %v", d, entries)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if c.mode != "" && len(served) == 0 {
				t.Error("the man in the middle was not asked for the manifest")
			}
		})
	}
}
