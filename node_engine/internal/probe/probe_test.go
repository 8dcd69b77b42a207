package probe

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/netcoord"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T, cfg Config) *Prober {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func peerAt(id, cluster string, port int) wire.NodeNetwork {
	return wire.NodeNetwork{NodeID: id, ClusterID: cluster, PublicIP: "127.0.0.1", ProbePort: port}
}

// fakePeer answers probes after delay with a fixed coordinate; from, when
// set, sends the answer from another socket first (which must be ignored).
func fakePeer(t *testing.T, delay time.Duration, coord *wire.Coordinate, spoof bool) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); other.Close() })
	go func() {
		buf := make([]byte, 2*packetSize)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pk, err := unmarshal(buf[:n])
			if err != nil || pk.kind != kindProbe {
				continue
			}
			ans := (&packet{kind: kindAnswer, nonce: pk.nonce, coord: coord}).marshal()
			if spoof { // the right nonce at once, but from another address
				_, _ = other.WriteToUDPAddrPort(ans, from)
			}
			time.Sleep(delay)
			_, _ = conn.WriteToUDPAddrPort(ans, from)
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// TestConvergesToMeasuredDelay: a peer that answers after 30 ms is
// estimated at about 30 ms; a spoofed early answer from another address
// changes nothing.
func TestConvergesToMeasuredDelay(t *testing.T) {
	for _, spoof := range []bool{false, true} {
		peerCoord := &wire.Coordinate{Vec: make([]float64, wire.MaxCoordinateDims), Height: 10e-6}
		port := fakePeer(t, 30*time.Millisecond, peerCoord, spoof)
		p := start(t, Config{Interval: 40 * time.Millisecond})
		if p.Coordinate() != nil {
			t.Fatal("coordinate before any measurement")
		}
		p.SetPeers([]wire.NodeNetwork{peerAt("far", "c1", port)}, "c1")
		deadline := time.Now().Add(10 * time.Second)
		var est time.Duration
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			if d, ok := netcoord.Estimate(p.Coordinate(), peerCoord); ok && p.Stats().Answered >= 20 {
				if est = d; math.Abs(float64(d-30*time.Millisecond)) < float64(6*time.Millisecond) {
					break
				}
			}
		}
		if math.Abs(float64(est-30*time.Millisecond)) >= float64(6*time.Millisecond) {
			t.Fatalf("spoof %v: estimate %v after %+v, want 30ms ± 6ms", spoof, est, p.Stats())
		}
	}
}

// TestTwoProbers: two real probers measure each other over loopback.
func TestTwoProbers(t *testing.T) {
	a := start(t, Config{Interval: 20 * time.Millisecond})
	b := start(t, Config{Interval: 20 * time.Millisecond})
	a.SetPeers([]wire.NodeNetwork{peerAt("b", "c1", b.Port()), {NodeID: "nope", PublicIP: "127.0.0.1"}}, "c1")
	b.SetPeers([]wire.NodeNetwork{peerAt("a", "c1", a.Port())}, "c1")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (a.Coordinate() == nil || b.Coordinate() == nil) {
		time.Sleep(50 * time.Millisecond)
	}
	d, ok := netcoord.Estimate(a.Coordinate(), b.Coordinate())
	if !ok || d > 5*time.Millisecond {
		t.Fatalf("loopback estimate %v (ok %v), stats a %+v b %+v", d, ok, a.Stats(), b.Stats())
	}
	if s := a.Stats(); s.Served == 0 || s.Sent == 0 {
		t.Fatalf("stats %+v: want probes sent and answered", s)
	}
}

// TestPeerChoice: bounded, the cluster's nodes first, stable.
func TestPeerChoice(t *testing.T) {
	p := start(t, Config{Interval: time.Hour, MaxPeers: 4})
	var peers []wire.NodeNetwork
	for i := range 6 {
		peers = append(peers, peerAt("l"+string(rune('0'+i)), "mine", 1000+i), peerAt("r"+string(rune('0'+i)), "other", 2000+i))
	}
	peers = append(peers, wire.NodeNetwork{NodeID: "noport", ClusterID: "mine", PublicIP: "127.0.0.1"},
		wire.NodeNetwork{NodeID: "noip", ClusterID: "mine", ProbePort: 1})
	p.SetPeers(peers, "mine")
	count := map[string]int{}
	first := map[string]bool{}
	for _, tg := range p.peers {
		count[tg.cluster]++
		first[tg.id] = true
	}
	if len(p.peers) != 4 || count["mine"] != 2 || count["other"] != 2 {
		t.Fatalf("chose %+v, want 2 of mine and 2 others", p.peers)
	}
	p.SetPeers(peers, "mine")
	for _, tg := range p.peers {
		if !first[tg.id] {
			t.Fatalf("the choice changed with the same peers: %+v", p.peers)
		}
	}
	p.SetPeers(peers[:2], "mine")
	if len(p.peers) != 2 {
		t.Fatalf("chose %+v from 2 peers", p.peers)
	}
}

// TestAnswerRate: a flood of probes gets at most about answerRate answers.
func TestAnswerRate(t *testing.T) {
	p := start(t, Config{Interval: time.Hour})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.Port()))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	probe := (&packet{kind: kindProbe}).marshal()
	for range 300 {
		if _, err := c.Write(probe); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Write([]byte("garbage"))
	time.Sleep(300 * time.Millisecond)
	s := p.Stats()
	if s.Served > answerRate+20 || s.Dropped == 0 {
		t.Fatalf("stats %+v: want at most about %d answers and the rest dropped", s, answerRate)
	}
}

func TestPacket(t *testing.T) {
	c := &wire.Coordinate{Vec: []float64{0.001, 0.002}, Error: 0.5, Adjustment: -0.001, Height: 0.0001}
	pk := packet{kind: kindAnswer, nonce: [nonceSize]byte{1, 2, 3}, coord: c}
	got, err := unmarshal(pk.marshal())
	if err != nil || got.nonce != pk.nonce || !wire.SameCoordinate(got.coord, c) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	b := pk.marshal()
	for name, bad := range map[string][]byte{
		"short":   b[:packetSize-1],
		"magic":   append([]byte("XXXX"), b[4:]...),
		"version": append(append([]byte{}, b[:4]...), append([]byte{9}, b[5:]...)...),
		"dims":    append(append([]byte{}, b[:6]...), append([]byte{9}, b[7:]...)...),
		"bad coord": func() []byte {
			x := append([]byte{}, b...)
			copy(x[40:], []byte{0xff, 0xf0, 0, 0, 0, 0, 0, 0})
			return x
		}(),
	} {
		if _, err := unmarshal(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestWantedEstimates: a wanted peer is probed even when the random choice
// leaves it out, and its round trip is estimated.
func TestWantedEstimates(t *testing.T) {
	// far sits 30 ms from the origin, where the idle prober other stays.
	peerCoord := &wire.Coordinate{Vec: make([]float64, wire.MaxCoordinateDims), Height: 10e-6}
	peerCoord.Vec[0] = 0.030
	far := fakePeer(t, 30*time.Millisecond, peerCoord, false)
	other := start(t, Config{Interval: time.Hour})
	p := start(t, Config{Interval: 100 * time.Millisecond, MaxPeers: 1})
	p.SetPeers([]wire.NodeNetwork{peerAt("far", "c2", far), peerAt("other", "c1", other.Port())}, "c1")
	p.SetWanted([]string{"far", "unknown"})
	if got := p.Estimates([]string{"far"}); len(got) != 0 {
		t.Fatalf("estimates before any measurement: %v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	var est time.Duration
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if e, ok := p.Estimates([]string{"far", "unknown"})["far"]; ok {
			if est = e; math.Abs(float64(e-30*time.Millisecond)) < float64(6*time.Millisecond) {
				break
			}
		}
	}
	if math.Abs(float64(est-30*time.Millisecond)) >= float64(6*time.Millisecond) {
		t.Fatalf("estimate to the wanted peer %v, want 30ms ± 6ms (%+v)", est, p.Stats())
	}
}
