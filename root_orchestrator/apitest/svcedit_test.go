package apitest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// editSLA is the document PUT /api/service/{id} takes: the service web of
// testSLA in application appID, changed by edit.
func editSLA(appID string, edit func(ms map[string]any)) map[string]any {
	d := testSLA("ignored")
	a := d["applications"].([]any)[0].(map[string]any)
	a["applicationID"], a["application_name"], a["application_namespace"] = appID, "", ""
	ms := a["microservices"].([]any)
	web := ms[0].(map[string]any)
	edit(web)
	a["microservices"] = []any{web}
	return d
}

// TestEditService: PUT /api/service/{id} with the service's SLA document.
// A bad document is a 400 naming every field (nothing changes), another
// user's service is a 404, a rename a 409; an unchanged spec restarts
// nothing; a new image keeps the service's id and IP and replaces the
// instance: the new one is placed first, and the old one goes only once
// the new one is RUNNING.
func TestEditService(t *testing.T) {
	p := placeOne(t, "edit")
	r, admin := p.r, p.admin
	key0 := wire.InstanceKey(p.svc, 0)
	p.sync([]wire.InstanceStatus{{Key: key0, Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}})
	before := r.waitService(admin, p.svc, "running", func(s api.Service) bool { return allInstances(s, api.StatusRunning) })
	path := "/api/service/" + p.svc

	snap := r.snapshot(admin)
	other := r.newUser(admin, "editor")
	for _, c := range []struct {
		name   string
		token  string
		body   map[string]any
		status int
		field  string
	}{
		{"bad fields", admin, editSLA(p.app.ApplicationID, func(m map[string]any) { m["memory"] = -1; m["virtualization"] = "vm" }),
			http.StatusBadRequest, "applications[0].microservices[0].virtualization"},
		{"another application", admin, editSLA("665f1c2e9b1e8a0001a1b2c3", func(map[string]any) {}),
			http.StatusBadRequest, "applications[0].applicationID"},
		{"a rename", admin, editSLA(p.app.ApplicationID, func(m map[string]any) { m["microservice_name"] = "web2" }),
			http.StatusConflict, "applications[0].microservices[0].microservice_name"},
		{"another user's service", other, editSLA(p.app.ApplicationID, func(m map[string]any) { m["code"] = "img:v2" }),
			http.StatusNotFound, ""},
	} {
		resp := r.do("PUT", path, c.token, c.body)
		if resp.Status != c.status || (c.field != "" && resp.errorBody(t).Field != c.field) {
			t.Errorf("%s: %s; want %d at %q", c.name, resp, c.status, c.field)
		}
	}
	if resp := r.do("PUT", path, admin, editSLA(p.app.ApplicationID, func(m map[string]any) { m["memory"] = -1; m["virtualization"] = "vm" })); resp.Status == http.StatusBadRequest {
		if e := resp.errorBody(t).Error; !strings.Contains(e, "memory") || !strings.Contains(e, "virtualization") {
			t.Errorf("not every error at once: %s", e)
		}
	}
	if got := r.snapshot(admin); got != snap {
		t.Fatalf("refused edits changed something:\n%s\n%s", snap, got)
	}

	// The same spec: nothing restarts.
	var same api.Service
	r.must("PUT", path, admin, editSLA(p.app.ApplicationID, func(map[string]any) {}), &same)
	if same.Rollout != nil || len(same.InstanceList) != 1 || same.InstanceList[0].Outdated {
		t.Fatalf("an edit without changes: %+v", same)
	}

	// A new image: instance 1 of the new spec first.
	var edited api.Service
	r.must("PUT", path, admin, editSLA(p.app.ApplicationID, func(m map[string]any) {
		m["code"] = "docker.io/library/nginx:1.27"
		m["environment"] = []string{"MODE=edited"}
	}), &edited)
	if edited.MicroserviceID != p.svc || edited.RRIP != before.RRIP || edited.Code != "docker.io/library/nginx:1.27" ||
		edited.Rollout == nil || edited.Rollout.Replicas != 1 || edited.Rollout.Outdated != 1 {
		t.Fatalf("after the edit: %+v", edited)
	}
	key1 := wire.InstanceKey(p.svc, 1)
	r.waitService(admin, p.svc, "with the new instance assigned", func(s api.Service) bool {
		return len(s.InstanceList) == 2 && s.InstanceList[1].ClusterID == p.reg.ClusterID
	})
	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired", p.reg.Credential, nil, &d)
	specs := map[string]wire.InstanceSpec{}
	for _, s := range d.Instances {
		specs[s.Key] = s
	}
	if specs[key0].Code != "docker.io/library/nginx:latest" || specs[key1].Code != "docker.io/library/nginx:1.27" ||
		len(specs[key1].Environment) != 1 || specs[key1].Environment[0] != "MODE=edited" {
		t.Fatalf("the cluster's desired set: %+v", d.Instances)
	}
	p.sync([]wire.InstanceStatus{{Key: key0, Status: wire.StatusRunning, NodeID: "n1", Node: "n1"},
		{Key: key1, Status: wire.StatusCreating, NodeID: "n1", Node: "n1"}})
	s := r.waitService(admin, p.svc, "with the new instance creating", func(s api.Service) bool {
		return len(s.InstanceList) == 2 && s.InstanceList[1].Status == wire.StatusCreating
	})
	if !s.InstanceList[0].Outdated || s.InstanceList[0].Status != api.StatusRunning {
		t.Fatalf("the old instance while the new one is created: %+v", s.InstanceList[0])
	}
	p.sync([]wire.InstanceStatus{{Key: key1, Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}})
	done := r.waitService(admin, p.svc, "rolled out", func(s api.Service) bool {
		return s.Rollout == nil && len(s.InstanceList) == 1
	})
	if in := done.InstanceList[0]; in.InstanceNumber != 1 || in.Outdated || in.Status != api.StatusRunning {
		t.Errorf("after the rollout: %+v", in)
	}
}
