package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// instanceNetns is the network namespace (a path) of a running instance,
// as its node's thicket-net attached it.
func instanceNetns(t *testing.T, n *node, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	as, err := netapi.NewClient(n.netSocket).Attachments(ctx)
	if err != nil {
		t.Fatalf("attachments of %s: %v", n.name, err)
	}
	for _, a := range as {
		if a.Key == key {
			return a.Netns
		}
	}
	t.Fatalf("no attachment %s on %s: %+v", key, n.name, as)
	return ""
}

// fetchInside GETs url once from inside an instance's network namespace
// (as the instance would) and returns who answered ("" if nobody did) and
// the client's output.
func fetchInside(t *testing.T, netns, url string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin, err := testimage.Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.CommandContext(ctx, "nsenter", "--net="+netns, bin, "fetch", url, "1").CombinedOutput()
	if m := helloRE.FindStringSubmatch(string(out)); m != nil {
		return m[1], string(out)
	}
	return "", string(out)
}

// TestTenantIsolation: two users' instances on three hosts in two clusters.
// A user's instance reaches its own instances and service IPs (across
// nodes), and not the other user's (across nodes, across clusters and on
// its own node's bridge), unless the other user's service allows it.
func TestTenantIsolation(t *testing.T) {
	s := newSystem(t)
	a := s.addCluster("alpha", "")
	b := s.addCluster("beta", "")
	n1 := s.addOverlayNode(a, "n1", 41, 1024)
	n2 := s.addOverlayNode(a, "n2", 42, 1024)
	n3 := s.addOverlayNode(b, "n3", 43, 1024)
	s.waitNodes(map[string]int{"alpha": 2, "beta": 1})

	s.api.must("POST", "/api/users/", api.NewUser{Username: "bob", Password: "bob-password-1", Role: "user"}, nil)
	bob := &rootAPI{t: t, url: s.rootURL, ca: s.api.ca}
	bob.login("bob", "bob-password-1")

	// Admin's: a server on n1 behind 10.30.91.1, a client on n2.
	adm := s.app("tenanta",
		map[string]any{"microservice_name": "srv", "memory": 32, "addresses": map[string]string{"rr_ip": "10.30.91.1"},
			"constraints": pin("alpha", n1.name)},
		map[string]any{"microservice_name": "cli", "memory": 32, "constraints": pin("alpha", n2.name)})
	// Bob's: a server on n3 (the other cluster) behind 10.30.92.1, one
	// that allows Admin's instances on n3 behind 10.30.93.1, and a client
	// on n1 (the bridge of Admin's server).
	bobs := s.appAs(bob, "tenantb",
		map[string]any{"microservice_name": "srv", "memory": 32, "addresses": map[string]string{"rr_ip": "10.30.92.1"},
			"constraints": pin("beta", n3.name)},
		map[string]any{"microservice_name": "open", "memory": 32, "addresses": map[string]string{"rr_ip": "10.30.93.1"},
			"constraints": pin("beta", n3.name), "allow_from": []string{"Admin/tenanta/cli"}},
		map[string]any{"microservice_name": "cli", "memory": 32, "constraints": pin("alpha", n1.name)})
	for _, id := range []string{adm["srv"], adm["cli"]} {
		s.scaleUpAs(s.api, id)
	}
	for _, id := range []string{bobs["srv"], bobs["open"], bobs["cli"]} {
		s.scaleUpAs(bob, id)
	}
	in := map[string]api.Instance{
		"a.srv": s.runningOn(adm["srv"], 0), "a.cli": s.runningOn(adm["cli"], 0),
		"b.srv": s.runningOn(bobs["srv"], 0), "b.open": s.runningOn(bobs["open"], 0), "b.cli": s.runningOn(bobs["cli"], 0),
	}
	aCli := instanceNetns(t, n2, wire.InstanceKey(adm["cli"], 0))
	bCli := instanceNetns(t, n1, wire.InstanceKey(bobs["cli"], 0))
	url := func(ip string) string { return "http://" + ip + ":8080/" }
	name := func(svc string) string { return strings.ReplaceAll(svc+".0", ".", "-") }

	defer func() {
		if t.Failed() {
			for _, n := range []*node{n1, n2, n3} {
				out, _ := exec.Command("ip", "netns", "exec", n.ns, "nft", "list", "table", "ip", "thicket").CombinedOutput()
				t.Logf("nft on %s:\n%s", n.name, out)
			}
		}
	}()

	// What must work, first: it also shows that every node has the
	// addresses in its tables.
	for _, c := range []struct {
		what, from, url, want string
	}{
		{"Admin to its own server on another node", aCli, url(in["a.srv"].InstanceIP), name(adm["srv"])},
		{"Admin to its own service IP", aCli, url("10.30.91.1"), name(adm["srv"])},
		{"Bob to his own server in the other cluster", bCli, url(in["b.srv"].InstanceIP), name(bobs["srv"])},
		{"Bob to his own service IP", bCli, url("10.30.92.1"), name(bobs["srv"])},
		{"Admin's client to Bob's service that allows it", aCli, url(in["b.open"].InstanceIP), name(bobs["open"])},
		{"Admin's client to that service's IP", aCli, url("10.30.93.1"), name(bobs["open"])},
	} {
		testharness.WaitFor(t, time.Minute, c.what, func() (bool, string) {
			who, out := fetchInside(t, c.from, c.url)
			return who == c.want, out
		})
	}
	// What must not.
	for _, c := range []struct{ what, from, url string }{
		{"Admin to Bob's server in the other cluster", aCli, url(in["b.srv"].InstanceIP)},
		{"Admin to Bob's service IP", aCli, url("10.30.92.1")},
		{"Bob to Admin's server on the same node (bridged)", bCli, url(in["a.srv"].InstanceIP)},
		{"Bob to Admin's service IP (backend on the same node)", bCli, url("10.30.91.1")},
		{"Bob's client to Admin's client on another node", bCli, url(in["a.cli"].InstanceIP)},
		{"Admin's server (not allowed, only the client is) to Bob's open service", instanceNetns(t, n1, wire.InstanceKey(adm["srv"], 0)), url("10.30.93.1")},
	} {
		if who, out := fetchInside(t, c.from, c.url); who != "" || !strings.Contains(out, "refused") {
			t.Errorf("%s: answered by %q, want connection refused: %s", c.what, who, out)
		}
	}
	// The node itself (not an instance) still reaches every instance.
	if who := fetchFrom(t, n1.ns, url(in["b.srv"].InstanceIP), 1); len(who) != 1 || who[0] != name(bobs["srv"]) {
		t.Errorf("node n1 to Bob's server: %v", who)
	}

	// Bob changes who may connect, without recreating anything: his
	// server opens to Admin, his open service closes. The paths follow;
	// no instance restarts.
	starts := func(svc string) int {
		ctx, cancel := bob.ctx()
		defer cancel()
		ev, err := bob.client().Events(ctx, svc, 0)
		if err != nil {
			t.Fatalf("events of %s: %v", svc, err)
		}
		n := 0
		for _, e := range ev.Events {
			if e.Message == "started" {
				n++
			}
		}
		return n
	}
	before := map[string]int{"srv": starts(bobs["srv"]), "open": starts(bobs["open"])}
	bob.must("PUT", "/api/service/"+bobs["srv"]+"/allow-from", api.AllowFrom{AllowFrom: []string{"Admin"}}, nil)
	bob.must("PUT", "/api/service/"+bobs["open"]+"/allow-from", api.AllowFrom{AllowFrom: []string{}}, nil)
	testharness.WaitFor(t, time.Minute, "Admin's client reaches Bob's server once it allows Admin", func() (bool, string) {
		who, out := fetchInside(t, aCli, url("10.30.92.1"))
		return who == name(bobs["srv"]), out
	})
	if who, _ := fetchInside(t, aCli, url(in["b.srv"].InstanceIP)); who != name(bobs["srv"]) {
		t.Errorf("Admin's client to Bob's server's instance IP after the change: answered by %q", who)
	}
	testharness.WaitFor(t, time.Minute, "Admin's client is refused by Bob's open service once it allows nobody", func() (bool, string) {
		who, out := fetchInside(t, aCli, url("10.30.93.1"))
		return who == "" && strings.Contains(out, "refused"), out
	})
	if who, out := fetchInside(t, aCli, url(in["b.open"].InstanceIP)); who != "" || !strings.Contains(out, "refused") {
		t.Errorf("Admin's client to the closed service's instance IP: answered by %q: %s", who, out)
	}
	if who, _ := fetchInside(t, bCli, url("10.30.93.1")); who != name(bobs["open"]) {
		t.Errorf("Bob's own client to his closed service: answered by %q", who)
	}
	for svc, n := range before {
		if got := starts(bobs[svc]); got != n {
			t.Errorf("Bob's %s was started %d times before the change and %d after: it restarted", svc, n, got)
		}
		if now := s.runningOn(bobs[svc], 0); now.InstanceIP != in["b."+svc].InstanceIP || now.Restarts != in["b."+svc].Restarts {
			t.Errorf("Bob's %s changed: %+v, was %+v", svc, now, in["b."+svc])
		}
	}

	// An application of Admin's isolated from Admin's others: its
	// instances reach each other (across nodes), not Admin's other
	// application's, nor those theirs.
	iso := s.appWith(s.api, "tenantc", map[string]any{"isolation": "application"},
		map[string]any{"microservice_name": "srv", "memory": 32, "addresses": map[string]string{"rr_ip": "10.30.94.1"},
			"constraints": pin("alpha", n2.name)},
		map[string]any{"microservice_name": "cli", "memory": 32, "constraints": pin("alpha", n1.name)})
	for _, id := range []string{iso["srv"], iso["cli"]} {
		s.scaleUpAs(s.api, id)
	}
	cSrv := s.runningOn(iso["srv"], 0)
	s.runningOn(iso["cli"], 0)
	cCli := instanceNetns(t, n1, wire.InstanceKey(iso["cli"], 0))
	testharness.WaitFor(t, time.Minute, "the isolated application's client reaches its own service IP", func() (bool, string) {
		who, out := fetchInside(t, cCli, url("10.30.94.1"))
		return who == name(iso["srv"]), out
	})
	for _, c := range []struct{ what, from, url string }{
		{"Admin's other application to the isolated server", aCli, url(cSrv.InstanceIP)},
		{"Admin's other application to the isolated service IP", aCli, url("10.30.94.1")},
		{"the isolated application to Admin's other server (same node)", cCli, url(in["a.srv"].InstanceIP)},
		{"the isolated application to Admin's other service IP", cCli, url("10.30.91.1")},
	} {
		if who, out := fetchInside(t, c.from, c.url); who != "" || !strings.Contains(out, "refused") {
			t.Errorf("%s: answered by %q, want connection refused: %s", c.what, who, out)
		}
	}
	// Bob's server allows the user Admin: that includes Admin's isolated
	// application.
	if who, out := fetchInside(t, cCli, url("10.30.92.1")); who != name(bobs["srv"]) {
		t.Errorf("the isolated application to Bob's server that allows Admin: answered by %q: %s", who, out)
	}
}
