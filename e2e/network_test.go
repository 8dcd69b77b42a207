package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

var helloRE = regexp.MustCompile(`hello from (\S+)`)

// fetchFrom runs the test app as an HTTP client inside a host's network
// namespace and returns who answered each of n requests ("" for a failed
// one).
func fetchFrom(t *testing.T, ns, url string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := testimage.Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin, "fetch", url, fmt.Sprint(n)).CombinedOutput()
	var who []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := helloRE.FindStringSubmatch(l)
		if m == nil {
			who = append(who, "")
			continue
		}
		who = append(who, m[1])
	}
	return who
}

func distinct(who []string) map[string]int {
	m := map[string]int{}
	for _, w := range who {
		m[w]++
	}
	return m
}

// runningOn waits until instance n of a service runs with an overlay
// address and returns it.
func (s *system) runningOn(id string, n int) api.Instance {
	return s.api.waitInstance(id, n, 2*time.Minute, "running with an instance IP", func(in api.Instance) bool {
		return running(in) && in.InstanceIP != ""
	})
}

func pin(cluster, node string) []any {
	return []any{map[string]any{"type": "direct", "cluster": cluster, "node": node}}
}

// TestOverlayNetwork runs the network issue's scenarios: three hosts in two
// clusters, each with thicket-net, instances on one overlay with service IPs.
func TestOverlayNetwork(t *testing.T) {
	s := newSystem(t)
	a := s.addCluster("alpha", "")
	// beta listens on the bridge address only, as on a multi-homed host:
	// its manager must reach its broker there, not on 127.0.0.1.
	b := s.addClusterOn(bridgeAddr, "beta", "")
	n1 := s.addOverlayNode(a, "n1", 31, 1024)
	n2 := s.addOverlayNode(a, "n2", 32, 1024)
	n3 := s.addOverlayNode(b, "n3", 33, 1024)
	s.waitNodes(map[string]int{"alpha": 2, "beta": 1})

	// The seed's clientsrvr pair, with local images: a server behind
	// rr_ip 10.30.55.55 on n3 (cluster beta), a client on n1 (alpha).
	ids := s.app("clientsrvr",
		map[string]any{"microservice_name": "server", "memory": 32, "addresses": map[string]string{"rr_ip": "10.30.55.55", "closest_ip": "10.30.66.66"},
			"constraints": pin("beta", n3.name)},
		map[string]any{"microservice_name": "client", "memory": 32, "cmd": []string{"fetch", "http://10.30.55.55:8080/", "0"},
			"constraints": pin("alpha", n1.name)})
	srv, cli := ids["server"], ids["client"]
	s.scaleUp(srv)
	first := s.runningOn(srv, 0)
	if ip, err := netip.ParseAddr(first.InstanceIP); err != nil || !netip.MustParsePrefix("10.64.0.0/10").Contains(ip) {
		t.Fatalf("server instance IP %q is not in the instance network", first.InstanceIP)
	}

	t.Run("client on one host reaches the server on another through the service IP", func(t *testing.T) {
		s.scaleUp(cli)
		s.runningOn(cli, 0)
		testharness.WaitFor(t, time.Minute, "the client's answers from the server", func() (bool, string) {
			var l struct {
				Logs string `json:"logs"`
			}
			s.api.must("GET", "/api/service/"+cli+"/instance/0/logs?lines=5", nil, &l)
			return strings.Contains(l.Logs, "hello from"), l.Logs
		})
	})

	t.Run("instance to instance across hosts and clusters", func(t *testing.T) {
		// From n1 (alpha) and n2 (alpha) to the server's own address on n3 (beta).
		for _, n := range []*node{n1, n2} {
			who := fetchFrom(t, n.ns, "http://"+first.InstanceIP+":8080/", 3)
			if d := distinct(who); len(d) != 1 || d[""] > 0 {
				t.Errorf("from %s to %s: %v", n.name, first.InstanceIP, who)
			}
		}
	})

	// Three servers, one per host: the rr_ip spreads over all of them.
	t.Run("round robin over three hosts", func(t *testing.T) {
		// Unpinned, 600 MB of each host's 1024: one per host.
		ids := s.app("servers", map[string]any{"microservice_name": "rr", "memory": 600,
			"addresses": map[string]string{"rr_ip": "10.30.77.77", "closest_ip": "10.30.88.88"}})
		rr := ids["rr"]
		for range 3 {
			s.scaleUp(rr)
		}
		hosts := map[string]bool{}
		for n := range 3 {
			hosts[s.runningOn(rr, n).NodeName] = true
		}
		if len(hosts) != 3 {
			t.Fatalf("three servers on %d hosts", len(hosts))
		}
		var who []string
		testharness.WaitFor(t, 30*time.Second, "30 requests reach all 3 servers", func() (bool, string) {
			who = fetchFrom(t, n1.ns, "http://10.30.77.77:8080/", 30)
			d := distinct(who)
			return len(d) == 3 && d[""] == 0, fmt.Sprint(d)
		})

		t.Run("an instance reaches all servers, its own node's too", func(t *testing.T) {
			// A client instance on n1, where one of the servers runs: the
			// connections to that one stay on n1's bridge.
			ids := s.app("rrclient", map[string]any{"microservice_name": "c", "memory": 16,
				"cmd": []string{"fetch", "http://10.30.77.77:8080/", "0"}, "constraints": pin("alpha", n1.name)})
			s.scaleUp(ids["c"])
			s.runningOn(ids["c"], 0)
			testharness.WaitFor(t, time.Minute, "answers from all 3 servers in the client's log", func() (bool, string) {
				var l struct {
					Logs string `json:"logs"`
				}
				s.api.must("GET", "/api/service/"+ids["c"]+"/instance/0/logs?lines=30", nil, &l)
				seen := map[string]bool{}
				for _, m := range helloRE.FindAllStringSubmatch(l.Logs, -1) {
					seen[m[1]] = true
				}
				return len(seen) == 3, fmt.Sprint(seen)
			})
			s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
		})

		t.Run("closest prefers the instance on the same node", func(t *testing.T) {
			onN2 := ""
			for n := range 3 {
				if in, _ := s.api.instance(rr, n); in.NodeName == n2.name {
					onN2 = strings.ReplaceAll(fmt.Sprintf("%s.%d", rr, n), ".", "-")
				}
			}
			testharness.WaitFor(t, 30*time.Second, "closest answers from n2's own instance", func() (bool, string) {
				d := distinct(fetchFrom(t, n2.ns, "http://10.30.88.88:8080/", 10))
				return len(d) == 1 && d[onN2] == 10, fmt.Sprint(d)
			})
		})

		t.Run("scale down: the removed instance stops receiving", func(t *testing.T) {
			gone, _ := s.api.instance(rr, 2)
			s.api.must("DELETE", "/api/service/"+rr+"/instance/2", nil, nil)
			goneName := strings.ReplaceAll(rr+".2", ".", "-")
			testharness.WaitFor(t, 30*time.Second, "traffic only to the two remaining servers", func() (bool, string) {
				d := distinct(fetchFrom(t, n1.ns, "http://10.30.77.77:8080/", 20))
				return len(d) == 2 && d[goneName] == 0 && d[""] == 0, fmt.Sprint(d)
			})
			t.Logf("instance 2 (%s on %s) removed", gone.InstanceIP, gone.NodeName)
		})
	})

	t.Run("a published port answers on the host's address", func(t *testing.T) {
		ids := s.app("pub", map[string]any{"microservice_name": "pub", "memory": 32, "port": "18080:8080",
			"environment": []string{"INSTANCE=published"}})
		s.scaleUp(ids["pub"])
		in := s.runningOn(ids["pub"], 0)
		defer func() {
			if t.Failed() {
				for _, n := range s.nodes {
					if n.addr == in.HostIP {
						out, _ := exec.Command("ip", "netns", "exec", n.ns, "nft", "list", "table", "ip", "thicket").CombinedOutput()
						t.Logf("instance %+v\nnft on %s:\n%s", in, n.name, out)
						out, _ = exec.Command("ip", "netns", "exec", n.ns, "ip", "route").CombinedOutput()
						t.Logf("routes on %s:\n%s", n.name, out)
					}
				}
			}
		}()
		testharness.WaitFor(t, 30*time.Second, "published port answers", func() (bool, string) {
			body, err := httpGet(fmt.Sprintf("http://%s:18080/", in.HostIP))
			return strings.Contains(body, "hello from published"), fmt.Sprint(body, err)
		})
	})

	t.Run("restart of thicket-net while traffic flows", func(t *testing.T) {
		before, _ := s.api.instance(cli, 0)
		n1.net.Kill()
		time.Sleep(time.Second)
		n1.net.restart()
		time.Sleep(3 * time.Second)
		// The client on n1 keeps getting answers, and keeps its address.
		testharness.WaitFor(t, 30*time.Second, "client answered after the restart", func() (bool, string) {
			var l struct {
				Logs string `json:"logs"`
			}
			s.api.must("GET", "/api/service/"+cli+"/instance/0/logs?lines=3", nil, &l)
			lines := strings.Split(strings.TrimSpace(l.Logs), "\n")
			return len(lines) == 3 && !strings.Contains(l.Logs, "error"), l.Logs
		})
		after, _ := s.api.instance(cli, 0)
		if after.InstanceIP != before.InstanceIP {
			t.Errorf("client re-addressed from %s to %s", before.InstanceIP, after.InstanceIP)
		}
	})
}
