package probe

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/netcoord"
)

// relay stands for node j's link: probes to node j go to its public
// socket and reach j's prober after the one-way delay of the pair (the
// sender's link and j's), from a socket of the relay's own per sender, so
// that j's answer comes back the same way and leaves from j's public
// address. The kernel here has no sch_netem, so delays are made in
// process (as testharness.Delay makes them with NFQUEUE in the e2e test).
type relay struct {
	pub    *net.UDPConn
	target netip.AddrPort
	delay  func(from netip.AddrPort) time.Duration

	mu   sync.Mutex
	up   map[netip.AddrPort]*net.UDPConn
	done chan struct{}
}

func newRelay(target netip.AddrPort, delay func(netip.AddrPort) time.Duration) (*relay, error) {
	pub, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r := &relay{pub: pub, target: target, delay: delay, up: map[netip.AddrPort]*net.UDPConn{}, done: make(chan struct{})}
	go r.forward()
	return r, nil
}

func (r *relay) port() int { return r.pub.LocalAddr().(*net.UDPAddr).Port }

func (r *relay) forward() {
	buf := make([]byte, 2*packetSize)
	for {
		n, from, err := r.pub.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := slices.Clone(buf[:n])
		up, err := r.upstream(from)
		if err != nil {
			continue
		}
		time.AfterFunc(r.delay(from), func() { _, _ = up.WriteToUDPAddrPort(msg, r.target) })
	}
}

// upstream is the relay's socket towards the target for one sender; what
// the target answers on it goes back to that sender after the delay.
func (r *relay) upstream(from netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.up[from]; ok {
		return c, nil
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r.up[from] = c
	go func() {
		buf := make([]byte, 2*packetSize)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			msg := slices.Clone(buf[:n])
			time.AfterFunc(r.delay(from), func() { _, _ = r.pub.WriteToUDPAddrPort(msg, from) })
		}
	}()
	return c, nil
}

func (r *relay) close() {
	r.pub.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.up {
		c.Close()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCoordinates measures the network coordinates of a fleet of
// probers whose links have different delays: 16 nodes on four "sites"
// whose links add 0.5, 5, 15 and 40 ms one way (round trips of 2 to
// 160 ms between nodes), each probing up to DefaultMaxPeers peers every
// 500 ms (six times the default rate, so that a run converges in its 40
// s), through in-process relays that add the delays. Reported: the error of
// the estimated round trip of every pair against the configured one at the
// end (median and 90th percentile, in ms and relative), and the cost per
// node: packets per second (probes sent and answers served) at this rate
// and at the default interval, and CPU (of this process, relays included,
// so an upper bound). It runs for THICKET_BENCH_COORD_SECONDS (skipped
// without it: make bench-go runs every package's benchmarks).
func BenchmarkCoordinates(b *testing.B) {
	const nodes, interval = 16, 500 * time.Millisecond
	var secs int
	if _, err := fmt.Sscan(os.Getenv("THICKET_BENCH_COORD_SECONDS"), &secs); err != nil || secs <= 0 {
		b.Skip("a run of tens of seconds: thicket-bench runs it (section 10) with THICKET_BENCH_COORD_SECONDS set")
	}
	run := time.Duration(secs) * time.Second
	siteDelay := []time.Duration{500 * time.Microsecond, 5 * time.Millisecond, 15 * time.Millisecond, 40 * time.Millisecond}
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		probers := make([]*Prober, nodes)
		delay := make([]time.Duration, nodes)
		byPort := map[uint16]int{}
		var wg sync.WaitGroup
		for i := range probers {
			p, err := New(Config{Listen: "127.0.0.1:0", Interval: interval}, quiet)
			if err != nil {
				b.Fatal(err)
			}
			probers[i], delay[i] = p, siteDelay[i%len(siteDelay)]
			byPort[uint16(p.Port())] = i
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.Run(ctx) }()
		}
		relays := make([]*relay, nodes)
		for j := range relays {
			target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(probers[j].Port()))
			r, err := newRelay(target, func(from netip.AddrPort) time.Duration {
				return delay[byPort[from.Port()]] + delay[j]
			})
			if err != nil {
				b.Fatal(err)
			}
			relays[j] = r
		}
		for i, p := range probers {
			var peers []wire.NodeNetwork
			for j, r := range relays {
				if j != i {
					peers = append(peers, wire.NodeNetwork{NodeID: fmt.Sprint(j), ClusterID: "c1", PublicIP: "127.0.0.1", ProbePort: r.port()})
				}
			}
			p.SetPeers(peers, "c1")
		}
		cpu0, t0 := cpuTime(), time.Now()
		time.Sleep(run)
		cpu, elapsed := cpuTime()-cpu0, time.Since(t0)

		var abs, rel []float64
		for i := range probers {
			for j := i + 1; j < nodes; j++ {
				want := 2 * (delay[i] + delay[j])
				got, ok := netcoord.Estimate(probers[i].Coordinate(), probers[j].Coordinate())
				if !ok {
					b.Fatalf("nodes %d and %d have no coordinates after %s", i, j, run)
				}
				e := math.Abs(float64(got - want))
				abs = append(abs, e/float64(time.Millisecond))
				rel = append(rel, e/float64(want))
			}
		}
		var packets uint64
		for _, p := range probers {
			st := p.Stats()
			packets += st.Sent + st.Served
		}
		cancel()
		wg.Wait()
		for _, r := range relays {
			r.close()
		}
		slices.Sort(abs)
		slices.Sort(rel)
		pps := float64(packets) / elapsed.Seconds() / nodes
		b.ReportMetric(abs[len(abs)/2], "err-ms-median")
		b.ReportMetric(abs[len(abs)*9/10], "err-ms-p90")
		b.ReportMetric(100*rel[len(rel)/2], "err-%-median")
		b.ReportMetric(100*rel[len(rel)*9/10], "err-%-p90")
		b.ReportMetric(pps, "packets/s/node")
		b.ReportMetric(pps*interval.Seconds()/DefaultInterval.Seconds(), "packets/s/node-default")
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds()/nodes, "cpu-%/node")
	}
}
