package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// scrape reads a daemon's /metrics page with the metrics token from its
// data dir, after checking that a request without the token is refused.
func scrape(base, dataDir string) (string, error) {
	c, err := tlsClientFor(base, dataDir)
	if err != nil {
		return "", err
	}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return "", fmt.Errorf("GET %s/metrics without the metrics token: %s, want 401", base, resp.Status)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "metrics-token"))
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if resp, err = c.Do(req); err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	return string(b), err
}

// checkNoSecretInCmdlines fails the test when a daemon of s has one of the
// secrets in its data dirs (join tokens, the Admin's password, metrics
// tokens) or a broker password in its command line (/proc/<pid>/cmdline,
// what ps shows every user of the machine).
func checkNoSecretInCmdlines(t *testing.T, s *system, extra ...string) {
	t.Helper()
	secrets := map[string]string{} // secret -> where from
	read := func(dir string, files ...string) {
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if v := strings.TrimSpace(string(b)); v != "" {
					secrets[v] = filepath.Join(dir, f)
				}
			}
		}
	}
	read(s.rootDir, "admin-password", "cluster-join-token", "metrics-token")
	procs := map[string]*proc{"root": s.root}
	for name, c := range s.clusters {
		read(c.dir, "node-join-token", "metrics-token")
		procs["cluster "+name] = c.proc
	}
	for name, n := range s.nodes {
		procs["node "+name] = n.proc
		if n.net != nil {
			procs["net "+name] = n.net
		}
	}
	for _, e := range extra {
		secrets[e] = "the test"
	}
	if len(secrets) < 3 {
		t.Fatalf("found only %d secrets to look for: %v", len(secrets), secrets)
	}
	for name, p := range procs {
		pid := p.PID()
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Errorf("%s (pid %d): %v", name, pid, err)
			continue
		}
		for secret, from := range secrets {
			if bytes.Contains(cmdline, []byte(secret)) {
				t.Errorf("%s (pid %d) has the secret of %s in its command line: %q", name, pid, from, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	}
}

// tlsClientFor is a client of the daemon at base whose data dir is
// dataDir: over https:// it trusts exactly the CA in <dataDir>/tls/ca.crt.
func tlsClientFor(base, dataDir string) (*http.Client, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	if !strings.HasPrefix(base, "https://") {
		return c, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
	if errors.Is(err, os.ErrNotExist) {
		// A cluster given its CA by flag: the pin in its node join token.
		tok, terr := os.ReadFile(filepath.Join(dataDir, "node-join-token"))
		if terr != nil {
			return nil, err
		}
		pin, _, perr := pki.ParseJoinToken(string(tok))
		if perr != nil || pin == "" {
			return nil, fmt.Errorf("%s: no CA and no pinned node join token (%v)", dataDir, perr)
		}
		c.Transport = &http.Transport{TLSClientConfig: pki.PinnedClient(pin, u.Hostname())}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	tc, err := pki.CAClient(ca, u.Hostname())
	if err != nil {
		return nil, err
	}
	c.Transport = &http.Transport{TLSClientConfig: tc}
	return c, nil
}
