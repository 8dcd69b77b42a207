package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Names of the objects in the table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainFwdFilter   = "filter_forward"
	chainOutFilter   = "filter_output"
	chainPreFilter   = "filter_prerouting"
	chainPorts       = "ports"
	svcChainPrefix   = "svc-"
	mapServices      = "services"
	setNoBackends    = "no_backends"
	mapGuarded       = "guarded"
	setTrusted       = "trusted"
	guardPrefix      = "guard-" // a guard's chain and the set of its sources
)

// Kernel constants not exported by x/sys/unix.
const (
	ipsDstNAT       = 1 << 5 // IPS_DST_NAT, conntrack status bit
	icmpPortUnreach = 3      // ICMP_PORT_UNREACH
	icmpPktFiltered = 13     // ICMP_PKT_FILTERED: communication administratively prohibited
)

// maxElemsPerMsg bounds the elements per netlink message (about 60 bytes
// each; the element list attribute holds at most 64 KiB).
const maxElemsPerMsg = 512

var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// current is what the kernel holds of the table before an Apply.
type current struct {
	chains map[string]*nftables.Chain
	sets   map[string]*nftables.Set
	// backends of each service chain as last written by this Tables, or
	// nil when unknown (first Apply of the process): then every service
	// chain is rewritten.
	backends map[netip.Addr][]netip.Addr
}

// builder queues the messages of one Apply on a Conn.
type builder struct {
	cfg   *Config
	c     *nftables.Conn
	table *nftables.Table
	msgs  int // number of queued netlink messages, to size socket buffers
	elems int // number of queued set elements, likewise
}

// baseSpec describes a base chain of the table.
type baseSpec struct {
	name string
	typ  nftables.ChainType
	hook *nftables.ChainHook
	prio *nftables.ChainPriority
}

var baseChains = []baseSpec{
	{chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
	{chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
	{chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
	{chainFwdFilter, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
	{chainOutFilter, nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityFilter},
	// Before the DNAT of services: guards on service IPs (see Guard).
	{chainPreFilter, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle},
}

func (bs baseSpec) matches(c *nftables.Chain) bool {
	return c.Type == bs.typ && c.Hooknum != nil && *c.Hooknum == *bs.hook &&
		c.Priority != nil && *c.Priority == *bs.prio &&
		(c.Policy == nil || *c.Policy == nftables.ChainPolicyAccept)
}

// setCompatible tells whether an existing set can be flushed and refilled
// rather than replaced. The library parses a verdict map's data type into
// KeyType, hence the two checks for the verdict maps.
func setCompatible(name string, s *nftables.Set) bool {
	if strings.HasPrefix(name, guardPrefix) {
		name = guardPrefix
	}
	switch name {
	case mapServices, mapGuarded:
		return s.IsMap && !s.Interval && !s.Concatenation &&
			(s.DataType.Name == "verdict" || s.KeyType.Name == "verdict")
	case setNoBackends, guardPrefix, setTrusted:
		return !s.IsMap && !s.Interval && !s.Concatenation && s.KeyType.Name == "ipv4_addr"
	}
	return false
}

// build queues, as one transaction, the changes that turn cur (nil: no
// table) into the table for svcs and ports.
//
// The table is updated in place rather than deleted and recreated. With a
// delete and recreate, the old and the new nat base chains are both hooked
// for a moment and the nat core evaluates them one after the other; the
// generation can switch in between, so that a new connection sees neither the
// old rules (deactivated) nor the new ones (not yet active) and leaves
// untranslated (measured: about one SYN in 300,000 during 1,000 replacements).
// In place, every base chain keeps its hook; its rules, the sets' elements and
// the changed service chains are replaced in the same commit, and a packet
// runs each base chain (with the chains it jumps to) against one generation.
// Service chains whose backends did not change are not touched, so their
// round robin counters go on.
func (b *builder) build(svcs []Service, ports []PortMap, guards []Guard, trusted []netip.Addr, cur *current) error {
	c, tb := b.c, b.table
	if cur == nil {
		c.AddTable(tb)
		b.msgs++
		cur = &current{}
	}

	// 1. Empty what is rewritten: base chains and ports (always), service
	// chains whose backends changed, the sets; drop base chains whose
	// hook changed and sets of another shape.
	want := make(map[string]bool)
	var svcChains []*nftables.Chain
	var svcBackends [][]netip.Addr
	var vmapElems, empty []nftables.SetElement
	for _, s := range svcs {
		if len(s.Backends) == 0 {
			empty = append(empty, nftables.SetElement{Key: s.IP.AsSlice()})
			continue
		}
		name := svcChainPrefix + s.IP.String()
		want[name] = true
		vmapElems = append(vmapElems, nftables.SetElement{
			Key:         s.IP.AsSlice(),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: name},
		})
		old, ok := cur.chains[name]
		if !ok || old.Hooknum != nil {
			continue // created below
		}
		if cur.backends != nil && slices.Equal(cur.backends[s.IP], s.Backends) {
			continue // unchanged: keep its rules and their counters
		}
		ch := &nftables.Chain{Name: name, Table: tb}
		c.FlushChain(ch)
		b.msgs++
		svcChains = append(svcChains, ch)
		svcBackends = append(svcBackends, s.Backends)
	}
	want[chainPorts] = true
	wantSet := map[string]bool{mapServices: true, setNoBackends: true, mapGuarded: true, setTrusted: true}
	for i := range guards {
		name := guardName(i)
		want[name], wantSet[name] = true, true
		if old, ok := cur.chains[name]; ok && old.Hooknum == nil {
			c.FlushChain(&nftables.Chain{Name: name, Table: tb})
			b.msgs++
		}
	}
	keptBase := make(map[string]bool)
	for _, bs := range baseChains {
		want[bs.name] = true
		if old, ok := cur.chains[bs.name]; ok && bs.matches(old) {
			c.FlushChain(&nftables.Chain{Name: bs.name, Table: tb})
			b.msgs++
			keptBase[bs.name] = true
		}
	}
	if old, ok := cur.chains[chainPorts]; ok && old.Hooknum == nil {
		c.FlushChain(&nftables.Chain{Name: chainPorts, Table: tb})
		b.msgs++
	}
	// Chains no longer wanted, or of the wrong kind, are emptied first (their
	// rules may refer to sets and chains that go too), and deleted once
	// nothing refers to them any more.
	var doomed []*nftables.Chain
	for name, old := range cur.chains {
		isBase := old.Hooknum != nil
		wantBase := false
		for _, bs := range baseChains {
			wantBase = wantBase || bs.name == name
		}
		if !want[name] || isBase != wantBase || (isBase && !keptBase[name]) {
			c.FlushChain(old)
			b.msgs++
			doomed = append(doomed, old)
			delete(cur.chains, name)
		}
	}
	keptSet := make(map[string]bool)
	for name, s := range cur.sets {
		if wantSet[name] && setCompatible(name, s) {
			c.FlushSet(s)
			keptSet[name] = true
		} else {
			c.DelSet(s)
		}
		b.msgs++
	}
	for _, ch := range doomed {
		c.DelChain(ch)
		b.msgs++
	}

	// 2. Create what is missing: regular chains first (the verdict map's
	// elements refer to them), then sets and elements, then rules.
	for _, s := range svcs {
		name := svcChainPrefix + s.IP.String()
		if len(s.Backends) == 0 {
			continue
		}
		if _, ok := cur.chains[name]; !ok {
			svcChains = append(svcChains, c.AddChain(&nftables.Chain{Name: name, Table: tb}))
			svcBackends = append(svcBackends, s.Backends)
			b.msgs++
		}
	}
	for i := range guards {
		if _, ok := cur.chains[guardName(i)]; !ok {
			c.AddChain(&nftables.Chain{Name: guardName(i), Table: tb})
			b.msgs++
		}
	}
	ports4 := &nftables.Chain{Name: chainPorts, Table: tb}
	if _, ok := cur.chains[chainPorts]; !ok {
		c.AddChain(ports4)
		b.msgs++
	}

	services := &nftables.Set{Table: tb, Name: mapServices, IsMap: true,
		KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	noBackends := &nftables.Set{Table: tb, Name: setNoBackends, KeyType: nftables.TypeIPAddr}
	guarded := &nftables.Set{Table: tb, Name: mapGuarded, IsMap: true,
		KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	sets := []struct {
		s     *nftables.Set
		elems []nftables.SetElement
	}{{services, vmapElems}, {noBackends, empty}, {guarded, guardedElems(guards)},
		{&nftables.Set{Table: tb, Name: setTrusted, KeyType: nftables.TypeIPAddr}, addrElems(trusted)}}
	for i, g := range guards {
		sets = append(sets, struct {
			s     *nftables.Set
			elems []nftables.SetElement
		}{&nftables.Set{Table: tb, Name: guardName(i), KeyType: nftables.TypeIPAddr}, addrElems(g.Sources)})
	}
	for _, set := range sets {
		var err error
		if keptSet[set.s.Name] {
			err = b.addElems(set.s, set.elems)
		} else {
			err = b.addSet(set.s, set.elems)
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", set.s.Name, err)
		}
	}

	for i, ch := range svcChains {
		b.serviceRules(ch, svcBackends[i])
	}
	for _, p := range ports {
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		b.rule(ports4,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(p.HostPort))},
			&expr.Immediate{Register: 1, Data: p.IP.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(uint16(p.Port))},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
		)
	}

	base := make(map[string]*nftables.Chain)
	for _, bs := range baseChains {
		if keptBase[bs.name] {
			base[bs.name] = &nftables.Chain{Name: bs.name, Table: tb}
			continue
		}
		accept := nftables.ChainPolicyAccept
		base[bs.name] = c.AddChain(&nftables.Chain{Name: bs.name, Table: tb,
			Type: bs.typ, Hooknum: bs.hook, Priority: bs.prio, Policy: &accept})
		b.msgs++
	}

	// nat prerouting and output: services, then published ports.
	vmap := func() []expr.Any {
		return []expr.Any{
			loadDaddr(),
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: services.Name},
		}
	}
	fibLocal := func() []expr.Any {
		return []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPorts},
		}
	}
	pre, out := base[chainPrerouting], base[chainOutput]
	b.rule(pre, vmap()...)
	if len(ports) > 0 {
		b.rule(pre, fibLocal()...)
	}
	b.rule(out, vmap()...)
	if len(ports) > 0 {
		// 127.0.0.0/8 is left alone: DNAT of a loopback source to an
		// instance needs route_localnet and a masquerade.
		b.rule(out, append(matchPrefix(loadDaddr(), loopbackNet, expr.CmpOpNeq), fibLocal()...)...)
	}

	// nat postrouting: hairpin and outbound masquerade.
	post := base[chainPostrouting]
	if b.cfg.LocalNet.IsValid() {
		var e []expr.Any
		e = append(e,
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		)
		e = append(e, matchPrefix(loadSaddr(), b.cfg.LocalNet, expr.CmpOpEq)...)
		e = append(e, matchPrefix(loadDaddr(), b.cfg.LocalNet, expr.CmpOpEq)...)
		b.rule(post, append(e, &expr.Masq{})...)
	}
	if b.cfg.InstanceNet.IsValid() {
		var e []expr.Any
		e = append(e, matchPrefix(loadSaddr(), b.cfg.InstanceNet, expr.CmpOpEq)...)
		e = append(e, matchPrefix(loadDaddr(), b.cfg.InstanceNet, expr.CmpOpNeq)...)
		e = append(e, matchPrefix(loadDaddr(), b.cfg.ServiceNet, expr.CmpOpNeq)...)
		b.rule(post, append(e, &expr.Masq{})...)
	}

	// filter forward and output: refuse what no service translated. The
	// refusals (and the guards below) concern new connections: packets of
	// established ones, the bulk of the traffic, are accepted by the first
	// rule and pass no other (a connection to an untranslated service IP
	// is refused at its first packet, so never becomes established).
	for _, ch := range []*nftables.Chain{base[chainFwdFilter], base[chainOutFilter]} {
		b.rule(ch, append(ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
			&expr.Verdict{Kind: expr.VerdictAccept})...)
		inSet := func() []expr.Any {
			return []expr.Any{loadDaddr(), &expr.Lookup{SourceRegister: 1, SetName: noBackends.Name}}
		}
		inNet := func() []expr.Any { return matchPrefix(loadDaddr(), b.cfg.ServiceNet, expr.CmpOpEq) }
		for _, match := range []func() []expr.Any{inSet, inNet} {
			b.rule(ch, append(match(),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
			)...)
			b.rule(ch, append(match(),
				&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreach},
			)...)
		}
	}

	// filter prerouting and forward: tenant isolation (see Guard). In
	// prerouting, before the DNAT, on service IPs: a refusal there answers
	// from the service IP the client asked for (a TCP reset sent after the
	// DNAT would come from the backend's address, which the client ignores).
	// In forward, after the DNAT, on instance addresses.
	for _, ch := range []string{chainPreFilter, chainFwdFilter} {
		if len(guards) == 0 {
			break
		}
		e := ctStateIn(expr.CtStateBitNEW)
		if b.cfg.InstanceNet.IsValid() {
			e = append(e, matchPrefix(loadSaddr(), b.cfg.InstanceNet, expr.CmpOpEq)...)
		}
		b.rule(base[ch], append(e,
			loadDaddr(),
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: guarded.Name},
		)...)
	}
	for i := range guards {
		ch := &nftables.Chain{Name: guardName(i), Table: tb}
		for _, set := range []string{guardName(i), setTrusted} {
			b.rule(ch, loadSaddr(), &expr.Lookup{SourceRegister: 1, SetName: set},
				&expr.Verdict{Kind: expr.VerdictReturn})
		}
		b.rule(ch,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		b.rule(ch, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPktFiltered})
	}
	return nil
}

// addrElems are set elements of addresses.
func addrElems(as []netip.Addr) []nftables.SetElement {
	out := make([]nftables.SetElement, len(as))
	for i, a := range as {
		out[i] = nftables.SetElement{Key: a.AsSlice()}
	}
	return out
}

// guardName names guard i's chain and the set of its sources.
func guardName(i int) string { return guardPrefix + strconv.Itoa(i+1) }

// guardedElems are the elements of @guarded: each guarded address → jump
// to its guard's chain.
func guardedElems(guards []Guard) []nftables.SetElement {
	var out []nftables.SetElement
	for i, g := range guards {
		for _, d := range g.Dests {
			out = append(out, nftables.SetElement{Key: d.AsSlice(),
				VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: guardName(i)}})
		}
	}
	return out
}

// serviceRules fills the chain of a service with N rules that pick its N
// backends round robin, one per new connection:
//
//	numgen inc mod N == 0 dnat to b0
//	numgen inc mod N-1 == 0 dnat to b1
//	...
//	dnat to bN-1
//
// Each numgen has its own counter, advanced only by the connections that
// reach its rule: rule 0 takes every N-th connection, rule 1 every (N-1)-th of
// the rest, and so on, so the cycle is exactly b0, b1, ..., bN-1 (the scheme of
// kube-proxy's iptables "statistic --mode nth" rules). No set is involved: a
// map shared by all services (dnat to ip daddr . numgen map @m) costs the
// kernel a walk over every element for every rule bound to it, and anonymous
// per-service maps are looked up by ID through the whole transaction; both
// are quadratic in the number of services. Evaluating up to N rules happens
// once per connection (nat chains see only a connection's first packet).
func (b *builder) serviceRules(ch *nftables.Chain, backends []netip.Addr) {
	n := len(backends)
	for i, be := range backends {
		var e []expr.Any
		if left := n - i; left > 1 {
			e = append(e,
				&expr.Numgen{Register: 1, Modulus: uint32(left), Type: unix.NFT_NG_INCREMENTAL},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			)
		}
		b.rule(ch, append(e,
			&expr.Immediate{Register: 1, Data: be.AsSlice()},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		)...)
	}
}

// addSet adds set s with elems, in messages of at most maxElemsPerMsg
// elements: the element list is one netlink attribute, whose length is 16 bits.
func (b *builder) addSet(s *nftables.Set, elems []nftables.SetElement) error {
	first := elems[:min(len(elems), maxElemsPerMsg)]
	b.elems += len(first)
	if err := b.c.AddSet(s, first); err != nil {
		return err
	}
	b.msgs += 2
	return b.addElems(s, elems[len(first):])
}

// addElems adds elems to s in messages of at most maxElemsPerMsg elements.
func (b *builder) addElems(s *nftables.Set, elems []nftables.SetElement) error {
	b.elems += len(elems)
	for len(elems) > 0 {
		n := min(len(elems), maxElemsPerMsg)
		if err := b.c.SetAddElements(s, elems[:n]); err != nil {
			return err
		}
		b.msgs++
		elems = elems[n:]
	}
	return nil
}

func (b *builder) rule(ch *nftables.Chain, e ...expr.Any) {
	b.c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: e})
	b.msgs++
}

// ctStateIn matches packets whose conntrack state is one of bits
// (ct state { ... }).
func ctStateIn(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func loadDaddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

func loadSaddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

// matchPrefix compares the address loaded into register 1 by load with p.
func matchPrefix(load expr.Any, p netip.Prefix, op expr.CmpOp) []expr.Any {
	e := []expr.Any{load}
	if p.Bits() < 32 {
		m := make([]byte, 4)
		for i := 0; i < p.Bits(); i++ {
			m[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)})
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()})
}

// sockBuffers returns a socket option that sizes the netlink socket's buffers
// for the batch queued by b: the whole batch goes out in one sendmsg, which
// must fit the send buffer (about 200 bytes a message, 64 an element, counted
// with margin), and the kernel queues one ack per message, which must fit the
// receive buffer (an ack takes about 1 KiB of it). Needs CAP_NET_ADMIN: the
// *FORCE options ignore net.core.[wr]mem_max.
func sockBuffers(b *builder) nftables.SockOption {
	return func(c *netlink.Conn) error {
		snd := b.msgs*512 + b.elems*128
		rcv := b.msgs * 1024
		if snd < 128<<10 && rcv < 128<<10 {
			return nil // the defaults are plenty
		}
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, max(snd, 128<<10)); e != nil {
				serr = fmt.Errorf("SO_SNDBUFFORCE: %w", e)
				return
			}
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, max(rcv, 128<<10)); e != nil {
				serr = fmt.Errorf("SO_RCVBUFFORCE: %w", e)
			}
		}); err != nil {
			return err
		}
		return serr
	}
}
