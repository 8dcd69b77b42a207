package engine

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestGatewayOf(t *testing.T) {
	for _, tc := range []struct {
		subnet, want string
	}{
		{"10.64.3.0/24", "10.64.3.1"},
		{"10.64.3.7/24", "10.64.3.1"},
		{"10.64.0.0/20", "10.64.0.1"},
		{"", ""},
		{"fd00::/64", ""},
		{"bogus", ""},
	} {
		got, ok := gatewayOf(tc.subnet)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("gatewayOf(%q) = %v %v, want %q", tc.subnet, got, ok, tc.want)
		}
	}
}

// TestJobSource: the job endpoint finds an instance by its address and
// answers its own jobs only; a change of any job file wakes long polls;
// an address two keys claim answers nothing.
func TestJobSource(t *testing.T) {
	e := newTestEngine(Config{DataDir: t.TempDir(), JobsPort: 10180}, newFakeRuntime("container"))
	src := jobSource{e}
	e.mu.Lock()
	e.ips["s.0"], e.ips["s.1"], e.ips["plain"] = "10.64.3.2", "10.64.3.3", "10.64.3.4"
	e.setJobs("s.0", JobFile{Version: 3, Jobs: []string{"a", "c"}})
	e.setJobs("s.1", JobFile{Version: 3, Jobs: []string{"b"}})
	e.mu.Unlock()

	for addr, want := range map[string][]string{"10.64.3.2": {"a", "c"}, "10.64.3.3": {"b"}} {
		d, _, ok := src.Jobs(netip.MustParseAddr(addr))
		if !ok || !slices.Equal(d.Jobs, want) || d.Version != 3 {
			t.Errorf("%s: %+v %v, want %v", addr, d, ok, want)
		}
	}
	for _, addr := range []string{"10.64.3.4", "10.64.3.9"} { // no grant; nobody
		if d, _, ok := src.Jobs(netip.MustParseAddr(addr)); ok {
			t.Errorf("%s answered %+v", addr, d)
		}
	}

	_, changed, _ := src.Jobs(netip.MustParseAddr("10.64.3.2"))
	e.mu.Lock()
	e.setJobs("s.1", JobFile{Version: 4, Jobs: []string{"b", "c"}})
	e.mu.Unlock()
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("a new job file did not wake the long polls")
	}

	e.mu.Lock()
	e.ips["s.9"] = "10.64.3.3" // attached before s.1's address was forgotten
	e.mu.Unlock()
	if d, _, ok := src.Jobs(netip.MustParseAddr("10.64.3.3")); ok {
		t.Errorf("an address two instances claim answered %+v", d)
	}

	// The URL instances get: the gateway of the node's subnet.
	e.mu.Lock()
	e.subnet = "10.64.3.0/24"
	none := e.jobsURL()
	e.mu.Unlock()
	if none != "" {
		t.Errorf("without a net manager the URL is %q, want none", none)
	}
}
