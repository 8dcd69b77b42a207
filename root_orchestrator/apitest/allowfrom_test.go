package apitest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestSetAllowFrom: PUT /api/service/{id}/allow-from replaces a service's
// allow_from for its owner (others: 404); malformed entries are a 400
// listing every one and change nothing; the new list reaches the
// cluster's service table and the instances stay as they were; an OAM
// application's service is changed by its manifest's allow-from trait
// (in place, the same service and instances) and not by the endpoint.
func TestSetAllowFrom(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=allowfrom-admin-password"})
	admin := r.login("Admin", "allowfrom-admin-password").Token
	alice := r.newUser(admin, "alice")
	bob := r.newUser(admin, "bob")
	site := r.createApp(alice, withAllowFrom("site", []string{"carol"}), "site")
	web := site.Microservices[0]
	r.must("POST", "/api/service/"+web+"/instance", alice, nil, nil)
	path := "/api/service/" + web + "/allow-from"
	r.waitService(alice, web, "waiting for a cluster", func(s api.Service) bool { return allInstances(s, api.StatusNoCapacity) })

	before := r.snapshot(admin)
	for _, tc := range []struct {
		name   string
		who    string
		body   any
		status int
		field  string
		all    []string // in the message
	}{
		{"another user", bob, api.AllowFrom{AllowFrom: []string{"bob"}}, http.StatusNotFound, "", nil},
		{"malformed entries", alice, api.AllowFrom{AllowFrom: []string{"bob", "bo b", "bob/shop/web/x"}}, http.StatusBadRequest,
			"allow_from[1]", []string{"allow_from[1]", "allow_from[2]"}},
		{"a repeat", alice, api.AllowFrom{AllowFrom: []string{"bob", "bob"}}, http.StatusBadRequest, "allow_from[1]", nil},
		{"no list", alice, map[string]any{}, http.StatusBadRequest, "allow_from", nil},
		{"not a list", alice, map[string]any{"allow_from": "bob"}, http.StatusBadRequest, "allow_from", nil},
	} {
		resp := r.do("PUT", path, tc.who, tc.body)
		if resp.Status != tc.status {
			t.Errorf("%s: want %d, got %s", tc.name, tc.status, resp)
			continue
		}
		if tc.field == "" {
			continue
		}
		e := resp.errorBody(t)
		if e.Field != tc.field {
			t.Errorf("%s: error field %q, want %q", tc.name, e.Field, tc.field)
		}
		for _, f := range tc.all {
			if !strings.Contains(e.Error, f) {
				t.Errorf("%s: error %q does not name %s", tc.name, e.Error, f)
			}
		}
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}

	reg, _ := r.clusterWithNode(t, "edge", wire.Resources{MilliCPU: 8000, MemoryMB: 8192})
	ctx, cancel := callCtx()
	defer cancel()
	instancesBefore := r.service(alice, web).InstanceList
	for _, allow := range [][]string{{"bob", "dave/shop"}, nil} {
		svc, err := r.client(alice).SetAllowFrom(ctx, web, allow)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(svc.AllowFrom, allow) || !slices.Equal(r.service(alice, web).AllowFrom, allow) {
			t.Errorf("set %q: answer %q, stored %q", allow, svc.AllowFrom, r.service(alice, web).AllowFrom)
		}
		users := []string{}
		for _, a := range allow {
			if !strings.Contains(a, "/") {
				users = append(users, a)
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			var d wire.ClusterDesired
			r.must("GET", "/api/cluster/desired?wait=1s", reg.Credential, nil, &d)
			i := slices.IndexFunc(d.Network.Services, func(rt wire.ServiceRoute) bool { return rt.ServiceID == web })
			if i >= 0 && slices.Equal(d.Network.Services[i].AllowUsers, users) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("set %q: the cluster's service table never showed it: %+v", allow, d.Network.Services)
			}
		}
	}
	if after := r.service(alice, web).InstanceList; len(after) != len(instancesBefore) || after[0].InstanceNumber != instancesBefore[0].InstanceNumber {
		t.Errorf("instances changed: %+v, were %+v", after, instancesBefore)
	}

	// OAM: the trait sets it; a new revision changes it in place.
	manifest := func(from string) []byte {
		return []byte("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: shop}\nspec:\n  components:\n" +
			"    - {name: web, type: worker, properties: {image: busybox}, traits: [{type: allow-from, properties: {from: [" + from + "]}}]}\n")
	}
	cl := r.client(alice)
	app, err := cl.CreateOAMApplication(ctx, manifest("bob"))
	if err != nil {
		t.Fatal(err)
	}
	id := app.Components[0].MicroserviceID
	if got := r.service(alice, id).AllowFrom; !slices.Equal(got, []string{"bob"}) {
		t.Errorf("OAM service allow_from %q, want [bob]", got)
	}
	up, err := cl.UpdateOAMApplication(ctx, "shop", manifest("carol/site, bob"))
	if err != nil {
		t.Fatal(err)
	}
	if up.Components[0].MicroserviceID != id || up.Components[0].Replacing != "" {
		t.Errorf("a revision changing only allow-from replaced the service: %+v", up.Components[0])
	}
	if got := r.service(alice, id); !slices.Equal(got.AllowFrom, []string{"carol/site", "bob"}) || len(got.InstanceList) != 1 || got.InstanceList[0].InstanceNumber != 0 {
		t.Errorf("after the revision: allow_from %q, instances %+v", got.AllowFrom, got.InstanceList)
	}
	if resp := r.do("PUT", "/api/service/"+id+"/allow-from", alice, api.AllowFrom{AllowFrom: []string{"dave"}}); resp.Status != http.StatusConflict || resp.errorBody(t).Field != "allow_from" {
		t.Errorf("PUT allow-from on an OAM service: want 409, got %s", resp)
	}
}

// TestApplicationIsolation: an application created with isolation
// "application" shows it, keeps it across a restart and its services reach
// the cluster with their own tenant ("owner/application id"); another value
// is a 400 at the field and stores nothing.
func TestApplicationIsolation(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=isolation-admin-password"})
	admin := r.login("Admin", "isolation-admin-password").Token
	alice := r.newUser(admin, "alice")
	withIsolation := func(app, unit string) map[string]any {
		body := testSLA(app)
		body["applications"].([]any)[0].(map[string]any)["isolation"] = unit
		return body
	}
	before := r.snapshot(admin)
	resp := r.do("POST", "/api/application", alice, withIsolation("vault", "namespace"))
	if resp.Status != http.StatusBadRequest || resp.errorBody(t).Field != "applications[0].isolation" {
		t.Errorf("isolation namespace: want 400 at applications[0].isolation, got %s", resp)
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("a refused application changed the store")
	}
	vault := r.createApp(alice, withIsolation("vault", "application"), "vault")
	site := r.createApp(alice, testSLA("site"), "site")
	check := func(when string) {
		t.Helper()
		var a, b api.Application
		r.must("GET", "/api/application/"+vault.ApplicationID, alice, nil, &a)
		r.must("GET", "/api/application/"+site.ApplicationID, alice, nil, &b)
		if a.Isolation != "application" || b.Isolation != "" {
			t.Errorf("%s: isolation %q and %q, want application and none", when, a.Isolation, b.Isolation)
		}
	}
	check("created")
	r.restart(false)
	admin = r.login("Admin", "isolation-admin-password").Token
	check("after a restart")

	reg, _ := r.clusterWithNode(t, "edge", wire.Resources{MilliCPU: 8000, MemoryMB: 8192})
	deadline := time.Now().Add(15 * time.Second)
	for {
		var d wire.ClusterDesired
		r.must("GET", "/api/cluster/desired?wait=1s", reg.Credential, nil, &d)
		tenants := map[string]string{}
		for _, rt := range d.Network.Services {
			tenants[rt.ServiceID] = rt.Tenant
		}
		if tenants[vault.Microservices[0]] != "" && tenants[site.Microservices[0]] != "" {
			if tenants[vault.Microservices[0]] != "alice/"+vault.ApplicationID || tenants[site.Microservices[0]] != "alice" {
				t.Errorf("tenants: vault %q, site %q", tenants[vault.Microservices[0]], tenants[site.Microservices[0]])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the services never reached the cluster's service table: %+v", d.Network.Services)
		}
	}
}
