package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// rttErrorOK is the error this suite accepts of an estimate: 5 ms plus 20%
// of the configured round trip.
func rttErrorOK(est, want float64) bool { return math.Abs(est-want) <= 5+0.2*want }

// TestLatencyPlacement: nodes whose probe packets leave with delays of 1,
// 2, 25 and 75 ms (testharness.Delay: this kernel has no tc netem; the
// round trip between two nodes is the sum of their delays) measure each
// other (every 300 ms here); their coordinates estimate the
// configured round trips within 5 ms + 20%; a service that must be within
// 20 ms of node a lands only on a and b; when the delays move (b far, c
// near) new placements follow; a closest_ip goes to the backend on the
// node nearest to the client's, and follows when the delays swap.
func TestLatencyPlacement(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("lat", "")
	delays := map[string]int{"a": 1, "b": 2, "c": 25, "d": 75}
	hosts := []string{"a", "b", "c", "d"}
	links := map[string]*testharness.Delay{}
	for i, h := range hosts {
		n := s.startNodeWith(c, h, 141+i, 1024, "--probe-interval", "300ms")
		d, err := testharness.StartDelay(n.ns, uint16(141+i), 51822, time.Duration(delays[h])*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		links[h] = d
	}
	s.waitNodes(map[string]int{"lat": 4})

	rtt := func(from, to string) (float64, error) {
		var est api.RTT
		q := url.Values{"from": {"node:" + s.nodes[from].name}, "to": {"node:" + s.nodes[to].name}}
		code, body := s.api.do("GET", "/api/rtt?"+q.Encode(), nil)
		if code != http.StatusOK {
			return 0, fmt.Errorf("%d %s", code, body)
		}
		if err := json.Unmarshal(body, &est); err != nil {
			return 0, err
		}
		return est.RTTMS, nil
	}
	converged := func(what string) {
		start := time.Now()
		testharness.WaitFor(t, 3*time.Minute, what, func() (bool, string) {
			var off []string
			for i, a := range hosts {
				for _, b := range hosts[i+1:] {
					want := float64(delays[a] + delays[b])
					est, err := rtt(a, b)
					if err != nil || !rttErrorOK(est, want) {
						off = append(off, fmt.Sprintf("%s-%s %.1f ms (want %.0f, %v)", a, b, est, want, err))
					}
				}
			}
			return len(off) == 0, strings.Join(off, "; ")
		})
		t.Logf("%s after %v", what, time.Since(start).Round(time.Second))
	}
	converged("coordinates within 5 ms + 20% of the configured round trips")

	// Within 20 ms of node a: a (0 ms) and b (3 ms), two instances each
	// (1024 MB, 400 MB apiece); c (26 ms) and d (76 ms) never.
	near := map[string]any{"type": "latency", "node": s.nodes["a"].name, "threshold": 20}
	ids := s.app("nearA", map[string]any{"microservice_name": "probe", "memory": 400, "constraints": []any{near}})
	placed := func(n int) string {
		in := s.api.waitInstance(ids["probe"], n, time.Minute, "placed", func(in api.Instance) bool {
			return in.NodeName != "" || strings.Contains(in.StatusDetail, "latency constraint")
		})
		for h, nd := range s.nodes {
			if nd.name == in.NodeName {
				return h
			}
		}
		return in.Status + ": " + in.StatusDetail
	}
	var got []string
	var nums []int
	for range 4 {
		n := s.scaleUp(ids["probe"])
		nums = append(nums, n)
		got = append(got, placed(n))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "a", "b", "b"}) {
		t.Fatalf("instances within 20 ms of a placed on %v, want a, a, b, b", got)
	}
	fifth := s.scaleUp(ids["probe"])
	nums = append(nums, fifth)
	if fifth := placed(fifth); !strings.Contains(fifth, "more than 20 ms from node "+s.nodes["a"].name+" (latency constraint 1") {
		t.Errorf("a fifth instance: %s; want no capacity naming the latency constraint", fifth)
	}
	for _, n := range nums {
		s.api.must("DELETE", fmt.Sprintf("/api/service/%s/instance/%d", ids["probe"], n), nil, nil)
	}

	// The delays move: b goes far, c comes near.
	delays["b"], delays["c"] = 60, 2
	links["b"].Set(60 * time.Millisecond)
	links["c"].Set(2 * time.Millisecond)
	converged("coordinates follow the moved delays")
	got = nil
	for range 4 {
		got = append(got, placed(s.scaleUp(ids["probe"])))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "a", "c", "c"}) {
		t.Fatalf("after the move, instances within 20 ms of a placed on %v, want a, a, c, c", got)
	}

	// closest_ip by measurement: one server on b (61 ms from a), one on c
	// (3 ms); node a's requests to the closest IP go to c's, then, when the
	// delays swap, to b's.
	s.api.must("DELETE", "/api/application/"+ids["app"], nil, nil)
	srv := s.app("nearest", map[string]any{"microservice_name": "srv", "memory": 600, // one per node
		"addresses":   map[string]string{"closest_ip": "10.30.99.99"},
		"constraints": pin("lat", s.nodes["b"].name+";"+s.nodes["c"].name)})["srv"]
	instanceOn := map[string]string{}
	for range 2 {
		n := s.scaleUp(srv)
		in := s.runningOn(srv, n)
		for h, nd := range s.nodes {
			if nd.name == in.NodeName {
				instanceOn[h] = strings.ReplaceAll(fmt.Sprintf("%s.%d", srv, n), ".", "-")
			}
		}
	}
	if instanceOn["b"] == "" || instanceOn["c"] == "" {
		t.Fatalf("servers on %v, want one on b and one on c", instanceOn)
	}
	nearest := func(want string) {
		testharness.WaitFor(t, 2*time.Minute, "a's closest_ip answers from "+want, func() (bool, string) {
			d := distinct(fetchFrom(t, s.nodes["a"].ns, "http://10.30.99.99:8080/", 10))
			return d[instanceOn[want]] == 10, fmt.Sprint(d)
		})
	}
	nearest("c")
	delays["b"], delays["c"] = 2, 60
	links["b"].Set(2 * time.Millisecond)
	links["c"].Set(60 * time.Millisecond)
	nearest("b")
}
