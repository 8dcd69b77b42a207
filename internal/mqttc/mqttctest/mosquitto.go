// Package mqttctest starts a real Mosquitto broker for tests, so that code
// written against mqttc can be checked against the external broker a
// cluster may use (--mqtt-url) as well as against the embedded one.
package mqttctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// mosquittoPaths are where Debian's mosquitto package puts the binary
// (/usr/sbin is often not on a non-root PATH).
var mosquittoPaths = []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"}

// MosquittoBinary returns the path of the mosquitto binary, or "".
func MosquittoBinary() string {
	for _, p := range mosquittoPaths {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// StartMosquitto runs an anonymous, non-persistent Mosquitto on a free port
// of 127.0.0.1 for the duration of the test and returns its URL
// ("tcp://127.0.0.1:<port>"). A missing binary fails the test: CI installs
// the package (apt-get install mosquitto).
func StartMosquitto(t testing.TB) string {
	t.Helper()
	return StartMosquittoOn(t, "127.0.0.1")
}

// StartMosquittoOn is StartMosquitto listening on the address ip (e.g. a
// test bridge's, which hosts in other network namespaces reach).
func StartMosquittoOn(t testing.TB, ip string) string {
	t.Helper()
	return "tcp://" + startMosquitto(t, ip, "")
}

// TLSMosquitto is a Mosquitto that serves MQTT over TLS only.
type TLSMosquitto struct {
	// URL is mqtts://<ip>:<port>.
	URL string
	// CAFile holds CAPEM, the CA that issued the broker's certificate.
	CAFile string
	CAPEM  []byte
}

// StartMosquittoTLS runs Mosquitto with a TLS listener on ip (cafile,
// certfile, keyfile), its certificate issued for ip by a new CA. The
// certificate file holds the broker's certificate only, as an operator's
// usually does: clients must hold the CA.
func StartMosquittoTLS(t testing.TB, ip string) TLSMosquitto {
	t.Helper()
	dir := t.TempDir()
	ca, cert, err := pki.NewCAWithLeaf("mosquitto test CA", pki.Leaf{Name: "mosquitto", IPs: []net.IP{net.ParseIP(ip)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert.Certificate = cert.Certificate[:1] // the leaf only
	certPEM, keyPEM, err := pki.EncodePair(cert)
	if err != nil {
		t.Fatal(err)
	}
	m := TLSMosquitto{CAFile: filepath.Join(dir, "ca.crt"), CAPEM: ca.PEM}
	for f, data := range map[string][]byte{m.CAFile: ca.PEM, filepath.Join(dir, "server.crt"): certPEM, filepath.Join(dir, "server.key"): keyPEM} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsConf := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", m.CAFile, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	m.URL = "mqtts://" + startMosquitto(t, ip, tlsConf)
	return m
}

// startMosquitto runs Mosquitto with a listener on ip and the listener
// options extra, and returns its address.
func startMosquitto(t testing.TB, ip, extra string) string {
	t.Helper()
	bin := MosquittoBinary()
	if bin == "" {
		t.Fatal("mosquitto not found (tried PATH and /usr/sbin): apt-get install -y mosquitto")
	}
	port := testharness.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d %s\n%sallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port, ip, extra)
	if os.Geteuid() == 0 {
		// As root Mosquitto switches to the "mosquitto" user; stay root so
		// that it can read the config in the test's temp dir.
		body += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	p := &testharness.Proc{Name: "mosquitto", Args: []string{bin, "-c", conf}}
	if err := p.Start(); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.Kill)
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	if err := p.WaitUntil(context.Background(), 10*time.Second, "listening on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatalf("%v", err)
	}
	return addr
}
