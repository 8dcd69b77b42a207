package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/net_manager/internal/nft"
)

// serviceIPs of the services in the tests.
var serviceIPs = map[string]string{"a1": "10.30.0.1", "a2": "10.30.0.2", "b1": "10.30.0.3", "c1": "10.30.0.4",
	"c2": "10.30.0.5", "old": "10.30.0.6", "new": "10.30.0.7"}

func closestRoute(r wire.ServiceRoute) wire.ServiceRoute {
	r.IP, r.Mode = "10.30.9.9", wire.RouteClosest
	return r
}

func route(svc, tenant string, ips ...string) wire.ServiceRoute {
	r := wire.ServiceRoute{IP: serviceIPs[svc], ServiceID: svc, Tenant: tenant}
	for _, ip := range ips {
		r.Backends = append(r.Backends, wire.Backend{IP: ip})
	}
	return r
}

// golden renders guards as "dests <- sources" lines.
func golden(gs []nft.Guard) string {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "%v <- %v\n", g.Dests, g.Sources)
	}
	return b.String()
}

func TestGuards(t *testing.T) {
	inNet := netip.MustParsePrefix("10.64.0.0/10")
	allow := func(r wire.ServiceRoute, users, svcs []string) wire.ServiceRoute {
		r.AllowUsers, r.AllowServices = users, svcs
		return r
	}
	for _, tc := range []struct {
		name   string
		routes []wire.ServiceRoute
		local  map[string]netapi.Attachment
		want   string
	}{{
		name:   "no tenants (a root before tenancy): nothing isolated",
		routes: []wire.ServiceRoute{route("a1", "", "10.64.1.2"), route("b1", "", "10.64.1.3")},
		want:   "",
	}, {
		name: "two tenants, each closed to the other",
		routes: []wire.ServiceRoute{
			route("a1", "alice", "10.64.1.2", "10.64.2.2"), route("a2", "alice", "10.64.1.4"),
			route("b1", "bob", "10.64.1.3"),
		},
		want: "[10.30.0.1 10.30.0.2 10.64.1.2 10.64.1.4 10.64.2.2] <- [10.64.1.2 10.64.1.4 10.64.2.2]\n" +
			"[10.30.0.3 10.64.1.3] <- [10.64.1.3]\n",
	}, {
		name: "allow a user, and one service of another",
		routes: []wire.ServiceRoute{
			allow(route("a1", "alice", "10.64.1.2"), []string{"bob"}, []string{"c2"}),
			route("a2", "alice", "10.64.1.4"),
			route("b1", "bob", "10.64.1.3"),
			route("c1", "carol", "10.64.1.5"), route("c2", "carol", "10.64.1.6"),
		},
		want: "[10.30.0.1 10.64.1.2] <- [10.64.1.2 10.64.1.3 10.64.1.4 10.64.1.6]\n" +
			"[10.30.0.2 10.64.1.4] <- [10.64.1.2 10.64.1.4]\n" +
			"[10.30.0.3 10.64.1.3] <- [10.64.1.3]\n" +
			"[10.30.0.4 10.30.0.5 10.64.1.5 10.64.1.6] <- [10.64.1.5 10.64.1.6]\n",
	}, {
		name:   "a local attachment is guarded before it is a backend",
		routes: []wire.ServiceRoute{route("a1", "alice", "10.64.1.2"), route("b1", "bob")},
		local:  map[string]netapi.Attachment{"b1.0": {IP: "10.64.1.9"}, "gone.3": {IP: "10.64.1.8"}, "nokey": {IP: "10.64.1.7"}},
		want:   "[10.30.0.1 10.64.1.2] <- [10.64.1.2]\n[10.30.0.3 10.64.1.9] <- [10.64.1.9]\n",
	}, {
		name: "an address behind two services (OAM update) gets both policies",
		routes: []wire.ServiceRoute{
			allow(route("old", "alice", "10.64.1.2", "10.64.1.3"), []string{"bob"}, nil),
			route("new", "alice", "10.64.1.3"),
			route("b1", "bob", "10.64.1.5"),
		},
		// The new service's IP keeps its own policy.
		want: "[10.30.0.3 10.64.1.5] <- [10.64.1.5]\n" +
			"[10.30.0.6 10.64.1.2 10.64.1.3] <- [10.64.1.2 10.64.1.3 10.64.1.5]\n" +
			"[10.30.0.7] <- [10.64.1.2 10.64.1.3]\n",
	}, {
		name:   "closest and round robin routes of one service, addresses outside the instance network",
		routes: []wire.ServiceRoute{route("a1", "alice", "10.64.1.2", "192.168.1.1", "bad"), closestRoute(route("a1", "alice", "10.64.1.2"))},
		want:   "[10.30.0.1 10.30.9.9 10.64.1.2] <- [10.64.1.2]\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := golden(guards(tc.routes, tc.local, inNet)); got != tc.want {
				t.Errorf("guards:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestNodeAddrs(t *testing.T) {
	got := nodeAddrs([]netip.Prefix{netip.MustParsePrefix("10.64.1.0/24"), netip.MustParsePrefix("10.64.2.0/24"), {}, netip.MustParsePrefix("10.65.0.0/25")})
	want := "[10.64.1.0 10.64.1.1 10.64.2.0 10.64.2.1 10.65.0.0 10.65.0.1]"
	if fmt.Sprint(got) != want {
		t.Errorf("nodeAddrs = %v, want %s", got, want)
	}
}
