package nft

import (
	"net/netip"
	"testing"
	"time"
)

func TestExpHairpinWithoutLocalNet(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(Config{InstanceNet: netip.MustParsePrefix("10.64.0.0/16")})
	must(t, "Apply", tb.Apply([]Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}, nil))
	start := time.Now()
	srv, cl, err := get(tp.inst[3], svcIP+":8080")
	t.Logf("without LocalNet: %q %q %v after %v", srv, cl, err, time.Since(start))
}

func TestExpBig(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	for _, n := range []int{5000, 10000} {
		start := time.Now()
		err := tb.Apply(bigInput(n, 3), nil)
		t.Logf("%d services: %v in %v", n, err, time.Since(start))
	}
}
