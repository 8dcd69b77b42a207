package daemon

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/net_manager/internal/nft"
)

// nodeAddrs are the nodes' own addresses on the overlay: the VXLAN
// device's (the subnet's first address, which a node's own connections to
// another node's instances leave from) and the bridge's (the second) of
// the subnets given (this node's and those of the peers it routes). Guards
// trust them: the nodes themselves may reach every instance, as they may
// on their own bridge.
func nodeAddrs(subnets []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range subnets {
		if p.Addr().Is4() {
			out = append(out, p.Masked().Addr(), p.Masked().Addr().Next())
		}
	}
	return out
}

// policy is who may open connections to one service's instances: its
// tenant, other tenants and other services (wire.ServiceRoute).
type policy struct {
	users    []string
	services []string
}

// guards computes tenant isolation (nft.Guard) from the service table and
// this node's attachments. Every instance address of a service whose route
// names a tenant is guarded: new connections from the instance network may
// come from instances of the same tenant, of the users the service allows
// and of the services it allows. An address is known as a backend of its
// service's routes, or, on this node, from the attachment's instance key
// (so that an instance is isolated from the moment it is attached, before
// its address reaches the service table). An address behind several
// services (an OAM update's old and new service) gets the union of their
// policies. Addresses of services without a tenant (a root that predates
// tenancy) and outside inNet (when valid) are not guarded. Service IPs are
// guarded like their service's instances.
func guards(routes []wire.ServiceRoute, local map[string]netapi.Attachment, inNet netip.Prefix) []nft.Guard {
	pol := map[string]policy{}          // service id → its policy
	svcIPs := map[string][]netip.Addr{} // service id → instance addresses
	ipSvcs := map[netip.Addr][]string{} // address → service ids
	add := func(svc, ip string) {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() || (inNet.IsValid() && !inNet.Contains(a)) {
			return
		}
		if !slices.Contains(ipSvcs[a], svc) {
			ipSvcs[a] = append(ipSvcs[a], svc)
			svcIPs[svc] = append(svcIPs[svc], a)
		}
	}
	for _, r := range routes {
		if r.Tenant != "" {
			if _, ok := pol[r.ServiceID]; !ok {
				pol[r.ServiceID] = policy{users: append([]string{r.Tenant}, r.AllowUsers...), services: r.AllowServices}
			}
		}
		for _, b := range r.Backends {
			add(r.ServiceID, b.IP)
		}
	}
	for key, a := range local {
		if svc, _, err := wire.ParseInstanceKey(key); err == nil {
			add(svc, a.IP)
		}
	}
	tenantIPs := map[string][]netip.Addr{}
	for svc, ips := range svcIPs {
		if p, ok := pol[svc]; ok {
			tenantIPs[p.users[0]] = append(tenantIPs[p.users[0]], ips...)
		}
	}

	// Group the guarded addresses by their (merged) policy.
	type group struct {
		p     policy
		dests []netip.Addr
	}
	groups := map[string]*group{}
	guarded := map[netip.Addr]bool{}
	guard := func(ip netip.Addr, svcs []string) {
		if guarded[ip] {
			return // a service IP given twice (a malformed table)
		}
		var p policy
		for _, s := range svcs {
			if sp, ok := pol[s]; ok {
				p.users = append(p.users, sp.users...)
				p.services = append(p.services, sp.services...)
			}
		}
		if len(p.users) == 0 {
			return // no tenant: not isolated
		}
		p.users, p.services = slices.Clone(p.users), slices.Clone(p.services)
		slices.Sort(p.users)
		slices.Sort(p.services)
		p.users, p.services = slices.Compact(p.users), slices.Compact(p.services)
		k := strings.Join(p.users, ",") + "|" + strings.Join(p.services, ",")
		g := groups[k]
		if g == nil {
			g = &group{p: p}
			groups[k] = g
		}
		g.dests = append(g.dests, ip)
		guarded[ip] = true
	}
	for ip, svcs := range ipSvcs {
		guard(ip, svcs)
	}
	// Service IPs too, with their service's own policy: the net manager
	// refuses there, before the DNAT, so that the client hears it from
	// the address it asked.
	for _, r := range routes {
		if a, err := netip.ParseAddr(r.IP); err == nil && a.Is4() {
			guard(a, []string{r.ServiceID})
		}
	}
	out := make([]nft.Guard, 0, len(groups))
	for _, g := range groups {
		var src []netip.Addr
		for _, u := range g.p.users {
			src = append(src, tenantIPs[u]...)
		}
		for _, s := range g.p.services {
			src = append(src, svcIPs[s]...)
		}
		slices.SortFunc(src, netip.Addr.Compare)
		slices.SortFunc(g.dests, netip.Addr.Compare)
		out = append(out, nft.Guard{Dests: g.dests, Sources: slices.Compact(src)})
	}
	slices.SortFunc(out, func(a, b nft.Guard) int { return a.Dests[0].Compare(b.Dests[0]) })
	return out
}
