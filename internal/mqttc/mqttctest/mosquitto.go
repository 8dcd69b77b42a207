// Package mqttctest starts a real Mosquitto broker for tests, so that code
// written against mqttc can be checked against the external broker a
// cluster may use (--mqtt-url) as well as against the embedded one.
package mqttctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
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
	bin := MosquittoBinary()
	if bin == "" {
		t.Fatal("mosquitto not found (tried PATH and /usr/sbin): apt-get install -y mosquitto")
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)
	if os.Geteuid() == 0 {
		// As root Mosquitto switches to the "mosquitto" user; stay root so
		// that it can read the config in the test's temp dir.
		body += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	var out lockedBuffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("mosquitto exited at start (%v): %s", err, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s after 10s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
