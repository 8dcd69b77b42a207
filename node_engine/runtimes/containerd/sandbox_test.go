package containerd_test

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// probeLines runs the test image's probe mode with sec and returns its
// answers by name ("raw-socket" -> "ok").
func probeLines(t *testing.T, rt *ctrd.Runtime, key string, sec *wire.Security) map[string]string {
	t.Helper()
	s := spec(key, testharness.FreePort(t), "probe")
	s.Security = sec
	if err := rt.Start(testCtx(t), s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("probe ended %s (%s)", ev.Status, ev.Detail)
	}
	waitLogs(t, rt, s.Key, "probe done", 1)
	logs, err := rt.Logs(testCtx(t), s.Key, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	logs = logText(logs)
	for _, l := range strings.Split(logs, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "probe "), ": "); ok && strings.HasPrefix(l, "probe ") {
			out[k] = v
		}
	}
	return out
}

// TestSandboxDefaults: a container gets Docker's defaults without
// CAP_NET_RAW (no raw socket), no_new_privs and the default seccomp
// profile, a read-only /proc/sys; added capabilities and a privileged
// container only when the spec asks.
func TestSandboxDefaults(t *testing.T) {
	rt := newRuntime(t)
	const capSysAdmin = 21
	for _, tc := range []struct {
		name      string
		sec       *wire.Security
		rawSocket string // "ok" or a substring of the error
		nnp, secc string
		procSys   string
	}{
		{"default", nil, "operation not permitted", "1", "2", "read-only file system"},
		{"pids limit only", &wire.Security{PidsLimit: 100}, "operation not permitted", "1", "2", "read-only file system"},
		{"cap_add NET_RAW", &wire.Security{CapAdd: []string{"CAP_NET_RAW"}}, "ok", "1", "2", "read-only file system"},
		{"privileged", &wire.Security{Privileged: true}, "ok", "0", "0", "writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := probeLines(t, rt, strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", ""), "_", "")+".0", tc.sec)
			if v := got["raw-socket"]; !strings.Contains(v, tc.rawSocket) {
				t.Errorf("raw socket: %q, want %q", v, tc.rawSocket)
			}
			if got["NoNewPrivs"] != tc.nnp {
				t.Errorf("NoNewPrivs: %q, want %q", got["NoNewPrivs"], tc.nnp)
			}
			if got["Seccomp"] != tc.secc {
				t.Errorf("Seccomp: %q, want %q (2: a filter)", got["Seccomp"], tc.secc)
			}
			if !strings.Contains(got["proc-sys"], tc.procSys) {
				t.Errorf("writing /proc/sys: %q, want %q", got["proc-sys"], tc.procSys)
			}
			// A privileged container has every capability the node has,
			// CAP_SYS_ADMIN among them; no other does.
			eff, err := strconv.ParseUint(got["CapEff"], 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", got["CapEff"], err)
			}
			if privileged := tc.sec != nil && tc.sec.Privileged; privileged != (eff&(1<<capSysAdmin) != 0) {
				t.Errorf("CapEff %q (privileged: %v)", got["CapEff"], privileged)
			}
		})
	}
}

// TestIsolatedNetwork: with IsolateNetwork, a container without a
// namespace of its own has loopback only; without it, the host's network.
func TestIsolatedNetwork(t *testing.T) {
	isolated := newRuntime(t, func(c *ctrd.Config) { c.IsolateNetwork = true })
	if got := probeLines(t, isolated, "iso.0", nil)["interfaces"]; got != "lo" {
		t.Errorf("isolated container's interfaces: %q, want lo only", got)
	}
	host := newRuntime(t)
	if got := probeLines(t, host, "host.0", nil)["interfaces"]; !strings.Contains(got, ",") {
		t.Errorf("host-network container's interfaces: %q, want the host's", got)
	}
}

var forkStarted = regexp.MustCompile(`forkbomb started (\d+)`)

// TestPidsLimitBoundsForkBomb: a fork bomb stops at the pids limit (the
// node's, or the spec's when lower, never higher) and the runtime goes on
// serving.
func TestPidsLimitBoundsForkBomb(t *testing.T) {
	rt := newRuntime(t, func(c *ctrd.Config) { c.PidsLimit = 60 })
	for _, tc := range []struct {
		name  string
		sec   *wire.Security
		limit int
	}{
		{"node limit", nil, 60},
		{"lower in spec", &wire.Security{PidsLimit: 25}, 25},
		{"higher in spec", &wire.Security{PidsLimit: 5000}, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := spec(strings.ReplaceAll(tc.name, " ", "")+".0", testharness.FreePort(t), "forkbomb", "1000")
			s.Security = tc.sec
			s.Resources.MemoryMB = 512
			if err := rt.Start(ctx, s); err != nil {
				t.Fatalf("Start: %v", err)
			}
			waitLogs(t, rt, s.Key, "forkbomb done", 1)
			logs, err := rt.Logs(ctx, s.Key, 1<<16)
			if err != nil {
				t.Fatal(err)
			}
			m := forkStarted.FindStringSubmatch(logs)
			if m == nil {
				t.Fatalf("no count in the logs:\n%s", logs)
			}
			n, _ := strconv.Atoi(m[1])
			if n == 0 || n >= tc.limit || !strings.Contains(logs, "forkbomb refused") {
				t.Errorf("started %d children (limit %d):\n%s", n, tc.limit, logs)
			}
			// The runtime still serves: the instance runs, and goes.
			if st, ok := runtimetest.Find(t, rt, s.Key); !ok || st.Status != wire.StatusRunning {
				t.Errorf("after the fork bomb: %+v", st)
			}
			if err := rt.Remove(ctx, s.Key); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		})
	}
}

// TestPullTimeout: a registry that never answers fails the start after
// the pull timeout, saying so.
func TestPullTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	host := ln.Addr().String()
	rt := newRuntime(t, func(c *ctrd.Config) {
		c.PullTimeout = 2 * time.Second
		c.InsecureRegistries = append(c.InsecureRegistries, host)
	})
	s := spec("stuck.0", testharness.FreePort(t))
	s.Code = host + "/never:v1"
	t0 := time.Now()
	err = rt.Start(testCtx(t), s)
	if err == nil || !strings.Contains(err.Error(), "took longer than 2s") {
		t.Fatalf("Start = %v, want the pull timeout", err)
	}
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("Start failed after %v", el)
	}
}

// TestUserNamespace: with UsernsRemap a container's root is a host ID of
// the range, its root filesystem is owned by its own root, the rest of
// the sandbox holds, and a privileged container is refused with the
// reason.
func TestUserNamespace(t *testing.T) {
	remap := ctrd.IDRange{HostID: 1000000, Size: 65536}
	// A network namespace made outside the container, as thicket-net makes
	// the overlay's: the container joins it.
	netns := "thk-userns-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", netns).Run() })
	for _, tc := range []struct {
		name string
		mod  func(*ctrd.Config)
	}{
		{"host network", func(c *ctrd.Config) {}},
		{"joined namespace", func(c *ctrd.Config) { c.NetNS = "/run/netns/" + netns }},
		{"own namespace", func(c *ctrd.Config) { c.IsolateNetwork = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t, tc.mod, func(c *ctrd.Config) { c.UsernsRemap = remap })
			got := probeLines(t, rt, "userns"+strings.ReplaceAll(tc.name, " ", "")+".0", nil)
			if got["uid_map"] != "0 1000000 65536" {
				t.Errorf("uid_map %q, want \"0 1000000 65536\"", got["uid_map"])
			}
			if got["root-owner"] != "0" {
				t.Errorf("/ is owned by %q inside the container, want 0 (a remapped copy of the image)", got["root-owner"])
			}
			if !strings.Contains(got["raw-socket"], "operation not permitted") || got["NoNewPrivs"] != "1" || got["Seccomp"] != "2" {
				t.Errorf("sandbox in a user namespace: raw socket %q, NoNewPrivs %q, Seccomp %q", got["raw-socket"], got["NoNewPrivs"], got["Seccomp"])
			}
		})
	}
	rt := newRuntime(t, func(c *ctrd.Config) { c.UsernsRemap = remap })

	s := spec("userns-priv.0", testharness.FreePort(t), "probe")
	s.Security = &wire.Security{Privileged: true}
	err := rt.Start(testCtx(t), s)
	if err == nil || !strings.Contains(err.Error(), "user namespaces") {
		t.Errorf("privileged in a user namespace: %v, want a refusal naming user namespaces", err)
	}

	// Without the option nothing is remapped.
	plain := probeLines(t, newRuntime(t), "nouserns.0", nil)
	if plain["uid_map"] != "0 0 4294967295" {
		t.Errorf("uid_map without --userns-remap: %q", plain["uid_map"])
	}
}
