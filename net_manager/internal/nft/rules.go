package nft

import (
	"fmt"
	"net/netip"

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
	chainPorts       = "ports"
	svcChainPrefix   = "svc-"
	mapServices      = "services"
	mapBackends      = "backends"
	setNoBackends    = "no_backends"
)

// Kernel constants not exported by x/sys/unix.
const (
	ipsDstNAT       = 1 << 5 // IPS_DST_NAT, conntrack status bit
	icmpPortUnreach = 3      // ICMP_PORT_UNREACH
)

// maxElemsPerMsg bounds the elements per netlink message (about 60 bytes
// each; the element list attribute holds at most 64 KiB).
const maxElemsPerMsg = 512

var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// builder queues the messages of one table replacement on a Conn.
type builder struct {
	cfg   *Config
	c     *nftables.Conn
	table *nftables.Table
	msgs  int // number of queued netlink messages, to size socket buffers
}

func (b *builder) build(svcs []Service, ports []PortMap) error {
	c, tb := b.c, b.table
	// add (no-op if present) + delete + add: one transaction that works
	// whether or not the table exists, and never exposes a partial table.
	c.AddTable(tb)
	c.DelTable(tb)
	c.AddTable(tb)
	b.msgs += 3

	// Regular chains first: the verdict map's elements refer to them.
	type svcChain struct {
		ch *nftables.Chain
		n  int
	}
	var svcChains []svcChain
	var vmapElems, beElems, empty []nftables.SetElement
	for _, s := range svcs {
		if len(s.Backends) == 0 {
			empty = append(empty, nftables.SetElement{Key: s.IP.AsSlice()})
			continue
		}
		name := svcChainPrefix + s.IP.String()
		svcChains = append(svcChains, svcChain{c.AddChain(&nftables.Chain{Name: name, Table: tb}), len(s.Backends)})
		b.msgs++
		for i, be := range s.Backends {
			// numgen writes a host-endian u32 right after the address.
			key := append(s.IP.AsSlice(), binaryutil.NativeEndian.PutUint32(uint32(i))...)
			beElems = append(beElems, nftables.SetElement{Key: key, Val: be.AsSlice()})
		}
		vmapElems = append(vmapElems, nftables.SetElement{
			Key:         s.IP.AsSlice(),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: name},
		})
	}
	ports4 := c.AddChain(&nftables.Chain{Name: chainPorts, Table: tb})
	b.msgs++
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

	// Named sets, referenced by name (a lookup by set ID would scan the
	// whole transaction, quadratic in the number of services). The key type
	// "ipv4_addr . mark" stands for "ip daddr . numgen": nft cannot list a
	// concatenation with a plain integer unless the set carries "typeof"
	// metadata, which the library cannot write; mark is the 4-byte
	// host-endian type that nft prints as a number.
	services := &nftables.Set{Table: tb, Name: mapServices, IsMap: true,
		KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	backends := &nftables.Set{Table: tb, Name: mapBackends, IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeMark),
		DataType: nftables.TypeIPAddr, KeyByteOrder: binaryutil.NativeEndian}
	noBackends := &nftables.Set{Table: tb, Name: setNoBackends, KeyType: nftables.TypeIPAddr}
	for _, set := range []struct {
		s     *nftables.Set
		elems []nftables.SetElement
	}{{services, vmapElems}, {backends, beElems}, {noBackends, empty}} {
		if err := b.addSet(set.s, set.elems); err != nil {
			return fmt.Errorf("set %s: %w", set.s.Name, err)
		}
	}
	for _, sc := range svcChains {
		// dnat to ip daddr . numgen inc mod N map @backends
		b.rule(sc.ch,
			loadDaddr(),
			&expr.Numgen{Register: unix.NFT_REG32_01, Modulus: uint32(sc.n), Type: unix.NFT_NG_INCREMENTAL},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: backends.Name},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		)
	}

	// nat prerouting and output: services, then published ports.
	vmap := []expr.Any{
		loadDaddr(),
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: services.Name},
	}
	fibLocal := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPorts},
	}
	pre := b.baseChain(chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	b.rule(pre, vmap...)
	if len(ports) > 0 {
		b.rule(pre, fibLocal...)
	}
	out := b.baseChain(chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	b.rule(out, vmap...)
	if len(ports) > 0 {
		// 127.0.0.0/8 is left alone: DNAT of a loopback source to an
		// instance needs route_localnet and a masquerade.
		b.rule(out, append(matchPrefix(loadDaddr(), loopbackNet, expr.CmpOpNeq), fibLocal...)...)
	}

	// nat postrouting: hairpin and outbound masquerade.
	post := b.baseChain(chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
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

	// filter forward and output: refuse what no service translated.
	for _, ch := range []*nftables.Chain{
		b.baseChain(chainFwdFilter, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter),
		b.baseChain(chainOutFilter, nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityFilter),
	} {
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
	return nil
}

// addSet adds set s with elems, in messages of at most maxElemsPerMsg
// elements: the element list is one netlink attribute, whose length is 16 bits.
func (b *builder) addSet(s *nftables.Set, elems []nftables.SetElement) error {
	first := elems[:min(len(elems), maxElemsPerMsg)]
	if err := b.c.AddSet(s, first); err != nil {
		return err
	}
	b.msgs += 2
	for rest := elems[len(first):]; len(rest) > 0; {
		n := min(len(rest), maxElemsPerMsg)
		if err := b.c.SetAddElements(s, rest[:n]); err != nil {
			return err
		}
		b.msgs++
		rest = rest[n:]
	}
	return nil
}

func (b *builder) baseChain(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	b.msgs++
	return b.c.AddChain(&nftables.Chain{Name: name, Table: b.table, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
}

func (b *builder) rule(ch *nftables.Chain, e ...expr.Any) {
	b.c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: e})
	b.msgs++
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
// for a batch of *n messages: the whole batch goes out in one sendmsg, which
// must fit the send buffer, and the kernel queues one ack per message, which
// must fit the receive buffer. Needs CAP_NET_ADMIN (the *FORCE variants ignore
// net.core.[wr]mem_max).
func sockBuffers(n *int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		if *n < 256 {
			return nil // the defaults are plenty
		}
		snd := *n * 512
		rcv := *n * 1024
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, snd); e != nil {
				serr = fmt.Errorf("SO_SNDBUFFORCE: %w", e)
				return
			}
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcv); e != nil {
				serr = fmt.Errorf("SO_RCVBUFFORCE: %w", e)
			}
		}); err != nil {
			return err
		}
		return serr
	}
}
