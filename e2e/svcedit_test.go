package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestEditServiceRolls: PUT /api/service/{id} with a new environment and
// command on real nodes: the instance is replaced (a new number, the new
// spec) while the service's IP keeps answering: sampled during the
// rollout, every sample gets an answer, first from the old instance, at
// the end only from the new one (issue 23, item 4).
func TestEditServiceRolls(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("edit", "")
	n1 := s.addOverlayNode(c, "n1", 45, 1024)
	s.addOverlayNode(c, "n2", 46, 1024)
	s.waitNodes(map[string]int{"edit": 2})
	web := map[string]any{"microservice_name": "web", "memory": 32, "environment": []string{"INSTANCE=v1"},
		"addresses": map[string]string{"rr_ip": "10.30.45.45"}}
	ids := s.app("editing", web)
	id := ids["web"]
	s.scaleUp(id)
	s.runningOn(id, 0)
	url := "http://10.30.45.45:8080/"
	testharness.WaitFor(t, time.Minute, "v1 answers on the service IP", func() (bool, string) {
		d := distinct(fetchFrom(t, n1.ns, url, 3))
		return d["v1"] == 3, fmt.Sprint(d)
	})

	edited := map[string]any{}
	for k, v := range web {
		edited[k] = v
	}
	edited["microservice_namespace"], edited["virtualization"], edited["code"] = "e2e", "container", s.image
	edited["environment"] = []string{"INSTANCE=v2"}
	edited["cmd"] = []string{"spin", "0"} // serves, as the default command does
	var out api.Service
	s.api.must("PUT", "/api/service/"+id, map[string]any{"sla_version": "v2.0", "applications": []any{map[string]any{
		"applicationID": ids["app"], "microservices": []any{edited}}}}, &out)
	if out.Rollout == nil || out.Rollout.Outdated != 1 || out.RRIP != "10.30.45.45" {
		t.Fatalf("the edit answered %+v", out)
	}
	start := time.Now()
	var samples []map[string]int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d := distinct(fetchFrom(t, n1.ns, url, 3))
		samples = append(samples, d)
		if d[""] == 3 {
			t.Errorf("%s into the rollout the service IP did not answer: %v", time.Since(start).Round(time.Millisecond), d)
		}
		svc := s.api.service(id)
		if svc.Rollout == nil && len(svc.InstanceList) == 1 && running(svc.InstanceList[0]) {
			if in := svc.InstanceList[0]; in.InstanceNumber != 1 || in.Outdated {
				t.Fatalf("after the rollout: %+v", in)
			}
			break
		}
		if svc.Rollout != nil && svc.Rollout.Message != "" {
			t.Fatalf("the rollout stopped: %s", svc.Rollout.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not done in 3 minutes: %+v", svc)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("rolled out in %s; answers sampled: %v", time.Since(start).Round(time.Millisecond), samples)
	testharness.WaitFor(t, 30*time.Second, "only v2 answers", func() (bool, string) {
		d := distinct(fetchFrom(t, n1.ns, url, 5))
		return d["v2"] == 5, fmt.Sprint(d)
	})
}
