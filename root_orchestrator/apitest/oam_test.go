package apitest

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// TestOAMApplicationLifecycle: an OAM manifest submitted as YAML becomes an
// application whose services are its components, with the instances its
// traits ask for; the manifest is kept as written, survives a restart, and
// DELETE removes everything.
func TestOAMApplicationLifecycle(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")
	manifest, err := os.ReadFile("../../sla_examples/oam/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(alice)
	app, err := cl.CreateOAMApplication(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != "shop" || app.ApplicationName != "shop" || app.ApplicationNamespace != "default" || app.UserID != "alice" ||
		app.Manifest != string(manifest) || len(app.Components) != 3 {
		t.Fatalf("created %+v", app)
	}
	want := []struct {
		name      string
		instances int
		oneShot   bool
		rrIP      string
	}{{"web", 2, false, "10.30.80.80"}, {"poller", 1, false, ""}, {"migrate", 1, true, ""}}
	// No cluster is registered: the instances wait for one.
	waiting := map[string]bool{api.StatusRequested: true, api.StatusNoCapacity: true}
	for i, w := range want {
		c := app.Components[i]
		if c.Name != w.name || c.Instances != w.instances || !waiting[c.Status] || c.MicroserviceName != w.name {
			t.Errorf("component %d = %+v, want %s with %d waiting instances", i, c, w.name, w.instances)
		}
		svc, err := cl.Service(ctx, c.MicroserviceID)
		if err != nil {
			t.Fatalf("service of %s: %v", w.name, err)
		}
		if svc.ApplicationID != app.ApplicationID || svc.OneShot != w.oneShot || len(svc.InstanceList) != w.instances ||
			(w.rrIP != "" && svc.RRIP != w.rrIP) {
			t.Errorf("service of %s = %+v", w.name, svc)
		}
	}
	if err := func() error { _, err := cl.CreateOAMApplication(ctx, manifest); return err }(); !api.HasStatus(err, http.StatusConflict) {
		t.Errorf("second submission: %v, want 409", err)
	}

	// Another user sees none of it; the admin sees it in the list.
	bob := r.newUser(admin, "bob")
	if _, err := r.client(bob).OAMApplication(ctx, "shop"); !api.IsNotFound(err) {
		t.Errorf("bob reads alice's OAM application: %v", err)
	}
	if list, err := r.client(admin).OAMApplications(ctx); err != nil || len(list) != 1 || list[0].Name != "shop" {
		t.Errorf("admin's list = %+v, %v", list, err)
	}

	r.restart(false)
	got, err := r.client(alice).OAMApplication(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest != string(manifest) || got.ApplicationID != app.ApplicationID || len(got.Components) != 3 ||
		got.Components[0].MicroserviceID != app.Components[0].MicroserviceID {
		t.Errorf("after a restart: %+v", got)
	}

	if err := r.client(alice).DeleteOAMApplication(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client(alice).OAMApplication(ctx, "shop"); !api.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
	if apps, err := r.client(alice).Applications(ctx); err != nil || len(apps) != 0 {
		t.Errorf("applications after delete: %+v, %v", apps, err)
	}
	if _, err := r.client(alice).Service(ctx, app.Components[0].MicroserviceID); !api.IsNotFound(err) {
		t.Errorf("service after delete: %v", err)
	}
}

// TestInvalidOAMManifestsAreRefusedAndChangeNothing: bad manifests get 400
// naming the field at fault, and nothing is stored.
func TestInvalidOAMManifestsAreRefusedAndChangeNothing(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	r.createApp(admin, testSLA("existing"), "existing")
	before := r.snapshot(admin)
	head := "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bad\nspec:\n  components:\n"
	good := "    - name: web\n      type: webservice\n      properties:\n        image: docker.io/library/nginx:1.27\n"
	for _, c := range []struct {
		name, body, field, contains string
		status                      int
	}{
		{"bad YAML", "apiVersion: core.oam.dev/v1beta1\nkind: [Application\n", "", "invalid YAML", 400},
		{"wrong apiVersion", strings.Replace(head, "v1beta1", "v1alpha2", 1) + good, "apiVersion", "must be core.oam.dev/v1beta1", 400},
		{"unknown type", head + strings.Replace(good, "webservice", "helm", 1), "spec.components[0].type", `"helm" is not supported`, 400},
		{"unknown trait", head + good + "      traits:\n        - type: autoscaler\n", "spec.components[0].traits[0].type", "not supported", 400},
		{"trait on the wrong workload", head + good + "    - name: job\n      type: task\n      properties: {image: docker.io/library/busybox:1.36}\n      traits:\n        - type: scaler\n          properties: {replicas: 3}\n",
			"spec.components[1].traits[0].type", "does not apply to a task", 400},
		{"wrong type", head + good + "      traits:\n        - type: scaler\n          properties: {replicas: two}\n", "spec.components[0].traits[0].properties.replicas", "line 13", 400},
		{"service IP outside", head + good + "      traits:\n        - type: expose\n          properties: {rrIP: 10.31.0.1}\n", "spec.components[0].traits[0].properties", "10.30.0.0/16", 400},
		{"name taken by an SLA's application", strings.Replace(head, "name: bad", "name: existing\n  namespace: test", 1) + good, "metadata.name", "already exists", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := r.do("POST", "/api/oam/applications", admin, []byte(c.body))
			want := c.status
			if want == 0 {
				want = http.StatusConflict
			}
			if resp.Status != want {
				t.Fatalf("want %d, got %s", want, resp)
			}
			e := resp.errorBody(t)
			if e.Field != c.field || !strings.Contains(e.Error, c.contains) {
				t.Errorf("error %q at %q, want one mentioning %q at %q", e.Error, e.Field, c.contains, c.field)
			}
		})
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("invalid manifests changed the store:\nbefore %s\nafter  %s", before, after)
	}
	ctx, cancel := callCtx()
	defer cancel()
	if list, err := r.client(admin).OAMApplications(ctx); err != nil || len(list) != 0 {
		t.Errorf("OAM applications = %+v, %v", list, err)
	}
}

// TestOAMDefinitionsAreListed: the component types and traits are listed.
func TestOAMDefinitionsAreListed(t *testing.T) {
	r := startRoot(t, "", nil)
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(r.adminToken())
	types, err := cl.OAMComponentTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ct := range types {
		names = append(names, ct.Name)
	}
	if strings.Join(names, ",") != "task,webservice,worker" {
		t.Errorf("component types %v", names)
	}
	traits, err := cl.OAMTraitDefinitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.OAMTraitDefinition{}
	for _, d := range traits {
		byName[d.Name] = d
	}
	for _, n := range []string{"scaler", "placement", "expose", "env", "resource", "runtime", "gpu"} {
		if _, ok := byName[n]; !ok {
			t.Errorf("trait %s not listed (%v)", n, traits)
		}
	}
	if got := strings.Join(byName["scaler"].AppliesTo, ","); got != "webservice,worker" {
		t.Errorf("scaler applies to %s", got)
	}
}

// TestOAMApplicationUpdate: PUT applies a changed manifest as revision 2
// (a component scaled in place, one added); a manifest of another name or
// an invalid one is refused and changes nothing; a rollback to revision 1
// is revision 3 with revision 1's manifest.
func TestOAMApplicationUpdate(t *testing.T) {
	r := startRoot(t, "", nil)
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(r.adminToken())
	manifest, err := os.ReadFile("../../sla_examples/oam/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := cl.CreateOAMApplication(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(string(manifest), "replicas: 2", "replicas: 3", 1) +
		"    - name: cache\n      type: worker\n      properties:\n        image: docker.io/library/redis:7\n"
	for _, c := range []struct{ name, body, field string }{
		{"another name", strings.Replace(v2, "name: shop", "name: shop2", 1), "metadata.name"},
		{"invalid", strings.Replace(v2, "type: worker", "type: daemon", 1), "spec.components[1].type"},
	} {
		resp := r.do("PUT", "/api/oam/applications/shop", r.adminToken(), []byte(c.body))
		if resp.Status != http.StatusBadRequest || resp.errorBody(t).Field != c.field {
			t.Errorf("%s: %s, want 400 at %s", c.name, resp, c.field)
		}
	}
	if resp := r.do("PUT", "/api/oam/applications/nosuch", r.adminToken(), []byte(v2)); resp.Status != http.StatusNotFound {
		t.Errorf("update of an unknown application: %s", resp)
	}
	got, err := cl.UpdateOAMApplication(ctx, "shop", []byte(v2))
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 2 || got.Manifest != v2 || len(got.Components) != 4 || got.Components[0].MicroserviceID != v1.Components[0].MicroserviceID ||
		got.Components[0].Instances != 3 || got.Components[3].Name != "cache" || got.Components[3].Instances != 1 {
		t.Errorf("after the update: %+v", got)
	}
	revs, err := cl.OAMRevisions(ctx, "shop")
	if err != nil || len(revs) != 2 || revs[0].Revision != 1 || revs[0].Manifest != string(manifest) || revs[1].Manifest != v2 {
		t.Errorf("revisions %+v, %v", revs, err)
	}

	// Rolling back to revision 1 is revision 3 with its manifest: web
	// scales back in place, cache goes.
	if _, err := cl.RollbackOAMApplication(ctx, "shop", 7); !api.IsNotFound(err) {
		t.Errorf("rollback to a revision never made: %v", err)
	}
	back, err := cl.RollbackOAMApplication(ctx, "shop", 1)
	if err != nil {
		t.Fatal(err)
	}
	if back.Revision != 3 || back.Manifest != string(manifest) || len(back.Components) != 3 ||
		back.Components[0].MicroserviceID != v1.Components[0].MicroserviceID || back.Components[0].Instances != 2 {
		t.Errorf("after the rollback: %+v", back)
	}
	if _, err := cl.Service(ctx, got.Components[3].MicroserviceID); !api.IsNotFound(err) {
		t.Errorf("cache after the rollback: %v", err)
	}
}
