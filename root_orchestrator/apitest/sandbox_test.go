package apitest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// withSecurity returns testSLA(app) with the security block sec on its
// first service ("web").
func withSecurity(app string, sec map[string]any) map[string]any {
	return withField(app, "security", sec)
}

// withField returns testSLA(app) with field set to v on its first service
// ("web").
func withField(app, field string, v any) map[string]any {
	body := testSLA(app)
	ms := body["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
	ms[0].(map[string]any)[field] = v
	return body
}

// TestSandboxEscalationIsForAdmins: a user's SLA that asks for a
// privileged container or added capabilities is refused with 403 naming
// the field and stores nothing; a pids limit and 32-bit system calls are
// anyone's to ask for; an
// admin's application gets what it asks, shown by the API, kept across a
// restart and sent to the cluster in the instance spec.
func TestSandboxEscalationIsForAdmins(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=sandbox-admin-password"})
	admin := r.login("Admin", "sandbox-admin-password").Token
	alice := r.newUser(admin, "alice")
	own := r.createApp(alice, testSLA("own"), "own")

	before := r.snapshot(admin)
	addService := func(sec map[string]any) map[string]any {
		body := withSecurity("own", sec)
		a := body["applications"].([]any)[0].(map[string]any)
		a["applicationID"] = own.ApplicationID
		a["microservices"] = a["microservices"].([]any)[:1]
		a["microservices"].([]any)[0].(map[string]any)["microservice_name"] = "extra"
		return body
	}
	for _, tc := range []struct {
		name, path string
		body       map[string]any
	}{
		{"privileged application", "/api/application", withSecurity("priv", map[string]any{"privileged": true})},
		{"cap_add application", "/api/application", withSecurity("caps", map[string]any{"cap_add": []string{"NET_RAW"}})},
		{"privileged service", "/api/service", addService(map[string]any{"privileged": true, "pids_limit": 10})},
		{"cap_add service", "/api/service", addService(map[string]any{"cap_add": []string{"SYS_ADMIN"}})},
	} {
		resp := r.do("POST", tc.path, alice, tc.body)
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s by a user: want 403, got %s", tc.name, resp)
			continue
		}
		if e := resp.errorBody(t); e.Field != "applications[0].microservices[0].security" {
			t.Errorf("%s: error field %q, want the security field (%s)", tc.name, e.Field, resp)
		}
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}

	// A pids limit and 32-bit system calls are not an escalation.
	limited := r.createApp(alice, withSecurity("limited", map[string]any{"pids_limit": 64, "compat32": true}), "limited")
	checkLimited := func(when string) {
		t.Helper()
		var svc api.Service
		r.must("GET", "/api/service/"+limited.Microservices[0], admin, nil, &svc)
		if svc.Security == nil || svc.Security.PidsLimit != 64 || !svc.Security.Compat32 || svc.Security.Privileged || len(svc.Security.CapAdd) != 0 {
			t.Errorf("%s: user's pids_limit and compat32 service: security %+v", when, svc.Security)
		}
	}
	checkLimited("created")

	// The admin gets privileged and capabilities, named canonically once.
	priv := r.createApp(admin, withSecurity("priv", map[string]any{
		"privileged": true, "cap_add": []string{"net_admin", "CAP_NET_ADMIN", "SYS_TIME"}, "compat32": true}), "priv")
	want := api.Security{Privileged: true, CapAdd: []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}, Compat32: true}
	check := func(when string) {
		t.Helper()
		var s api.Service
		r.must("GET", "/api/service/"+priv.Microservices[0], admin, nil, &s)
		if s.Security == nil || s.Security.Privileged != want.Privileged || !slices.Equal(s.Security.CapAdd, want.CapAdd) || s.Security.Compat32 != want.Compat32 {
			t.Errorf("%s: admin's service security %+v, want %+v", when, s.Security, want)
		}
		var plain api.Service
		r.must("GET", "/api/service/"+priv.Microservices[1], admin, nil, &plain)
		if plain.Security != nil {
			t.Errorf("%s: a service without a security field shows %+v", when, plain.Security)
		}
	}
	check("created")
	r.restart(false)
	admin = r.login("Admin", "sandbox-admin-password").Token
	check("after a restart")
	checkLimited("after a restart")

	// The cluster gets it in the instance spec.
	reg, _ := r.clusterWithNode(t, "edge", wire.Resources{MilliCPU: 8000, MemoryMB: 8192})
	r.must("POST", "/api/service/"+priv.Microservices[0]+"/instance", admin, nil, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var d wire.ClusterDesired
		r.must("GET", "/api/cluster/desired?wait=1s", reg.Credential, nil, &d)
		var got *wire.Security
		found := false
		for _, in := range d.Instances {
			if in.ServiceID == priv.Microservices[0] {
				got, found = in.Security, true
			}
		}
		if found {
			if got == nil || !got.Privileged || !slices.Equal(got.CapAdd, want.CapAdd) || !got.Compat32 {
				t.Errorf("instance spec security %+v, want privileged with %v and compat32", got, want.CapAdd)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance never reached the cluster's desired set: %+v", d.Instances)
		}
	}
}
