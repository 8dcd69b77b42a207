package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// mitm is a man in the middle: an HTTPS server on the bridge with a
// certificate of its own CA for the root's address. It serves its CA at
// /ca.crt and, at /install/*.sh, a script that leaves marker behind; it
// records the paths it was asked for.
type mitm struct {
	URL    string
	ca     *pki.CA
	marker string

	mu    sync.Mutex
	paths []string
}

func startMITM(t *testing.T, host string) *mitm {
	t.Helper()
	ca, err := pki.NewCA("mitm CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.Leaf{Name: "thicket-root", IPs: []net.IP{net.ParseIP(host)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{ca: ca, marker: filepath.Join(t.TempDir(), "mitm-script-ran")}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.paths = append(m.paths, r.URL.Path)
		m.mu.Unlock()
		switch {
		case r.URL.Path == "/ca.crt":
			w.Write(ca.PEM)
		case strings.HasPrefix(r.URL.Path, "/install/"):
			fmt.Fprintf(w, "#!/bin/sh\ntouch %s\n", m.marker)
		default:
			w.Write([]byte(`{"status":"ok"}`))
		}
	}))
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// asked is what the man in the middle was asked for.
func (m *mitm) asked() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.paths...)
}

// ran reports whether a script it served ran.
func (m *mitm) ran() bool {
	_, err := os.Stat(m.marker)
	return err == nil
}

// checkNothingInClear fails the test when the recorded traffic holds a
// secret, or anything of HTTP in clear; it must hold TLS records.
func checkNothingInClear(t *testing.T, what string, seen []byte, secrets map[string]string) {
	t.Helper()
	if len(seen) < 4096 {
		t.Fatalf("%s: %d bytes recorded: the test saw no traffic", what, len(seen))
	}
	if !bytes.Contains(seen, []byte{0x16, 0x03}) {
		t.Errorf("%s: no TLS handshake in the traffic", what)
	}
	for name, s := range secrets {
		if s = strings.TrimSpace(s); len(s) < 8 {
			t.Fatalf("%s: secret %s %q is too short to look for", what, name, s)
		}
		if bytes.Contains(seen, []byte(s)) {
			t.Errorf("%s: the %s crossed the network in clear", what, name)
		}
	}
	for _, clear := range []string{"HTTP/1.1", "Authorization", "Bearer ", "application/json"} {
		if bytes.Contains(seen, []byte(clear)) {
			t.Errorf("%s: %q crossed the network in clear", what, clear)
		}
	}
}

// oneliner is the command the scripts print to run the root's script on
// another machine: it checks the root's CA against the pin first.
func oneliner(rootURL, pin, script string, args ...string) string {
	hexPin := strings.TrimPrefix(pin, "sha256:")
	return fmt.Sprintf(`{ curl -sfk %[1]s/ca.crt -o root-ca.crt && test "$(sed /-----/d root-ca.crt | base64 -d | sha256sum | cut -c1-64)" = %[2]s ||
  { echo "refused %[1]s: no CA with the pin there (a man in the middle, or not reachable)" >&2; false; }; } &&
  curl -sfL --cacert root-ca.crt %[1]s/install/%[3]s | sh -s -- --ca-file root-ca.crt %[4]s`, rootURL, hexPin, script, strings.Join(args, " "))
}

// TestTLSRoot: with the root bound to its address on the bridge, a man in
// the middle (a server with another CA where they dial) is refused by the
// cluster, the CLI, the install one-liner and cluster.sh, each saying so
// and sending it nothing; and a plain read of the traffic between cluster
// and root, and between the CLI and the root, during a login and a deploy
// shows no password, token or environment secret, nothing of HTTP at all.
func TestTLSRoot(t *testing.T) {
	s := newSystemWith(t, testharness.RootOptions{Host: bridgeAddr})
	if !strings.HasPrefix(s.rootURL, "https://"+bridgeAddr+":") {
		t.Fatalf("root URL %s", s.rootURL)
	}
	pin, err := s.started.Pin()
	if err != nil {
		t.Fatal(err)
	}
	caFile := s.started.CAFile()
	password := readFile(t, filepath.Join(s.rootDir, "admin-password"))
	pwFile := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pwFile, password+"\n")
	joinToken := readFile(t, filepath.Join(s.rootDir, "cluster-join-token"))
	_, joinSecret, _ := strings.Cut(strings.TrimSpace(joinToken), "::")
	m := startMITM(t, bridgeAddr)
	rootAddr := strings.TrimPrefix(s.rootURL, "https://")

	t.Run("the cluster refuses a man in the middle", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := bin.StartCluster(ctx, s.started, testharness.ClusterOptions{Name: "mitm", RootURL: m.URL, Advertise: bridgeAddr, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Proc.Stop()
		if err := c.Proc.WaitOutput(ctx, time.Minute, "does not match the pin"); err != nil {
			t.Fatal(err)
		}
		log := c.Proc.Log().String()
		for _, want := range []string{"refused the root at " + m.URL, "expected " + pin, "presented " + m.ca.Pin()} {
			if !strings.Contains(log, want) {
				t.Errorf("the cluster's refusal does not say %q:\n%s", want, testharness.Tail(log, 2000))
			}
		}
		if got := m.asked(); len(got) != 0 {
			t.Errorf("the cluster sent requests to the man in the middle: %v", got)
		}
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters", nil, &cls)
		for _, cl := range cls {
			if cl.ClusterName == "mitm" {
				t.Errorf("a cluster registered through the man in the middle: %+v", cl)
			}
		}
	})

	th := newCLI(t)
	t.Run("the CLI refuses a man in the middle", func(t *testing.T) {
		th.t = t
		for _, trust := range [][]string{{"--ca-file", caFile}, {"--ca-pin", pin}} {
			_, errs, code := th.run("", append(trust, "--server", m.URL, "login", "--password-file", pwFile)...)
			if code != 1 || !strings.Contains(errs, "refused "+m.URL+": the server's certificate is not issued by the trusted CA") ||
				!strings.Contains(errs, strings.TrimPrefix(pin, "sha256:")) || !strings.Contains(errs, "presented "+m.ca.Pin()) {
				t.Errorf("login to the man in the middle with %v: exit %d, stderr %q", trust, code, errs)
			}
		}
		if got := m.asked(); len(got) != 0 {
			t.Errorf("the CLI sent requests to the man in the middle: %v", got)
		}
		if _, err := os.Stat(filepath.Join(th.config, "credentials.json")); err == nil {
			t.Error("a refused login saved credentials")
		}
	})

	t.Run("the install one-liner and cluster.sh refuse a man in the middle", func(t *testing.T) {
		_, hpath, _ := s.net.addHost(91)
		dir := t.TempDir()
		out, err := inHost(t, hpath, time.Minute, "sh", "-c", "cd "+dir+" && "+oneliner(m.URL, pin, "cluster.sh", "--token-file", "cluster-join-token", "--name", "x"))
		if err == nil || !strings.Contains(out, "refused "+m.URL+": no CA with the pin there") || m.ran() {
			t.Errorf("the one-liner with the man in the middle: %v, ran its script: %v\n%s", err, m.ran(), out)
		}
		// cluster.sh from the real root, told to use the man in the middle:
		// it checks the CA there against the token's pin.
		script := filepath.Join(dir, "cluster.sh")
		if out, err := inHost(t, hpath, time.Minute, "curl", "-sf", "--cacert", caFile, "-o", script, s.rootURL+"/install/cluster.sh"); err != nil {
			t.Fatalf("fetch cluster.sh: %v\n%s", err, out)
		}
		tokenFile := filepath.Join(s.rootDir, "cluster-join-token")
		out, err = inHost(t, hpath, time.Minute, "sh", script, "--root-url", m.URL, "--token-file", tokenFile, "--name", "x",
			"--data-dir", filepath.Join(dir, "data"), "--prefix", filepath.Join(dir, "bin"))
		want := fmt.Sprintf("refused the root at %s: its CA has the pin %s, expected %s", m.URL, m.ca.Pin(), pin)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("cluster.sh with the man in the middle: %v\n%s\nwant %q", err, out, want)
		}
		// With the real CA given, the man in the middle is refused in the handshake.
		out, err = inHost(t, hpath, time.Minute, "sh", script, "--root-url", m.URL, "--ca-file", caFile, "--token-file", tokenFile, "--name", "x",
			"--data-dir", filepath.Join(dir, "data"), "--prefix", filepath.Join(dir, "bin"))
		if err == nil || !strings.Contains(out, "refused "+m.URL+": its certificate is not issued by the root CA "+pin) {
			t.Errorf("cluster.sh with --ca-file and the man in the middle: %v\n%s", err, out)
		}
		// The one-liner and cluster.sh fetched the CA, to check it; nothing else.
		if got := m.asked(); strings.Join(got, " ") != "/ca.crt /ca.crt" {
			t.Errorf("asked of the man in the middle: %v; want /ca.crt twice", got)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "bin")); len(entries) != 0 {
			t.Errorf("installed %d files through the man in the middle", len(entries))
		}
	})

	t.Run("a plain read shows no credential", func(t *testing.T) {
		th.t = t
		toRoot := startRecordingProxy(t, net.JoinHostPort(bridgeAddr, "0"), rootAddr)
		cliPath := startRecordingProxy(t, net.JoinHostPort(bridgeAddr, "0"), rootAddr)
		started := bin.MustStartCluster(t, s.started, testharness.ClusterOptions{Name: "tlscl", RootURL: "https://" + toRoot.ln.Addr().String(), Advertise: bridgeAddr})
		c := &cluster{name: "tlscl", proc: &proc{Proc: started.Proc, t: t}, dir: started.DataDir, nodeURL: started.NodeURL, nodeToken: started.NodeToken, started: started}
		s.clusters[c.name] = c
		s.addNode(c, "t1", 92, 1024, c.nodeToken)
		s.waitNodes(map[string]int{"tlscl": 1})

		server := "https://" + cliPath.ln.Addr().String()
		if _, errs, code := th.run(password+"\n", "--server", server, "--ca-file", caFile, "login", "--password-stdin"); code != 0 {
			t.Fatalf("login through the recorder: %s", errs)
		}
		envSecret := "s3cret-" + runID + "-value"
		sla := slaOf(s, "tlsapp", map[string]any{"microservice_name": "web", "memory": 32, "vcpus": 1,
			"environment": []string{"DB_PASSWORD=" + envSecret}})
		if out, errs, code := th.run(sla, "apply", "-f", "-", "--timeout", "2m"); code != 0 {
			t.Fatalf("apply: %s%s", out, errs)
		}
		var creds struct {
			Token        string `json:"token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(th.config, "credentials.json"))), &creds); err != nil {
			t.Fatal(err)
		}
		// A few syncs and watches more, with the instance in them.
		time.Sleep(3 * time.Second)
		secrets := map[string]string{"admin password": password, "access token": creds.Token, "refresh token": creds.RefreshToken,
			"join token": joinSecret, "environment secret": envSecret, "node join token": c.nodeToken}
		checkNothingInClear(t, "between the CLI and the root", cliPath.recorded(), secrets)
		checkNothingInClear(t, "between the cluster and the root", toRoot.recorded(), secrets)
		// The recorders saw what was asked: the deploy reached the cluster.
		var apps []api.Application
		s.api.must("GET", "/api/applications/", nil, &apps)
		if len(apps) == 0 {
			t.Error("no application deployed")
		}
	})
}
