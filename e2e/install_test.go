package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/testharness"
)

// inHost runs a command in a host's network namespace (nsenter, not ip
// netns exec: thicket-net's instance namespaces must be mounted where
// containerd sees them) and returns its combined output.
func inHost(t *testing.T, nsPath string, timeout time.Duration, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + nsPath}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%v: not done within %s", argv, timeout)
	}
}

// curlSh runs `curl -sfL URL | sh -s -- ARGS...` in a host's namespace, as
// the README tells operators to: for an https:// root (whose pin
// trustPin recorded) the one-liner the scripts print, which checks the
// root's CA against the pin first, in a directory of its own.
func curlSh(t *testing.T, nsPath, url string, args ...string) (string, error) {
	t.Helper()
	root, script, _ := strings.Cut(url, "/install/")
	pin, ok := rootPins.Load(root)
	if !strings.HasPrefix(url, "https://") || !ok {
		return inHost(t, nsPath, 5*time.Minute,
			append([]string{"sh", "-c", `curl -sfL "$0" | sh -s -- "$@"`, url}, args...)...)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return inHost(t, nsPath, 5*time.Minute, "sh", "-c", "cd "+t.TempDir()+" && "+oneliner(root, pin.(string), script, quoted...))
}

// rootPins are the pins of the roots curlSh runs scripts of, by URL.
var rootPins sync.Map

// scriptPids are the supervised processes of an install's data dir, by
// service name.
func scriptPids(t *testing.T, data string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(data, "run", "*.pid"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		if strings.HasSuffix(name, ".sup") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %q", f, b)
		}
		pids[name] = pid
	}
	return pids
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// killInstall ends whatever still runs from an install's data dir
// (supervisors first, so nothing is started again): the cleanup of a test
// that failed before stopping it.
func killInstall(data string) {
	for _, pattern := range []string{"*.sup.pid", "*.pid"} {
		files, _ := filepath.Glob(filepath.Join(data, "run", pattern))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestInstallScripts attaches a cluster and a worker to a running root the
// way an operator on other machines does: curl | sh of /install/cluster.sh
// and /install/worker.sh in fresh network namespace "hosts", binaries from
// the root's /download/, checked by SHA-256.
func TestInstallScripts(t *testing.T) {
	s := newSystem(t)

	// The root again, reachable from the hosts on the bridge, serving the
	// binaries from a downloads dir named <binary>-linux-<arch>.
	dl := t.TempDir()
	platform := "linux-" + runtime.GOARCH
	for _, b := range []string{"thicket-cluster", "thicket-net", "thicket-node"} {
		copyFile(t, filepath.Join(bin.Dir, b), filepath.Join(dl, b+"-"+platform))
	}
	port := strings.TrimPrefix(s.rootURL, "https://127.0.0.1:")
	caFile := s.started.CAFile()
	pin, err := s.started.Pin()
	if err != nil {
		t.Fatal(err)
	}
	s.root.Stop()
	s.root.Args = append(s.root.Args, "--listen", "0.0.0.0:"+port, "--downloads-dir", dl)
	s.root.restart()
	testharness.WaitFor(t, time.Minute, "the root back", func() (bool, string) {
		_, err := httpsGet(s.rootURL+"/healthz", caFile)
		return err == nil, fmt.Sprint(err)
	})
	root := "https://" + bridgeAddr + ":" + port
	rootPins.Store(root, pin)

	t.Run("downloads, checksums and refusals", func(t *testing.T) {
		body, err := httpsGet(root+"/download/thicket-node-"+platform+".sha256", caFile)
		if want := sha256File(t, filepath.Join(dl, "thicket-node-"+platform)) + "  thicket-node-" + platform + "\n"; err != nil || body != want {
			t.Errorf("checksum: %q %v, want %q", body, err, want)
		}
		for path, want := range map[string]string{
			"/download/thicket-bogus-" + platform: `unknown binary "thicket-bogus"`,
			"/download/thicket-root-linux-s390x":  "not available on this root",
			"/download/../admin-password":         "invalid download name",
			"/download/..%2F..%2Fetc%2Fpasswd":    "invalid download name",
		} {
			out, _ := exec.Command("curl", "-s", "--cacert", caFile, "--path-as-is", "-w", " %{http_code}", root+path).CombinedOutput()
			if !strings.Contains(string(out), want) || !strings.HasSuffix(string(out), " 404") {
				t.Errorf("GET %s: %q, want 404 with %q", path, out, want)
			}
		}
		script, err := httpsGet(root+"/install/worker.sh", caFile)
		if err != nil || !strings.Contains(script, "BAKED_ROOT_URL='"+root+"'") {
			t.Errorf("worker.sh does not carry the root's URL %s: %v", root, err)
		}
	})

	// The cluster, on host .71 with the default ports.
	cns, cpath, caddr := s.net.addHost(71)
	cdata, cprefix := t.TempDir(), t.TempDir()
	clusterSh := root + "/install/cluster.sh"
	t.Cleanup(func() {
		curlSh(t, cpath, clusterSh, "--stop", "--purge", "--data-dir", cdata)
		killInstall(cdata)
	})
	joinToken := readFile(t, filepath.Join(s.rootDir, "cluster-join-token"))
	t.Run("a wrong cluster join token fails clearly", func(t *testing.T) {
		out, err := curlSh(t, cpath, clusterSh, "--token", "not-a-token", "--name", "c1", "--data-dir", cdata, "--prefix", cprefix)
		if err == nil || !strings.Contains(out, "refused the cluster join token") {
			t.Fatalf("cluster.sh with a wrong token: %v\n%s", err, out)
		}
		if pids := scriptPids(t, cdata); len(pids) != 0 {
			t.Errorf("left running: %v", pids)
		}
	})
	out, err := curlSh(t, cpath, clusterSh, "--token-file", filepath.Join(s.rootDir, "cluster-join-token"), "--name", "c1", "--data-dir", cdata, "--prefix", cprefix)
	if err != nil {
		t.Fatalf("cluster.sh in %s: %v\n%s", cns, err, out)
	}
	clusterURL := "https://" + caddr + ":10100"
	if !strings.Contains(out, "--cluster-url "+clusterURL) || !strings.Contains(out, "= "+strings.TrimPrefix(pin, "sha256:")+" ||") {
		t.Errorf("cluster.sh does not tell how to add workers:\n%s", out)
	}
	nodeToken := readFile(t, filepath.Join(cdata, "cluster", "node-join-token"))

	// The worker, on host .72.
	_, wpath, waddr := s.net.addHost(72)
	wdata, wprefix := t.TempDir(), t.TempDir()
	workerSh := root + "/install/worker.sh"
	t.Cleanup(func() {
		curlSh(t, wpath, workerSh, "--stop", "--purge", "--data-dir", wdata)
		killInstall(wdata)
	})
	tokenDir := t.TempDir()
	workerArgs := func(token string) []string {
		file := filepath.Join(tokenDir, token)
		if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--cluster-url", clusterURL, "--token-file", file, "--address", waddr, "--name", "w" + runID,
			"--data-dir", wdata, "--prefix", wprefix,
			"--node-flag", "--namespace=" + s.ctrNS, "--node-flag", "--insecure-registry=" + s.registry,
			"--node-flag", "--memory-mb=1024", "--node-flag", "--cpu-millis=2000"}
	}
	t.Run("a wrong node join token fails clearly", func(t *testing.T) {
		out, err := curlSh(t, wpath, workerSh, workerArgs(wrongSecret(t, nodeToken))...)
		if err == nil || !strings.Contains(out, "refused the node join token") {
			t.Fatalf("worker.sh with a wrong token: %v\n%s", err, out)
		}
		if pid, ok := scriptPids(t, wdata)["node"]; ok {
			t.Errorf("thicket-node left running (%d)", pid)
		}
	})
	t.Run("an unreachable cluster fails clearly", func(t *testing.T) {
		args := workerArgs(nodeToken)
		args[1] = "https://" + bridgeAddr + ":1"
		out, err := curlSh(t, wpath, workerSh, args...)
		if err == nil || !strings.Contains(out, "cannot reach the cluster at https://"+bridgeAddr+":1") {
			t.Fatalf("worker.sh with an unreachable cluster: %v\n%s", err, out)
		}
	})

	out, err = curlSh(t, wpath, workerSh, workerArgs(nodeToken)...)
	if err != nil {
		t.Fatalf("worker.sh: %v\n%s", err, out)
	}
	for _, b := range []string{"thicket-net", "thicket-node"} {
		if got := sha256File(t, filepath.Join(wprefix, b)); got != sha256File(t, filepath.Join(dl, b+"-"+platform)) {
			t.Errorf("installed %s differs from the root's", b)
		}
	}
	s.waitNodes(map[string]int{"c1": 1})

	t.Run("no token in a command line or environment", func(t *testing.T) {
		pids := scriptPids(t, wdata)
		for name, pid := range scriptPids(t, cdata) {
			pids["cluster "+name] = pid
		}
		if len(pids) < 3 {
			t.Fatalf("daemons %v, want cluster, net and node", pids)
		}
		for name, pid := range pids {
			for _, f := range []string{"cmdline", "environ"} {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				for what, tok := range map[string]string{"cluster join token": joinToken, "node join token": nodeToken} {
					if strings.Contains(string(b), strings.TrimSpace(tok)) {
						t.Errorf("%s (pid %d) has the %s in its %s", name, pid, what, f)
					}
				}
			}
		}
	})

	t.Run("the worker runs an instance", func(t *testing.T) {
		ids := s.app("installed", map[string]any{"microservice_name": "web", "memory": 64, "vcpus": 1})
		s.scaleUp(ids["web"])
		in := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
		if in.NodeName != "w"+runID || in.InstanceIP == "" {
			t.Errorf("instance on %q with address %q, want node w%s on the overlay", in.NodeName, in.InstanceIP, runID)
		}
	})

	t.Run("running worker.sh again changes nothing", func(t *testing.T) {
		before := scriptPids(t, wdata)
		out, err := curlSh(t, wpath, workerSh, workerArgs(nodeToken)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if after := scriptPids(t, wdata); fmt.Sprint(after) != fmt.Sprint(before) || len(after) != 2 {
			t.Errorf("pids changed: %v, then %v\n%s", before, after, out)
		}
		if strings.Contains(out, "downloading") || strings.Contains(out, "started") {
			t.Errorf("downloaded or started again:\n%s", out)
		}
	})

	t.Run("binaries that do not match the signed manifest are refused", func(t *testing.T) {
		testManifestRefusals(t, wpath, workerSh, root, caFile, clusterURL, nodeToken, dl, platform)
	})

	t.Run("a tampered binary is refused and nothing is installed", func(t *testing.T) {
		// The root computed the checksum; then the file changes without a
		// new size or mtime (as corruption on the way would look).
		file := filepath.Join(dl, "thicket-net-"+platform)
		if _, err := httpsGet(root+"/download/thicket-net-"+platform+".sha256", caFile); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(file)
		f, err := os.OpenFile(file, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, fi.Size()/2)
		b[0] ^= 0xff
		f.WriteAt(b, fi.Size()/2)
		f.Close()
		os.Chtimes(file, fi.ModTime(), fi.ModTime())

		prefix, data := t.TempDir(), t.TempDir()
		out, err := curlSh(t, wpath, workerSh, "--cluster-url", clusterURL, "--token", nodeToken, "--data-dir", data, "--prefix", prefix)
		if err == nil || !strings.Contains(out, "checksum mismatch for thicket-net-"+platform) {
			t.Fatalf("worker.sh with a tampered binary: %v\n%s", err, out)
		}
		if entries, _ := os.ReadDir(prefix); len(entries) != 0 {
			t.Errorf("installed despite the mismatch: %v", entries)
		}
		if pids := scriptPids(t, data); len(pids) != 0 {
			t.Errorf("started despite the mismatch: %v", pids)
		}
	})

	t.Run("stop and purge", func(t *testing.T) {
		pids := scriptPids(t, wdata)
		if len(containers(t, s.ctrNS, `labels."thicket.instance"`)) == 0 {
			t.Fatal("no instance containers before the purge")
		}
		out, err := curlSh(t, wpath, workerSh, "--stop", "--purge", "--data-dir", wdata)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for name, pid := range pids {
			if alive(pid) {
				t.Errorf("%s (%d) still runs", name, pid)
			}
		}
		if _, err := os.Stat(wdata); !os.IsNotExist(err) {
			t.Errorf("data dir not purged: %v", err)
		}
		if left := containers(t, s.ctrNS, `labels."thicket.instance"`); len(left) != 0 {
			t.Errorf("instances not purged: %v", left)
		}
		s.waitNodes(map[string]int{"c1": 0})

		cpids := scriptPids(t, cdata)
		if out, err := curlSh(t, cpath, clusterSh, "--stop", "--data-dir", cdata); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if alive(cpids["cluster"]) {
			t.Errorf("cluster (%d) still runs", cpids["cluster"])
		}
		if _, err := os.Stat(filepath.Join(cdata, "cluster", "node-join-token")); err != nil {
			t.Errorf("a stop without --purge removed the data: %v", err)
		}
	})
}
