package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestWorkerScriptRefusesMITM: worker.sh, like cluster.sh, installs
// nothing from a man in the middle (a server with another CA where the
// worker dials the root): the printed one-liner refuses its CA for the
// pin; worker.sh from the real root, pointed at it with the root's pin,
// refuses it naming both pins; with the root's CA file it is refused in
// the handshake. It was asked for /ca.crt only, and nothing was installed.
func TestWorkerScriptRefusesMITM(t *testing.T) {
	s := newSystemWith(t, testharness.RootOptions{Host: bridgeAddr})
	pin, err := s.started.Pin()
	if err != nil {
		t.Fatal(err)
	}
	caFile := s.started.CAFile()
	c := s.addCluster("wm", "")
	m := startMITM(t, bridgeAddr)
	_, hpath, _ := s.net.addHost(93)
	dir := t.TempDir()
	tokenFile := filepath.Join(c.dir, "node-join-token")
	args := []string{"--cluster-url", c.nodeURL, "--token-file", tokenFile, "--name", "w",
		"--data-dir", filepath.Join(dir, "data"), "--prefix", filepath.Join(dir, "bin"), "--init", "supervised"}

	out, err := inHost(t, hpath, time.Minute, "sh", "-c", "cd "+dir+" && "+oneliner(m.URL, pin, "worker.sh", args...))
	if err == nil || !strings.Contains(out, "refused "+m.URL+": no CA with the pin there") || m.ran() {
		t.Errorf("the one-liner with the man in the middle: %v, ran its script: %v\n%s", err, m.ran(), out)
	}
	script := filepath.Join(dir, "worker.sh")
	if out, err := inHost(t, hpath, time.Minute, "curl", "-sf", "--cacert", caFile, "-o", script, s.rootURL+"/install/worker.sh"); err != nil {
		t.Fatalf("fetch worker.sh: %v\n%s", err, out)
	}
	out, err = inHost(t, hpath, time.Minute, append([]string{"sh", script, "--root-url", m.URL, "--root-pin", pin}, args...)...)
	want := fmt.Sprintf("refused the root at %s: its CA has the pin %s, expected %s", m.URL, m.ca.Pin(), pin)
	if err == nil || !strings.Contains(out, want) || !strings.Contains(out, "nothing was installed") {
		t.Errorf("worker.sh with the man in the middle: %v\n%s\nwant %q", err, out, want)
	}
	out, err = inHost(t, hpath, time.Minute, append([]string{"sh", script, "--root-url", m.URL, "--ca-file", caFile}, args...)...)
	if err == nil || !strings.Contains(out, "refused "+m.URL+"/") || !strings.Contains(out, ": its certificate is not issued by the root CA "+pin) {
		t.Errorf("worker.sh with --ca-file and the man in the middle: %v\n%s", err, out)
	}
	if got := m.asked(); strings.Join(got, " ") != "/ca.crt /ca.crt" {
		t.Errorf("asked of the man in the middle: %v; want /ca.crt twice", got)
	}
	for _, d := range []string{"bin", "data"} {
		var names []string
		_ = filepath.WalkDir(filepath.Join(dir, d), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				names = append(names, p)
			}
			return nil
		})
		if len(names) != 0 {
			t.Errorf("worker.sh left files in %s through the man in the middle: %v", d, names)
		}
	}
}
