package deploy

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestClusterRefusesNodeTokenFromEnvironment: thicket-cluster no longer
// takes its node join token from THICKET_NODE_JOIN_TOKEN (docker inspect
// and /proc/PID/environ show it): set, it stops at once with the file flag
// to use instead, rather than silently generating another token.
func TestClusterRefusesNodeTokenFromEnvironment(t *testing.T) {
	binaries(t)
	cmd := exec.Command(built.bin.Path("cluster_orchestrator/cmd/thicket-cluster"), "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "THICKET_NODE_JOIN_TOKEN=thn_from-the-environment")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("thicket-cluster with THICKET_NODE_JOIN_TOKEN: %v, want exit 2:\n%s", err, out)
	}
	if !strings.Contains(string(out), "THICKET_NODE_JOIN_TOKEN is no longer read") || !strings.Contains(string(out), "--node-join-token-file") {
		t.Errorf("thicket-cluster does not say what to use instead:\n%s", out)
	}
	if strings.Contains(string(out), "thn_from-the-environment") {
		t.Error("thicket-cluster logs the token")
	}
}
