package apitest

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/oam"
)

// exampleDocs returns the documents of sla_examples/oam/video-analytics.yaml:
// its ComponentDefinitions and its Application.
func exampleDocs(t *testing.T) (defs [][]byte, app []byte) {
	t.Helper()
	data, err := os.ReadFile("../../sla_examples/oam/video-analytics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range oam.Documents(data) {
		if oam.ManifestKind(d) == oam.KindComponentDefinition {
			defs = append(defs, d)
		} else {
			app = d
		}
	}
	if len(defs) != 2 || app == nil {
		t.Fatalf("example has %d definitions, application %v", len(defs), app != nil)
	}
	return defs, app
}

// TestOAMComponentDefinitions: a user registers ComponentDefinitions
// (again: replaced), lists, reads and deletes them; they are
// the user's alone and survive a restart; an Application naming their base
// becomes a service with every implementation in preference order; bad
// definitions, a workload type clashing with the base's, and an
// Application naming a base its user has no definition of are refused
// with the field at fault, and store nothing.
func TestOAMComponentDefinitions(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")
	bob := r.newUser(admin, "bob")
	defs, appDoc := exampleDocs(t)
	const path = "/api/oam/componentdefinitions"

	for i := range defs {
		if resp := r.do("POST", path, alice, defs[i]); resp.Status != http.StatusOK {
			t.Fatalf("definition %d: %s, want 200", i, resp)
		}
	}
	// Registered again: replaced, keeping its place in the order.
	if resp := r.do("POST", path, alice, defs[0]); resp.Status != http.StatusOK {
		t.Fatalf("registering va-container again: %s, want 200", resp)
	}
	ctx, cancel := callCtx()
	defer cancel()
	cl := r.client(alice)
	listed := func(cl *api.Client) []string {
		t.Helper()
		types, err := cl.OAMComponentTypes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ct := range types {
			out = append(out, ct.Name+"/"+ct.Kind+"/"+ct.BaseComponent+"/"+ct.Virtualization)
		}
		return out
	}
	want := "task/builtin//,webservice/builtin//,worker/builtin//,va-container/definition/video-analytics/container,va-wasm/definition/video-analytics/wasm"
	if got := strings.Join(listed(cl), ","); got != want {
		t.Errorf("alice's component types:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(listed(r.client(bob)), ","); got != "task/builtin//,webservice/builtin//,worker/builtin//" {
		t.Errorf("bob sees %s", got)
	}
	one, err := cl.OAMComponentDefinition(ctx, "va-wasm")
	if err != nil || one.Manifest != string(defs[1]) || one.Workload != "worker" || len(one.SHA256) != 64 || one.CreatedAt == nil {
		t.Errorf("va-wasm = %+v, %v", one, err)
	}

	before := r.snapshot(admin)
	bad := strings.Replace(string(defs[1]), "virtualization: wasm", "virtualization: vm", 1)
	task := strings.Replace(strings.Replace(string(defs[1]), "type: worker", "type: task", 1), "name: va-wasm", "name: va-task", 1)
	for _, c := range []struct {
		name, token, path, body, field, contains string
		status                                   int
	}{
		{"bad virtualization", alice, path, bad, "spec.workload.virtualization", "not a virtualization", 400},
		{"bad digest", alice, path, strings.Replace(string(defs[1]), "sha256: 9f", "sha256: zz", 1), "spec.workload.sha256", "64 hexadecimal", 400},
		{"another workload type", alice, path, task, "spec.workload.type", "same workload type", 409},
		{"an Application is no definition", alice, path, string(appDoc), "kind", "must be ComponentDefinition", 400},
		{"bob's application names alice's base", bob, "/api/oam/applications", string(appDoc), "spec.components[0].type", `"video-analytics" is not supported`, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := r.do("POST", c.path, c.token, []byte(c.body))
			if resp.Status != c.status {
				t.Fatalf("want %d, got %s", c.status, resp)
			}
			if e := resp.errorBody(t); e.Field != c.field || !strings.Contains(e.Error, c.contains) {
				t.Errorf("error %q at %q, want one mentioning %q at %q", e.Error, e.Field, c.contains, c.field)
			}
		})
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}
	if got := strings.Join(listed(cl), ","); got != want {
		t.Errorf("after the refused definitions: %s", got)
	}

	// Alice's application resolves the base to both implementations, in
	// the runtime trait's order.
	app, err := cl.CreateOAMApplication(ctx, appDoc)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cl.Service(ctx, app.Components[0].MicroserviceID)
	if err != nil {
		t.Fatal(err)
	}
	var impls []string
	for _, im := range svc.Implementations {
		impls = append(impls, im.Name+"/"+im.Virtualization+"/"+strings.Join(im.Arch, ",")+"/"+itoa(int(im.MemoryMB)))
	}
	if got := strings.Join(impls, " "); got != "va-container/container/amd64/64 va-wasm/wasm//32" ||
		svc.Virtualization != "container" || len(svc.InstanceList) != 2 {
		t.Errorf("service %s: implementations %s, virtualization %s, %d instances", svc.MicroserviceName, got, svc.Virtualization, len(svc.InstanceList))
	}

	r.restart(false)
	cl = r.client(alice)
	if got := strings.Join(listed(cl), ","); got != want {
		t.Errorf("after a restart: %s", got)
	}
	if svc, err := cl.Service(ctx, app.Components[0].MicroserviceID); err != nil || len(svc.Implementations) != 2 {
		t.Errorf("service after a restart: %+v, %v", svc, err)
	}

	// Deleting a definition leaves the application as it is; the base
	// then has one implementation for the next revision.
	if err := cl.DeleteOAMComponentDefinition(ctx, "va-container"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.OAMComponentDefinition(ctx, "va-container"); !api.IsNotFound(err) {
		t.Errorf("read after delete: %v", err)
	}
	if err := cl.DeleteOAMComponentDefinition(ctx, "va-container"); !api.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if err := r.client(bob).DeleteOAMComponentDefinition(ctx, "va-wasm"); !api.IsNotFound(err) {
		t.Errorf("bob deletes alice's definition: %v", err)
	}
	if svc, err := cl.Service(ctx, app.Components[0].MicroserviceID); err != nil || len(svc.Implementations) != 2 {
		t.Errorf("service after the definition's delete: %+v, %v", svc, err)
	}
	// The runtime trait names container, which no definition is left of
	// but wasm is: the update runs the wasm build alone.
	up, err := cl.UpdateOAMApplication(ctx, "cameras", []byte(strings.Replace(string(appDoc), "replicas: 2", "replicas: 1", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if svc, err := cl.Service(ctx, up.Components[0].MicroserviceID); err != nil || svc.Virtualization != "wasm" || len(svc.Implementations) != 0 {
		t.Errorf("service of revision 2: %+v, %v", svc, err)
	}
}
