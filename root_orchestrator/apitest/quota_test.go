package apitest

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// TestQuota: an admin sets a user's quota; the user reads it with its use;
// an instance beyond it is refused with 409 naming the quota and the
// numbers and nothing is stored; it counts the user's instances over all
// services, whoever asks; a user cannot set a quota; removing the quota
// lifts the bound; the quota survives a restart.
func TestQuota(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=quota-admin-password"})
	admin := r.login("Admin", "quota-admin-password").Token
	alice := r.newUser(admin, "alice")
	// web and db: 1 vcpu and 100 MiB each.
	app := r.createApp(alice, testSLA("shop"), "shop")
	web, db := app.Microservices[0], app.Microservices[1]

	if resp := r.do("PUT", "/api/users/alice/quota", alice, api.Quota{Instances: 100}); resp.Status != http.StatusForbidden {
		t.Errorf("a user setting a quota: want 403, got %s", resp)
	}
	if resp := r.do("PUT", "/api/users/alice/quota", admin, api.Quota{MemoryMB: -1}); resp.Status != http.StatusBadRequest || resp.errorBody(t).Field != "memory_mb" {
		t.Errorf("negative quota: want 400 on memory_mb, got %s", resp)
	}
	if resp := r.do("PUT", "/api/users/nobody/quota", admin, api.Quota{Instances: 1}); resp.Status != http.StatusNotFound {
		t.Errorf("quota of a missing user: want 404, got %s", resp)
	}
	var st api.QuotaStatus
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 3, MilliCPU: 10000, MemoryMB: 250}, &st)
	if st.Quota != (api.Quota{Instances: 3, MilliCPU: 10000, MemoryMB: 250}) || st.Used != (api.Quota{}) {
		t.Errorf("after PUT: %+v", st)
	}

	r.must("POST", "/api/service/"+web+"/instance", alice, nil, nil)
	r.must("POST", "/api/service/"+db+"/instance", admin, nil, nil) // the owner's quota counts, whoever asks
	before := r.service(admin, web).NextInstance
	for _, who := range []string{alice, admin} {
		resp := r.do("POST", "/api/service/"+web+"/instance", who, nil)
		if resp.Status != http.StatusConflict {
			t.Fatalf("instance beyond the memory quota: want 409, got %s", resp)
		}
		e := resp.errorBody(t)
		if e.Field != "quota.memory_mb" || !strings.Contains(e.Error, "memory_mb 250, has 200, this asks 100 more") {
			t.Errorf("quota error: %+v", e)
		}
	}
	if svc := r.service(admin, web); svc.NextInstance != before || len(svc.InstanceList) != 1 {
		t.Errorf("a refused instance changed the service: next instance %d (was %d), %d instances", svc.NextInstance, before, len(svc.InstanceList))
	}
	r.must("GET", "/api/quota", alice, nil, &st)
	if st.Username != "alice" || st.Used != (api.Quota{Instances: 2, MilliCPU: 2000, MemoryMB: 200}) {
		t.Errorf("GET /api/quota: %+v", st)
	}
	var u api.User
	r.must("GET", "/api/user/alice", alice, nil, &u)
	if u.Quota == nil || u.Quota.MemoryMB != 250 {
		t.Errorf("GET /api/user/alice: quota %+v", u.Quota)
	}

	// A quota on instances alone.
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 2}, nil)
	if resp := r.do("POST", "/api/service/"+db+"/instance", alice, nil); resp.Status != http.StatusConflict || resp.errorBody(t).Field != "quota.instances" {
		t.Errorf("instance beyond the instance quota: want 409 on quota.instances, got %s", resp)
	}
	r.restart(false)
	admin = r.login("Admin", "quota-admin-password").Token
	alice = r.login("alice", "pw-alice-secret").Token
	r.must("GET", "/api/users/alice/quota", admin, nil, &st)
	if st.Quota != (api.Quota{Instances: 2}) || st.Used.Instances != 2 {
		t.Errorf("after a restart: %+v", st)
	}
	if resp := r.do("GET", "/api/users/Admin/quota", alice, nil); resp.Status != http.StatusForbidden {
		t.Errorf("a user reading another's quota: want 403, got %s", resp)
	}

	// No quota: no bound.
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{}, nil)
	r.must("POST", "/api/service/"+db+"/instance", alice, nil, nil)
	var u2 api.User
	r.must("GET", "/api/user/alice", alice, nil, &u2)
	if u2.Quota != nil {
		t.Errorf("quota removed, user shows %+v", u2.Quota)
	}

	// An OAM application is held to the quota too, and stores nothing
	// when refused.
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 3}, &st)
	if st.Used.Instances != 3 {
		t.Fatalf("alice uses %+v, the test wants 3 instances", st.Used)
	}
	manifest, err := os.ReadFile("../../sla_examples/oam/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := callCtx()
	defer cancel()
	_, err = r.client(alice).CreateOAMApplication(ctx, manifest)
	if !api.HasStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "quota exceeded") {
		t.Errorf("OAM application beyond the quota: %v, want 409 quota exceeded", err)
	}
	if resp := r.do("GET", "/api/oam/applications/shop", alice, nil); resp.Status != http.StatusNotFound {
		t.Errorf("the refused OAM application was stored: %s", resp)
	}
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 20}, nil)
	if _, err := r.client(alice).CreateOAMApplication(ctx, manifest); err != nil {
		t.Errorf("OAM application within the quota: %v", err)
	}

	// An indexed job's completions are created with its service: they
	// count at the create, in a new application or an added service.
	r.must("GET", "/api/quota", alice, nil, &st)
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: st.Used.Instances + 4}, nil)
	job := func(app string, n int) map[string]any {
		body := testSLA(app)
		a := body["applications"].([]any)[0].(map[string]any)
		a["microservices"] = a["microservices"].([]any)[:1]
		m := a["microservices"].([]any)[0].(map[string]any)
		m["microservice_name"], m["one_shot"], m["completions"], m["port"] = "job", true, n, ""
		return body
	}
	beforeJobs := r.snapshot(admin)
	resp := r.do("POST", "/api/application", alice, job("batch", 5))
	if e := resp.errorBody(t); resp.Status != http.StatusConflict || e.Field != "quota.instances" || !strings.Contains(e.Error, "this asks 5 more") {
		t.Errorf("a job of 5 completions with room for 4: want 409 on quota.instances asking 5, got %s", resp)
	}
	added := job("batch", 5)
	added["applications"].([]any)[0].(map[string]any)["applicationID"] = app.ApplicationID
	if resp := r.do("POST", "/api/service/", alice, added); resp.Status != http.StatusConflict || resp.errorBody(t).Field != "quota.instances" {
		t.Errorf("an added service of 5 completions with room for 4: want 409 on quota.instances, got %s", resp)
	}
	if after := r.snapshot(admin); after != beforeJobs {
		t.Errorf("refused jobs changed the store:\nbefore %s\nafter  %s", beforeJobs, after)
	}
	r.must("POST", "/api/application", alice, job("batch", 4), nil)
}

func (r *root) service(token, id string) api.Service {
	r.t.Helper()
	var s api.Service
	r.must("GET", "/api/service/"+id, token, nil, &s)
	return s
}

// TestQuotaRollingUpdate: an OAM revision that replaces a component with
// no room in the quota for the one instance more is accepted and rolls
// without surge (an old instance goes first); a revision whose end passes
// the quota is refused with 409 and changes nothing.
func TestQuotaRollingUpdate(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=rolling-admin-password"})
	admin := r.login("Admin", "rolling-admin-password").Token
	alice := r.newUser(admin, "alice")
	manifest := func(image, memory string) []byte {
		return []byte("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: roll}\nspec:\n  components:\n" +
			"    - {name: web, type: worker, properties: {image: " + image + ", memory: " + memory + "}, traits: [{type: scaler, properties: {replicas: 2}}]}\n")
	}
	r.must("PUT", "/api/users/alice/quota", admin, api.Quota{Instances: 2, MemoryMB: 200}, nil)
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(alice)
	v1, err := cl.CreateOAMApplication(ctx, manifest("busybox:1", "100Mi"))
	if err != nil {
		t.Fatal(err)
	}
	old := v1.Components[0].MicroserviceID

	// The end (2 × 200 MiB) passes 200 MiB: refused.
	_, err = cl.UpdateOAMApplication(ctx, "roll", manifest("busybox:2", "200Mi"))
	if !api.HasStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "memory_mb") {
		t.Errorf("a revision whose end passes the quota: %v, want 409 on memory_mb", err)
	}
	if a, err := cl.OAMApplication(ctx, "roll"); err != nil || a.Revision != 1 || a.Components[0].MicroserviceID != old {
		t.Errorf("after the refused revision: %+v, %v", a, err)
	}

	// Same resources, no room for a third instance: stop-then-start.
	v2, err := cl.UpdateOAMApplication(ctx, "roll", manifest("busybox:2", "100Mi"))
	if err != nil {
		t.Fatalf("a revision with no room for its surge: %v, want it accepted", err)
	}
	c := v2.Components[0]
	if c.Replacing != old || c.Instances != 0 || len(r.service(alice, old).InstanceList) != 1 {
		t.Errorf("after the revision: component %+v, old service has %d instances; want one old instance gone and no new one yet",
			c, len(r.service(alice, old).InstanceList))
	}
	var st api.QuotaStatus
	r.must("GET", "/api/quota", alice, nil, &st)
	if st.Used.Instances != 2 {
		t.Errorf("used during the replacement: %+v, want 2 instances (1 stored, 1 owed)", st.Used)
	}
}
