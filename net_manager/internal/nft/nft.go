// Package nft programs the node's packet rewriting in the kernel: service IPs
// balanced round robin over their instances, ports published on the node's
// addresses, and masquerading of instance traffic that leaves the overlay.
//
// Everything lives in one nftables table (family ip, default name "thicket")
// written through netlink with github.com/google/nftables; no nft binary is
// needed at run time. Apply rewrites the table in one netlink batch (one
// nftables transaction), in place: base chains and sets stay, their rules and
// elements are replaced, service chains are added, rewritten or removed, so
// every packet sees either the old or the new rules (see builder.build for why
// not delete-and-recreate).
//
// Rules generated (nft list table ip thicket) for Config{InstanceNet:
// 10.64.0.0/16, LocalNet: 10.64.0.0/24}, service 10.30.0.10 with three
// backends, 10.30.0.11 with none, 10.30.0.12 with one, and two published ports:
//
//	table ip thicket {
//		map services {
//			type ipv4_addr : verdict
//			elements = { 10.30.0.10 : goto svc-10.30.0.10, 10.30.0.12 : goto svc-10.30.0.12 }
//		}
//		set no_backends {
//			type ipv4_addr
//			elements = { 10.30.0.11 }
//		}
//		chain svc-10.30.0.10 {
//			numgen inc mod 3 0 dnat to 10.64.0.2
//			numgen inc mod 2 0 dnat to 10.64.0.3
//			dnat to 10.64.0.4
//		}
//		chain svc-10.30.0.12 {
//			dnat to 10.64.0.3
//		}
//		chain ports {
//			tcp dport 18080 dnat to 10.64.0.2:8080
//			udp dport 5353 dnat to 10.64.0.3:53
//		}
//		chain prerouting {
//			type nat hook prerouting priority dstnat; policy accept;
//			ip daddr vmap @services
//			fib daddr type local jump ports
//		}
//		chain output {
//			type nat hook output priority -100; policy accept;
//			ip daddr vmap @services
//			ip daddr != 127.0.0.0/8 fib daddr type local jump ports
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ct status dnat ip saddr 10.64.0.0/24 ip daddr 10.64.0.0/24 masquerade
//			ip saddr 10.64.0.0/16 ip daddr != 10.64.0.0/16 ip daddr != 10.30.0.0/16 masquerade
//		}
//		chain filter_forward {
//			type filter hook forward priority filter; policy accept;
//			ip daddr @no_backends reject with tcp reset
//			ip daddr @no_backends reject
//			ip daddr 10.30.0.0/16 reject with tcp reset
//			ip daddr 10.30.0.0/16 reject
//		}
//		chain filter_output { (the same, on hook output) }
//	}
//
// The rules in a service chain pick the backends round robin per connection
// (see serviceRules); nat chains see only the first packet of a connection,
// conntrack translates the rest.
//
// With guards (ApplyGuarded: tenant isolation), the table also holds
//
//	map guarded { type ipv4_addr : verdict
//		elements = { 10.64.0.2 : jump guard-1, 10.64.0.4 : jump guard-2 } }
//	set guard-1 { type ipv4_addr; elements = { 10.64.0.2, 10.64.0.3 } }
//	set trusted { type ipv4_addr; elements = { 10.64.0.0, 10.64.0.1 } }
//	chain guard-1 {
//		ip saddr @guard-1 return
//		ip saddr @trusted return
//		reject with tcp reset
//		reject with icmp admin-prohibited
//	}
//	(guard-2 likewise)
//	chain filter_forward { ...
//		ct state new ip saddr 10.64.0.0/16 ip daddr vmap @guarded
//	}
//	chain filter_prerouting {
//		type filter hook prerouting priority mangle; policy accept;
//		ct state new ip saddr 10.64.0.0/16 ip daddr vmap @guarded
//	}
//
// so a new connection from an instance to a guarded service IP (before its
// DNAT) or instance address is refused unless its source is in that guard's
// set or trusted. Instances on one bridge reach each other
// bridged, not routed: the overlay makes its bridge pass bridged IPv4
// through these hooks (nf_call_iptables) so that the guards apply to them.
//
// A connection to a service IP that has no backends (or to any address of the
// service range that is not a known service) is refused at once: TCP gets a
// reset, other protocols an ICMP port-unreachable. Reject is not allowed in
// nat chains, so it is done in filter chains on the forward and output hooks,
// which run after the DNAT of nat prerouting/output: a connection that was
// translated no longer has a service IP as destination there.
package nft

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultTable is the name of the table used when Config.Table is empty.
const DefaultTable = "thicket"

// DefaultServiceNet is the service range used when Config.ServiceNet is unset.
var DefaultServiceNet = netip.MustParsePrefix("10.30.0.0/16")

// Service is one service IP and the instance IPs it balances over.
// Any packet to IP (any protocol and port, ports unchanged) is DNATed to one
// backend chosen round robin per connection. With no backends, connections are
// refused.
type Service struct {
	IP       netip.Addr
	Backends []netip.Addr
}

// PortMap publishes IP:Port of an instance as HostPort on every local address
// of the node.
type PortMap struct {
	HostPort int
	Proto    string // "tcp" or "udp"
	IP       netip.Addr
	Port     int
}

// Guard isolates instance addresses (tenant isolation): a new connection
// from the instance network to one of Dests (directly, or through a service
// IP whose chosen backend it is) is refused unless its source is one of
// Sources. Replies and connections already established pass; sources
// outside the instance network (the node itself, published ports reached
// from outside) are not restricted. An address in no guard is not isolated.
type Guard struct {
	Dests   []netip.Addr
	Sources []netip.Addr
}

// Isolation is the tenant isolation of a node: guards, and the trusted
// sources every guard lets in (the nodes' own overlay addresses, which a
// node's traffic to another node's instances leaves from).
type Isolation struct {
	Guards  []Guard
	Trusted []netip.Addr
}

// Config configures a Tables.
type Config struct {
	// Table is the nftables table (family ip); default "thicket".
	Table string
	// InstanceNet is the supernet of all instance addresses. Traffic from it
	// to anything outside it and outside ServiceNet is masqueraded.
	// The zero value disables that masquerade.
	InstanceNet netip.Prefix
	// LocalNet is this node's instance subnet, the one on its bridge. DNATed
	// connections from LocalNet to LocalNet (an instance reaching a service or
	// a published port whose chosen backend sits on the same bridge) are
	// masqueraded, because the backend would otherwise answer the client
	// directly over the bridge, bypassing the reverse translation (the
	// client then drops the answer). Set it unless instances do not share an
	// L2 segment (routed /32 interfaces); it does no harm where br_netfilter
	// already makes bridged traffic go through conntrack. Same-node clients
	// of a service then appear to the backend as the bridge's address.
	LocalNet netip.Prefix
	// ServiceNet is the service range (default 10.30.0.0/16). Traffic to an
	// address in it that no service translates is refused, and instance
	// traffic to it is never masqueraded.
	ServiceNet netip.Prefix
	// Logger receives warnings (conntrack cleanup); default slog.Default().
	Logger *slog.Logger
}

// Tables owns the nftables table of one network namespace: the namespace of
// the thread that called New.
type Tables struct {
	cfg Config
	ns  netns.NsHandle

	mu       sync.Mutex
	lastHash [sha256.Size]byte
	applied  bool
	// last applied input, to find removed backends for conntrack cleanup.
	lastServices map[netip.Addr][]netip.Addr
	lastPorts    []PortMap
}

// New validates cfg and binds the Tables to the caller's current network
// namespace (the namespace of the calling OS thread). It does not touch the
// kernel's rules; call Apply. Close releases the namespace handle.
func New(cfg Config) (*Tables, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if len(cfg.Table) > 255 || strings.ContainsRune(cfg.Table, 0) {
		return nil, fmt.Errorf("nft: table: invalid name %q", cfg.Table)
	}
	if !cfg.ServiceNet.IsValid() {
		cfg.ServiceNet = DefaultServiceNet
	}
	for _, p := range []struct {
		name string
		p    *netip.Prefix
	}{{"instance_net", &cfg.InstanceNet}, {"local_net", &cfg.LocalNet}, {"service_net", &cfg.ServiceNet}} {
		if !p.p.IsValid() {
			continue
		}
		if !p.p.Addr().Unmap().Is4() {
			return nil, fmt.Errorf("nft: %s: %s is not an IPv4 prefix", p.name, *p.p)
		}
		*p.p = netip.PrefixFrom(p.p.Addr().Unmap(), p.p.Bits()).Masked()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("nft: open current network namespace: %w", err)
	}
	return &Tables{cfg: cfg, ns: ns}, nil
}

// Close releases the network namespace handle. It leaves the rules in place
// (the data plane outlives the control plane).
func (t *Tables) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ns.IsOpen() {
		return nil
	}
	err := t.ns.Close()
	t.ns = netns.None()
	return err
}

// conn returns a netlink connection into the namespace of t. If b is not
// nil, the socket's buffers are sized for the batch b queued when it is
// dialled (at Flush).
func (t *Tables) conn(b *builder) (*nftables.Conn, error) {
	if !t.ns.IsOpen() {
		return nil, errors.New("nft: tables closed")
	}
	opts := []nftables.ConnOption{nftables.WithNetNSFd(int(t.ns))}
	if b != nil {
		opts = append(opts, nftables.WithSockOptions(sockBuffers(b)))
	}
	return nftables.New(opts...)
}

func (t *Tables) table() *nftables.Table {
	return &nftables.Table{Name: t.cfg.Table, Family: nftables.TableFamilyIPv4}
}

// Apply makes the table implement exactly services and ports, in one atomic
// netlink transaction; whatever else the table held (rules, chains, sets) is
// removed in the same transaction. Inputs are validated first (an invalid
// input changes nothing) and sorted, so the result does not depend on their
// order. If the input equals the last applied one and the table still exists,
// Apply does nothing. Service chains whose backends did not change since the
// last Apply of this Tables keep their rules, so their round robin goes on
// where it was; the first Apply of a Tables rewrites them all.
//
// After a successful replace, UDP conntrack entries that still point at a
// removed backend (or at the old target of a removed or changed UDP port
// mapping) are deleted, so that long-lived UDP flows move to a current
// backend. TCP connections to a removed backend are left alone (see
// FlushConntrack).
func (t *Tables) Apply(services []Service, ports []PortMap) error {
	return t.ApplyGuarded(services, ports, Isolation{})
}

// ApplyGuarded is Apply with tenant isolation, in the same transaction.
// With no guard, no address is isolated.
func (t *Tables) ApplyGuarded(services []Service, ports []PortMap, iso Isolation) error {
	svcs, err := normServices(services)
	if err != nil {
		return err
	}
	pms, err := normPorts(ports)
	if err != nil {
		return err
	}
	gs, err := normGuards(iso.Guards)
	if err != nil {
		return err
	}
	trusted, err := normAddrs("trusted", iso.Trusted)
	if err != nil {
		return err
	}
	h := hashInput(svcs, pms, gs, trusted)

	t.mu.Lock()
	defer t.mu.Unlock()
	b := builder{cfg: &t.cfg, table: t.table()}
	c, err := t.conn(&b)
	if err != nil {
		return err
	}
	b.c = c
	if t.applied && h == t.lastHash {
		if _, err := c.ListTableOfFamily(t.cfg.Table, nftables.TableFamilyIPv4); err == nil {
			return nil
		}
	}
	cur, err := t.current(c)
	if err != nil {
		t.applied = false
		return err
	}
	if err := b.build(svcs, pms, gs, trusted, cur); err != nil {
		t.applied = false
		return fmt.Errorf("nft: build table %s: %w", t.cfg.Table, err)
	}
	if err := c.Flush(); err != nil {
		t.applied = false
		return fmt.Errorf("nft: replace table %s: %w", t.cfg.Table, err)
	}
	prevSvcs, prevPorts := t.lastServices, t.lastPorts
	t.lastHash, t.applied = h, true
	t.lastServices = make(map[netip.Addr][]netip.Addr, len(svcs))
	for _, s := range svcs {
		t.lastServices[s.IP] = s.Backends
	}
	t.lastPorts = pms
	if prevSvcs != nil {
		t.cleanupConntrack(prevSvcs, prevPorts, svcs, pms)
	}
	return nil
}

// current reads the table's chains and sets; nil if there is no table.
func (t *Tables) current(c *nftables.Conn) (*current, error) {
	tb, err := c.ListTableOfFamily(t.cfg.Table, nftables.TableFamilyIPv4)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nft: read table %s: %w", t.cfg.Table, err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nft: list chains: %w", err)
	}
	sets, err := c.GetSets(tb)
	if err != nil {
		return nil, fmt.Errorf("nft: list sets of %s: %w", t.cfg.Table, err)
	}
	cur := &current{chains: make(map[string]*nftables.Chain), sets: make(map[string]*nftables.Set)}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.cfg.Table {
			cur.chains[ch.Name] = ch
		}
	}
	for _, s := range sets {
		if !s.Anonymous {
			cur.sets[s.Name] = s
		}
	}
	if t.applied {
		cur.backends = t.lastServices
	}
	return cur, nil
}

// Delete removes the table (and with it every rule of this package). Deleting
// a table that does not exist is not an error.
func (t *Tables) Delete() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.conn(nil)
	if err != nil {
		return err
	}
	tb := t.table()
	c.AddTable(tb) // no-op if it exists; makes the delete idempotent
	c.DelTable(tb)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: delete table %s: %w", t.cfg.Table, err)
	}
	t.applied = false
	t.lastServices, t.lastPorts = nil, nil
	return nil
}

func normAddr(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	return a, a.Is4()
}

// normServices validates and sorts services (by IP) and their backends
// (ascending, duplicates removed).
func normServices(in []Service) ([]Service, error) {
	out := make([]Service, 0, len(in))
	seen := make(map[netip.Addr]int, len(in))
	for i, s := range in {
		ip, ok := normAddr(s.IP)
		if !ok {
			return nil, fmt.Errorf("nft: services[%d].ip: %v is not an IPv4 address", i, s.IP)
		}
		if j, dup := seen[ip]; dup {
			return nil, fmt.Errorf("nft: services[%d].ip: %s duplicates services[%d]", i, ip, j)
		}
		seen[ip] = i
		bs := make([]netip.Addr, 0, len(s.Backends))
		for k, b := range s.Backends {
			a, ok := normAddr(b)
			if !ok {
				return nil, fmt.Errorf("nft: services[%d].backends[%d]: %v is not an IPv4 address", i, k, b)
			}
			bs = append(bs, a)
		}
		slices.SortFunc(bs, netip.Addr.Compare)
		bs = slices.Compact(bs)
		out = append(out, Service{IP: ip, Backends: bs})
	}
	slices.SortFunc(out, func(a, b Service) int { return a.IP.Compare(b.IP) })
	return out, nil
}

// normPorts validates port mappings and sorts them by (proto, host port).
func normPorts(in []PortMap) ([]PortMap, error) {
	out := make([]PortMap, 0, len(in))
	seen := make(map[string]int, len(in))
	for i, p := range in {
		proto := strings.ToLower(p.Proto)
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("nft: ports[%d].proto: %q is not tcp or udp", i, p.Proto)
		}
		if p.HostPort < 1 || p.HostPort > 65535 {
			return nil, fmt.Errorf("nft: ports[%d].host_port: %d is not in 1-65535", i, p.HostPort)
		}
		if p.Port < 1 || p.Port > 65535 {
			return nil, fmt.Errorf("nft: ports[%d].port: %d is not in 1-65535", i, p.Port)
		}
		ip, ok := normAddr(p.IP)
		if !ok {
			return nil, fmt.Errorf("nft: ports[%d].ip: %v is not an IPv4 address", i, p.IP)
		}
		key := fmt.Sprintf("%d/%s", p.HostPort, proto)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("nft: ports[%d]: %s duplicates ports[%d]", i, key, j)
		}
		seen[key] = i
		out = append(out, PortMap{HostPort: p.HostPort, Proto: proto, IP: ip, Port: p.Port})
	}
	slices.SortFunc(out, func(a, b PortMap) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		return a.HostPort - b.HostPort
	})
	return out, nil
}

// normGuards validates guards and sorts them (by their first address),
// their addresses ascending without repeats; guards without addresses are
// dropped. An address may be in one guard only.
func normGuards(in []Guard) ([]Guard, error) {
	out := make([]Guard, 0, len(in))
	seen := make(map[netip.Addr]int)
	norm := func(i int, field string, as []netip.Addr) ([]netip.Addr, error) {
		return normAddrs(fmt.Sprintf("guards[%d].%s", i, field), as)
	}
	for i, g := range in {
		ds, err := norm(i, "dests", g.Dests)
		if err != nil {
			return nil, err
		}
		ss, err := norm(i, "sources", g.Sources)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if j, dup := seen[d]; dup {
				return nil, fmt.Errorf("nft: guards[%d]: %s is in guards[%d] too", i, d, j)
			}
			seen[d] = i
		}
		if len(ds) > 0 {
			out = append(out, Guard{Dests: ds, Sources: ss})
		}
	}
	slices.SortFunc(out, func(a, b Guard) int { return a.Dests[0].Compare(b.Dests[0]) })
	return out, nil
}

// normAddrs validates addresses (IPv4) and sorts them without repeats.
func normAddrs(field string, as []netip.Addr) ([]netip.Addr, error) {
	o := make([]netip.Addr, 0, len(as))
	for k, a := range as {
		a, ok := normAddr(a)
		if !ok {
			return nil, fmt.Errorf("nft: %s[%d]: %v is not an IPv4 address", field, k, as[k])
		}
		o = append(o, a)
	}
	slices.SortFunc(o, netip.Addr.Compare)
	return slices.Compact(o), nil
}

func hashInput(svcs []Service, ports []PortMap, guards []Guard, trusted []netip.Addr) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range svcs {
		fmt.Fprintf(h, "s %s", s.IP)
		for _, b := range s.Backends {
			fmt.Fprintf(h, " %s", b)
		}
		h.Write([]byte{'\n'})
	}
	for _, p := range ports {
		fmt.Fprintf(h, "p %d %s %s %d\n", p.HostPort, p.Proto, p.IP, p.Port)
	}
	for _, g := range guards {
		fmt.Fprintf(h, "g %v <- %v\n", g.Dests, g.Sources)
	}
	fmt.Fprintf(h, "t %v\n", trusted)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
