package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// TestGetStarted runs scripts/getstarted.sh from this checkout as a
// newcomer would (clean data dir, default ports, supervised processes as
// this machine has no systemd), in a network namespace "host" of its own so
// that its ports, overlay devices and nftables table touch nothing else
// here. It deploys sla_examples/nginx.json (with the test image), runs the
// script again (nothing restarts, nothing new), then stops and purges.
// The deployment uses the CLI, which the script builds and installs too.
func TestGetStarted(t *testing.T) {
	n := newNetwork(t)
	ns, nsPath, addr := n.addHost(80)
	ctrNS := "thicket-e2e-gs-" + runID
	t.Cleanup(func() { testharness.CleanContainerd(context.Background(), ctrNS) })

	reg, err := testimage.StartRegistry(bridgeAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	image, err := reg.PushTestApp(ctx, "e2e/getstarted", "v1")
	if err != nil {
		t.Fatal(err)
	}

	// The script runs from a snapshot of this checkout: others may edit the
	// checkout meanwhile, and a changed binary rightly restarts its service.
	snap := t.TempDir()
	if out, err := exec.Command("sh", "-c", `tar -C .. --exclude=./.git --exclude=./bin -cf - . | tar -xf - -C "$0"`, snap).CombinedOutput(); err != nil {
		t.Fatalf("snapshot of the checkout: %v\n%s", err, out)
	}
	data, prefix := filepath.Join(t.TempDir(), "data"), t.TempDir()
	script := filepath.Join(snap, "scripts", "getstarted.sh")
	getstarted := func(extra ...string) (string, error) {
		args := append([]string{"sh", script, "--data-dir", data, "--prefix", prefix,
			"--node-flag", "--namespace=" + ctrNS, "--node-flag", "--insecure-registry=" + reg.Host()}, extra...)
		return inHost(t, nsPath, 10*time.Minute, args...)
	}
	t.Cleanup(func() {
		if out, err := inHost(t, nsPath, 2*time.Minute, "sh", filepath.Join(filepath.Dir(script), "stop.sh"), "--data-dir", data, "--purge"); err != nil {
			t.Logf("cleanup: stop.sh: %v\n%s", err, out)
		}
		killInstall(data)
	})

	out, err := getstarted()
	if err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+data+"/log/*.log").CombinedOutput()
		t.Fatalf("getstarted.sh in %s: %v\n%s\n%s", ns, err, out, logs)
	}
	rootURL := "https://" + addr + ":10000"
	caFile := filepath.Join(data, "root", "tls", "ca.crt")
	for _, want := range []string{"Dashboard:       " + rootURL + "/", "password in " + data + "/root/admin-password", "supervised processes",
		"Root CA:         " + caFile + ", pin sha256:", "{ curl -sfk " + rootURL + "/ca.crt -o root-ca.crt"} {
		if !strings.Contains(out, want) {
			t.Errorf("getstarted.sh did not print %q:\n%s", want, out)
		}
	}
	info := func(out string) string { return out[strings.Index(out, "Thicket is running"):] }
	pids := scriptPids(t, data)
	if len(pids) != 4 {
		t.Fatalf("supervised processes %v, want root, cluster, net, node", pids)
	}
	secrets := map[string]string{}
	for _, f := range []string{"root/admin-password", "root/cluster-join-token", "cluster/node-join-token"} {
		secrets[f] = readFile(t, filepath.Join(data, f))
	}
	if body, err := httpsGet(rootURL+"/", caFile); err != nil || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("no dashboard at %s/: %v %.200q", rootURL, err, body)
	}

	// Deploy the nginx example with the test image.
	var sla map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(snap, "sla_examples", "nginx.json"))), &sla); err != nil {
		t.Fatal(err)
	}
	ms := sla["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)
	ms["code"] = image
	// Deploy with the CLI, which getstarted.sh installs with the api.
	cli := filepath.Join(prefix, "thicket")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("getstarted.sh did not install the CLI: %v\n%s", err, out)
	}
	slaFile := filepath.Join(t.TempDir(), "nginx.json")
	b, _ := json.Marshal(sla)
	writeFile(t, slaFile, string(b))
	cfg := t.TempDir()
	login := exec.Command(cli, "login", "--server", rootURL, "--ca-file", caFile, "-u", "Admin", "--password-stdin", "--config", cfg)
	login.Stdin = strings.NewReader(secrets["root/admin-password"] + "\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("thicket login: %v\n%s", err, out)
	}
	if out, err := exec.Command(cli, "apply", "-f", slaFile, "--timeout", "3m", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("thicket apply: %v\n%s", err, out)
	}
	a := &rootAPI{t: t, url: rootURL, ca: caFile}
	a.login("Admin", secrets["root/admin-password"])
	var apps []api.Application
	a.must("GET", "/api/applications/", nil, &apps)
	if len(apps) != 1 || len(apps[0].Microservices) != 1 {
		t.Fatalf("applications: %+v", apps)
	}
	in := a.waitInstance(apps[0].Microservices[0], 0, 3*time.Minute, "running", running)
	if in.InstanceIP == "" || in.HostIP != addr {
		t.Errorf("instance %+v: want an overlay address on %s", in, addr)
	}

	t.Run("running it again changes nothing", func(t *testing.T) {
		again, err := getstarted()
		if err != nil {
			t.Fatalf("%v\n%s", err, again)
		}
		if strings.Contains(again, "started ") || strings.Contains(again, "installed ") {
			t.Errorf("the second run installed or started something:\n%s", again)
		}
		if info(again) != info(out) {
			t.Errorf("the second run printed\n%s\nthe first\n%s", info(again), info(out))
		}
		if now := scriptPids(t, data); len(now) != 4 || !sameMap(now, pids) {
			t.Errorf("pids %v, before %v", now, pids)
		}
		for f, before := range secrets {
			if now := readFile(t, filepath.Join(data, f)); now != before {
				t.Errorf("%s changed", f)
			}
		}
		if in2, _ := a.instance(apps[0].Microservices[0], 0); !running(in2) || in2.NodeName != in.NodeName {
			t.Errorf("instance after the second run: %+v", in2)
		}
	})

	t.Run("stop keeps instances, purge removes everything", func(t *testing.T) {
		filter := `labels."thicket.instance"`
		before := containers(t, ctrNS, filter)
		if len(before) == 0 {
			t.Fatal("no instance container")
		}
		out, err := inHost(t, nsPath, 2*time.Minute, "sh", filepath.Join(filepath.Dir(script), "stop.sh"), "--data-dir", data)
		if err != nil {
			t.Fatalf("stop.sh: %v\n%s", err, out)
		}
		for name, pid := range pids {
			if alive(pid) {
				t.Errorf("%s (%d) still runs after stop.sh", name, pid)
			}
		}
		if now := containers(t, ctrNS, filter); !sameSlice(now, before) {
			t.Errorf("containers after stop: %v, before %v", now, before)
		}
		if _, err := os.Stat(filepath.Join(data, "root", "admin-password")); err != nil {
			t.Errorf("stop without --purge removed data: %v", err)
		}

		out, err = inHost(t, nsPath, 2*time.Minute, "sh", script, "--stop", "--purge", "--data-dir", data)
		if err != nil {
			t.Fatalf("getstarted.sh --stop --purge: %v\n%s", err, out)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("data dir after --purge: %v", err)
		}
		if now := containers(t, ctrNS, filter); len(now) != 0 {
			t.Errorf("containers after --purge: %v", now)
		}
		if links, _ := exec.Command("ip", "-n", ns, "-o", "link").Output(); strings.Contains(string(links), "thk0") {
			t.Errorf("the overlay bridge is left after --purge:\n%s", links)
		}
		if _, err := os.Stat(filepath.Join(prefix, "thicket-root")); err != nil {
			t.Errorf("--purge removed the binaries: %v", err)
		}
	})
}

func sameMap(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameSlice(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}
