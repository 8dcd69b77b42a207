package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestOAMApplication deploys a multi-component OAM application on real
// nodes: a webservice with two replicas behind a service IP, a worker that
// calls that IP, and a task that runs once, in workflow steps: the task
// first, then the web service, then the worker. The replicas run, the
// worker's answers come from both of them, the task completes, each step
// starts after the one before; an update changes only what changed (the
// changed worker is replaced, its old instance going once the new one
// runs); deleting the application stops everything.
func TestOAMApplication(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("alpha", "")
	s.addOverlayNode(c, "n1", 51, 1024)
	s.addOverlayNode(c, "n2", 52, 1024)
	s.waitNodes(map[string]int{"alpha": 2})

	manifest := fmt.Sprintf(`apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: oam-e2e
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: %[1]s
        ports:
          - port: 8080
            expose: true
        memory: 32Mi
      traits:
        - type: scaler
          properties: {replicas: 2}
        - type: expose
          properties: {rrIP: 10.30.91.91}
    - name: caller
      type: worker
      properties:
        image: %[1]s
        args: [fetch, "http://10.30.91.91:8080/", "0"]
        memory: 32Mi
    - name: once
      type: task
      properties:
        image: %[1]s
        args: [print, "3"]
        memory: 16Mi
  workflow:
    steps:
      - name: prepare
        type: apply-component
        properties: {component: once}
      - name: serve
        type: apply-component
        properties: {component: web}
      - name: rest
        type: deploy
`, s.image)
	ctx, cancel := s.api.ctx()
	app, err := s.api.client().CreateOAMApplication(ctx, []byte(manifest))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"old caller": app.Components[1].MicroserviceID}
	for _, comp := range app.Components {
		ids[comp.Name] = comp.MicroserviceID
	}
	// Only the first step's component has instances yet.
	if len(ids) != 4 || app.Components[0].Replicas != 2 || app.Components[0].Instances != 0 || app.Components[2].Instances != 1 ||
		app.Workflow.Step != "prepare" {
		t.Fatalf("created %+v", app)
	}

	once := s.api.waitInstance(ids["once"], 0, 2*time.Minute, "completed", func(in api.Instance) bool { return in.Status == wire.StatusCompleted })
	web0 := s.runningOn(ids["web"], 0)
	web1 := s.runningOn(ids["web"], 1)
	if web0.InstanceIP == web1.InstanceIP {
		t.Errorf("both replicas at %s", web0.InstanceIP)
	}
	caller := s.runningOn(ids["caller"], 0)
	// Each step started after the one before ran.
	if web0.CreatedAt.Before(once.UpdatedAt) || caller.CreatedAt.Before(web0.UpdatedAt) || caller.CreatedAt.Before(web1.UpdatedAt) {
		t.Errorf("steps out of order: task completed %s, web created %s (running %s, %s), caller created %s",
			once.UpdatedAt, web0.CreatedAt, web0.UpdatedAt, web1.UpdatedAt, caller.CreatedAt)
	}

	// The worker reaches the web service at its service IP, round robin
	// over both replicas.
	hello := regexp.MustCompile(`hello from (\S+)`)
	testharness.WaitFor(t, time.Minute, "the caller's answers from both replicas", func() (bool, string) {
		var l api.Logs
		s.api.must("GET", "/api/service/"+ids["caller"]+"/instance/0/logs?lines=40", nil, &l)
		who := map[string]bool{}
		for _, m := range hello.FindAllStringSubmatch(l.Logs, -1) {
			who[m[1]] = true
		}
		return len(who) >= 2, l.Logs
	})

	var got api.OAMApplication
	s.api.must("GET", "/api/oam/applications/oam-e2e", nil, &got)
	if got.Components[0].Status != wire.StatusRunning || got.Components[2].Status != wire.StatusCompleted || got.Workflow.Phase != "succeeded" {
		t.Errorf("status %+v, workflow %+v", got.Components, got.Workflow)
	}

	// Revision 2 changes only what changed: a third web replica joins the
	// two running ones, which keep running; the caller, whose command
	// changed, is replaced and keeps working.
	v2 := strings.Replace(strings.Replace(manifest, "replicas: 2", "replicas: 3", 1), `"0"]`, `"0", "again"]`, 1)
	ctx, cancel = s.api.ctx()
	up, err := s.api.client().UpdateOAMApplication(ctx, "oam-e2e", []byte(v2))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if up.Revision != 2 || up.Components[0].MicroserviceID != ids["web"] || up.Components[1].MicroserviceID == ids["caller"] ||
		up.Components[2].MicroserviceID != ids["once"] {
		t.Fatalf("revision 2: %+v", up.Components)
	}
	s.runningOn(ids["web"], 2)
	for n, before := range []api.Instance{web0, web1} {
		if in, ok := s.api.instance(ids["web"], n); !ok || in.Status != wire.StatusRunning || in.InstanceIP != before.InstanceIP || in.Restarts != before.Restarts {
			t.Errorf("web replica %d touched by the update: %+v, before %+v", n, in, before)
		}
	}
	ids["caller"] = up.Components[1].MicroserviceID
	s.runningOn(ids["caller"], 0)
	if got := s.api.service(ids["caller"]); strings.Join(got.Cmd, " ") != "fetch http://10.30.91.91:8080/ 0 again" {
		t.Errorf("replaced caller runs %q", got.Cmd)
	}
	if up.Components[1].Replacing != ids["old caller"] {
		t.Errorf("caller replaces %q, want %q", up.Components[1].Replacing, ids["old caller"])
	}
	// The old caller goes once the new one runs, and the update is done.
	testharness.WaitFor(t, time.Minute, "the update's workflow done", func() (bool, string) {
		var got api.OAMApplication
		s.api.must("GET", "/api/oam/applications/oam-e2e", nil, &got)
		code, _ := s.api.do("GET", "/api/service/"+ids["old caller"], nil)
		return got.Workflow.Phase == "succeeded" && code == http.StatusNotFound, fmt.Sprintf("%+v, old caller %d", got.Workflow, code)
	})
	testharness.WaitFor(t, time.Minute, "the replaced caller's answers", func() (bool, string) {
		var l api.Logs
		s.api.must("GET", "/api/service/"+ids["caller"]+"/instance/0/logs?lines=10", nil, &l)
		return hello.MatchString(l.Logs), l.Logs
	})

	s.api.must("DELETE", "/api/oam/applications/oam-e2e", nil, nil)
	testharness.WaitFor(t, time.Minute, "the application's containers gone", func() (bool, string) {
		var left []string
		for _, id := range ids {
			for n := range 3 {
				left = append(left, s.instanceContainers(id, n)...)
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
}
