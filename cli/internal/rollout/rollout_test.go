package rollout

import (
	"reflect"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

func TestLine(t *testing.T) {
	tg := Target{ServiceID: "s1", Label: "nginx/nginx", Number: 0}
	for _, tc := range []struct {
		name, from, cluster string
		in                  api.Instance
		want                string
	}{
		{"first sight", "", "", api.Instance{Status: "REQUESTED"}, "nginx/nginx #0  REQUESTED"},
		{"scheduled to a cluster", "REQUESTED", "alpha", api.Instance{Status: "SCHEDULED", ClusterID: "c1"},
			"nginx/nginx #0  REQUESTED -> SCHEDULED on cluster alpha"},
		{"running with overlay address", "SCHEDULED", "alpha",
			api.Instance{Status: "RUNNING", ClusterID: "c1", NodeName: "n1", InstanceIP: "10.64.1.2", HostIP: "10.213.0.11", HostPort: 8080},
			"nginx/nginx #0  SCHEDULED -> RUNNING on node n1 (cluster alpha) 10.64.1.2, published 10.213.0.11:8080"},
		{"running in the node's network", "CREATING", "",
			api.Instance{Status: "RUNNING", ClusterID: "c1", NodeName: "n1", HostIP: "10.213.0.11"},
			"nginx/nginx #0  CREATING -> RUNNING on node n1 (cluster c1) 10.213.0.11"},
		{"no capacity with reason", "REQUESTED", "",
			api.Instance{Status: "NO_CAPACITY", StatusDetail: "no node fits: 1 lacks memory"},
			"nginx/nginx #0  REQUESTED -> NO_CAPACITY: no node fits: 1 lacks memory"},
		{"same status, new node", "LOST", "beta", api.Instance{Status: "LOST", NodeName: "n2", StatusDetail: "node silent"},
			"nginx/nginx #0  LOST on node n2 (cluster beta): node silent"},
		{"running hides its detail", "CREATING", "", api.Instance{Status: "RUNNING", StatusDetail: "started"},
			"nginx/nginx #0  CREATING -> RUNNING"},
	} {
		if got := Line(tg, tc.from, tc.in, tc.cluster); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func svc(id string, ins ...api.Instance) *api.Service {
	return &api.Service{MicroserviceID: id, InstanceList: ins}
}

func inst(n int, status, node, detail string) api.Instance {
	return api.Instance{InstanceNumber: n, Status: status, NodeName: node, StatusDetail: detail}
}

func TestTracker(t *testing.T) {
	targets := []Target{{"s1", "app/web", 0}, {"s1", "app/web", 1}, {"s2", "app/db", 0}}
	type step struct {
		svcs    map[string]*api.Service
		lines   []string
		outcome Outcome
		err     string
	}
	for _, tc := range []struct {
		name      string
		steps     []step
		unsettled []string
	}{
		{name: "all reach RUNNING, lines only on change", steps: []step{
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "REQUESTED", "", ""), inst(1, "REQUESTED", "", "")),
				"s2": svc("s2", inst(0, "SCHEDULED", "", ""))},
				lines: []string{"app/web #0  REQUESTED", "app/web #1  REQUESTED", "app/db #0  SCHEDULED"}},
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "RUNNING", "n1", ""), inst(1, "REQUESTED", "", "")),
				"s2": svc("s2", inst(0, "SCHEDULED", "", ""))},
				lines: []string{"app/web #0  REQUESTED -> RUNNING on node n1"}},
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "RUNNING", "n1", ""), inst(1, "RUNNING", "n2", "")),
				"s2": svc("s2", inst(0, "COMPLETED", "n1", "exit 0"))},
				lines:   []string{"app/web #1  REQUESTED -> RUNNING on node n2", "app/db #0  SCHEDULED -> COMPLETED on node n1: exit 0"},
				outcome: Done},
		}},
		{name: "a failed instance fails the rollout", steps: []step{
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "RUNNING", "n1", ""), inst(1, "CREATING", "n1", "")),
				"s2": svc("s2", inst(0, "FAILED", "n1", "pull image: not found"))},
				lines: []string{"app/web #0  RUNNING on node n1", "app/web #1  CREATING on node n1",
					"app/db #0  FAILED on node n1: pull image: not found"},
				outcome: Failed, err: "app/db #0 failed: pull image: not found"},
		}, unsettled: []string{"app/web #1 CREATING", "app/db #0 FAILED: pull image: not found"}},
		{name: "no capacity stays pending, detail changes are shown", steps: []step{
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "RUNNING", "n1", ""), inst(1, "NO_CAPACITY", "", "2 lack memory")),
				"s2": svc("s2", inst(0, "RUNNING", "n1", ""))},
				lines: []string{"app/web #0  RUNNING on node n1", "app/web #1  NO_CAPACITY: 2 lack memory", "app/db #0  RUNNING on node n1"}},
			{svcs: map[string]*api.Service{
				"s1": svc("s1", inst(0, "RUNNING", "n1", ""), inst(1, "NO_CAPACITY", "", "3 lack memory")),
				"s2": svc("s2", inst(0, "RUNNING", "n1", ""))},
				lines: []string{"app/web #1  NO_CAPACITY: 3 lack memory"}},
		}, unsettled: []string{"app/web #1 NO_CAPACITY: 3 lack memory"}},
		{name: "a removed instance or deleted service fails", steps: []step{
			{svcs: map[string]*api.Service{"s1": svc("s1", inst(0, "RUNNING", "n1", ""))},
				lines:   []string{"app/web #0  RUNNING on node n1"},
				outcome: Failed, err: "app/web #1: the instance was removed"},
		}, unsettled: []string{"app/web #1 not seen yet", "app/db #0 not seen yet"}},
	} {
		tr := New(targets)
		for i, st := range tc.steps {
			lines, outcome, err := tr.Observe(st.svcs, nil)
			if !reflect.DeepEqual(lines, st.lines) {
				t.Errorf("%s, step %d: lines\n got %q\nwant %q", tc.name, i, lines, st.lines)
			}
			if outcome != st.outcome {
				t.Errorf("%s, step %d: outcome %v, want %v", tc.name, i, outcome, st.outcome)
			}
			if got := ""; err != nil || st.err != "" {
				if err != nil {
					got = err.Error()
				}
				if got != st.err {
					t.Errorf("%s, step %d: error %q, want %q", tc.name, i, got, st.err)
				}
			}
		}
		if got := tr.Unsettled(); strings.Join(got, "|") != strings.Join(tc.unsettled, "|") {
			t.Errorf("%s: unsettled %q, want %q", tc.name, got, tc.unsettled)
		}
	}
}
