package apitest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// withAllowFrom returns testSLA(app) with allow_from on its first service
// ("web").
func withAllowFrom(app string, allow []string) map[string]any {
	return withField(app, "allow_from", allow)
}

// TestAllowFrom: a malformed allow_from is refused with 400 naming the
// entry and stores nothing; a good one is shown by the API, kept across a
// restart, and reaches the clusters resolved in the service table, with
// every route's tenant.
func TestAllowFrom(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=tenancy-admin-password"})
	admin := r.login("Admin", "tenancy-admin-password").Token
	alice := r.newUser(admin, "alice")
	bob := r.newUser(admin, "bob")
	shop := r.createApp(bob, testSLA("shop"), "shop")

	before := r.snapshot(admin)
	for _, tc := range []struct {
		allow []string
		field string
	}{
		{[]string{"bob/shop/web/x"}, "applications[0].microservices[0].allow_from[0]"},
		{[]string{"bob", "bo b"}, "applications[0].microservices[0].allow_from[1]"},
		{[]string{"bob/sh-op"}, "applications[0].microservices[0].allow_from[0]"},
		{[]string{"bob", "bob"}, "applications[0].microservices[0].allow_from[1]"},
	} {
		resp := r.do("POST", "/api/application", alice, withAllowFrom("site", tc.allow))
		if resp.Status != http.StatusBadRequest {
			t.Errorf("allow_from %q: want 400, got %s", tc.allow, resp)
			continue
		}
		if e := resp.errorBody(t); e.Field != tc.field {
			t.Errorf("allow_from %q: error field %q, want %q (%s)", tc.allow, e.Field, tc.field, resp)
		}
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}

	allow := []string{"carol", "bob/shop/db"}
	site := r.createApp(alice, withAllowFrom("site", allow), "site")
	check := func(when string) {
		t.Helper()
		var s api.Service
		r.must("GET", "/api/service/"+site.Microservices[0], alice, nil, &s)
		if !slices.Equal(s.AllowFrom, allow) {
			t.Errorf("%s: allow_from %q, want %q", when, s.AllowFrom, allow)
		}
	}
	check("created")
	r.restart(false)
	admin = r.login("Admin", "tenancy-admin-password").Token
	check("after a restart")

	reg, _ := r.clusterWithNode(t, "edge", wire.Resources{MilliCPU: 8000, MemoryMB: 8192})
	var shopSvcs []api.Service
	r.must("GET", "/api/services/"+shop.ApplicationID, admin, nil, &shopSvcs)
	db := ""
	for _, s := range shopSvcs {
		if s.MicroserviceName == "db" {
			db = s.MicroserviceID
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var d wire.ClusterDesired
		r.must("GET", "/api/cluster/desired?wait=1s", reg.Credential, nil, &d)
		tenants := map[string]string{}
		var web *wire.ServiceRoute
		for i, rt := range d.Network.Services {
			tenants[rt.ServiceID] = rt.Tenant
			if rt.ServiceID == site.Microservices[0] {
				web = &d.Network.Services[i]
			}
		}
		if web != nil {
			if !slices.Equal(web.AllowUsers, []string{"carol"}) || !slices.Equal(web.AllowServices, []string{db}) {
				t.Errorf("route of alice's web: users %q services %q, want [carol] [%s]", web.AllowUsers, web.AllowServices, db)
			}
			if tenants[site.Microservices[1]] != "alice" || tenants[db] != "bob" {
				t.Errorf("route tenants %v", tenants)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's service never reached the cluster's service table: %+v", d.Network.Services)
		}
	}
}
