package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/sla/slatest"
	"github.com/thicket-edge/thicket/contract/wire"
)

func TestApplicationLifecycle(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	seed, err := os.ReadFile("../../sla_examples/clientsrvr.json")
	if err != nil {
		t.Fatal(err)
	}
	app := r.createApp(admin, seed, "clientsrvr")
	if app.UserID != "Admin" || app.ApplicationNamespace != "test" || len(app.Microservices) != 2 {
		t.Fatalf("created application = %+v", app)
	}

	var got api.Application
	r.must("GET", "/api/application/"+app.ApplicationID, admin, nil, &got)
	if got.ApplicationID != app.ApplicationID || got.ApplicationDesc != app.ApplicationDesc {
		t.Errorf("GET application = %+v, want %+v", got, app)
	}

	var svcs []api.Service
	r.must("GET", "/api/services/"+app.ApplicationID, admin, nil, &svcs)
	if len(svcs) != 2 {
		t.Fatalf("services = %d, want 2", len(svcs))
	}
	byName := map[string]api.Service{}
	for _, s := range svcs {
		byName[s.MicroserviceName] = s
		if s.ApplicationID != app.ApplicationID || s.AppName != "clientsrvr" || s.AppNamespace != "test" {
			t.Errorf("service %s not linked to its application: %+v", s.MicroserviceName, s)
		}
		if s.Status != api.StatusCreated || len(s.InstanceList) != 0 {
			t.Errorf("new service %s: status %q with %d instances", s.MicroserviceName, s.Status, len(s.InstanceList))
		}
	}
	nginx, curl := byName["nginx"], byName["curl"]
	if nginx.RRIP != "10.30.55.55" || nginx.Port != "80:80/tcp" || nginx.Memory != 100 || nginx.Code != "docker.io/library/nginx:latest" {
		t.Errorf("nginx service = %+v", nginx)
	}
	// A service without rr_ip gets one from the service network.
	ip, err := netip.ParseAddr(curl.RRIP)
	if err != nil || !sla.ServiceNetwork.Contains(ip) || curl.RRIP == nginx.RRIP {
		t.Errorf("allocated rr_ip %q: not a fresh address in %s", curl.RRIP, sla.ServiceNetwork)
	}
	if len(curl.Cmd) != 3 || curl.Cmd[0] != "sh" {
		t.Errorf("curl cmd = %q", curl.Cmd)
	}

	// Update the application's metadata; services follow the new name.
	var upd api.Application
	r.must("PUT", "/api/application/"+app.ApplicationID, admin,
		map[string]string{"application_name": "renamed", "application_desc": "new text"}, &upd)
	if upd.ApplicationName != "renamed" || upd.ApplicationDesc != "new text" || upd.ApplicationNamespace != "test" {
		t.Errorf("updated application = %+v", upd)
	}
	var s api.Service
	r.must("GET", "/api/service/"+nginx.MicroserviceID, admin, nil, &s)
	if s.AppName != "renamed" {
		t.Errorf("service app_name after rename = %q", s.AppName)
	}
	if resp := r.do("PUT", "/api/application/"+app.ApplicationID, admin, map[string]string{"application_name": "bad name!"}); resp.Status != http.StatusBadRequest || resp.errorBody(t).Field != "application_name" {
		t.Errorf("bad rename: want 400 on application_name, got %s", resp)
	}

	// Instances: numbers count up and are not reused.
	for want := range 3 {
		var ans struct {
			InstanceNumber int `json:"instance_number"`
		}
		r.must("POST", "/api/service/"+nginx.MicroserviceID+"/instance", admin, nil, &ans)
		if ans.InstanceNumber != want {
			t.Errorf("instance number %d, want %d", ans.InstanceNumber, want)
		}
	}
	r.must("DELETE", "/api/service/"+nginx.MicroserviceID+"/instance/1", admin, nil, nil)
	if resp := r.do("DELETE", "/api/service/"+nginx.MicroserviceID+"/instance/1", admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("delete removed instance again: want 404, got %s", resp)
	}
	if resp := r.do("DELETE", "/api/service/"+nginx.MicroserviceID+"/instance/x", admin, nil); resp.Status != http.StatusBadRequest {
		t.Errorf("delete instance x: want 400, got %s", resp)
	}
	var ans struct {
		InstanceNumber int `json:"instance_number"`
	}
	r.must("POST", "/api/service/"+nginx.MicroserviceID+"/instance", admin, nil, &ans)
	if ans.InstanceNumber != 3 {
		t.Errorf("instance number after a delete = %d, want 3", ans.InstanceNumber)
	}
	// With no cluster joined, the root scheduler says so on each instance.
	s = r.waitService(admin, nginx.MicroserviceID, "without capacity", func(s api.Service) bool {
		return allInstances(s, wire.StatusNoCapacity)
	})
	var nums []int
	for _, in := range s.InstanceList {
		nums = append(nums, in.InstanceNumber)
		if !strings.Contains(in.StatusDetail, "no cluster") {
			t.Errorf("instance %d detail %q does not say that no cluster joined", in.InstanceNumber, in.StatusDetail)
		}
	}
	if fmt.Sprint(nums) != "[0 2 3]" || s.Status != wire.StatusNoCapacity {
		t.Errorf("instances %v status %q, want [0 2 3] NO_CAPACITY", nums, s.Status)
	}

	// Add a service to the application, then delete it.
	svcSLA := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
		"applicationID": app.ApplicationID, "application_name": "renamed", "application_namespace": "test",
		"microservices": []any{map[string]any{"microservice_name": "cache", "microservice_namespace": "test",
			"virtualization": "container", "code": "docker.io/library/redis:7", "memory": 64, "vcpus": 1,
			"addresses": map[string]string{"rr_ip": "10.30.9.9"}}},
	}}}
	var created struct {
		JobID    string        `json:"job_id"`
		Services []api.Service `json:"services"`
	}
	r.must("POST", "/api/service/", admin, svcSLA, &created)
	if len(created.Services) != 1 || created.JobID != created.Services[0].MicroserviceID || created.Services[0].RRIP != "10.30.9.9" {
		t.Fatalf("POST /api/service answer = %+v", created)
	}
	if resp := r.do("POST", "/api/service/", admin, svcSLA); resp.Status != http.StatusConflict {
		t.Errorf("same service twice: want 409, got %s", resp)
	}
	r.must("GET", "/api/application/"+app.ApplicationID, admin, nil, &got)
	if len(got.Microservices) != 3 {
		t.Errorf("application lists %d services after adding one, want 3", len(got.Microservices))
	}
	r.must("DELETE", "/api/service/"+created.JobID, admin, nil, nil)
	if resp := r.do("GET", "/api/service/"+created.JobID, admin, nil); resp.Status != http.StatusNotFound {
		t.Errorf("deleted service: want 404, got %s", resp)
	}
	r.must("GET", "/api/application/"+app.ApplicationID, admin, nil, &got)
	if len(got.Microservices) != 2 {
		t.Errorf("application lists %d services after deleting one, want 2", len(got.Microservices))
	}
	// Its service IP is free again.
	r.must("POST", "/api/service/", admin, svcSLA, &created)

	// Delete the application: services and instances go with it.
	r.must("DELETE", "/api/application/"+app.ApplicationID, admin, nil, nil)
	for _, id := range append(app.Microservices, created.JobID) {
		if resp := r.do("GET", "/api/service/"+id, admin, nil); resp.Status != http.StatusNotFound {
			t.Errorf("service %s after application delete: want 404, got %s", id, resp)
		}
	}
	var apps []api.Application
	r.must("GET", "/api/applications/", admin, nil, &apps)
	if len(apps) != 0 {
		t.Errorf("applications after delete = %+v", apps)
	}
	// Its service IPs are free again: the seed SLA can be created anew.
	r.createApp(admin, seed, "clientsrvr")
}

func TestUsersSeeOnlyTheirOwnApplications(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice, bob := r.newUser(admin, "alice"), r.newUser(admin, "bob")
	a := r.createApp(alice, testSLA("aliceapp"), "aliceapp")
	b := r.createApp(bob, testSLA("bobapp"), "bobapp")
	if a.UserID != "alice" || b.UserID != "bob" {
		t.Fatalf("owners: %q %q", a.UserID, b.UserID)
	}
	// Both may use the same application name: names are per user.
	r.createApp(bob, testSLA("aliceapp"), "aliceapp")

	var apps []api.Application
	r.must("GET", "/api/applications", alice, nil, &apps)
	if len(apps) != 1 || apps[0].ApplicationID != a.ApplicationID {
		t.Errorf("alice sees %+v", apps)
	}
	r.must("GET", "/api/applications/alice", alice, nil, &apps)
	if len(apps) != 1 {
		t.Errorf("alice's own list by user id: %+v", apps)
	}
	if resp := r.do("GET", "/api/applications/bob", alice, nil); resp.Status != http.StatusForbidden {
		t.Errorf("alice lists bob's applications: want 403, got %s", resp)
	}
	r.must("GET", "/api/applications/", admin, nil, &apps)
	if len(apps) != 3 {
		t.Errorf("admin sees %d applications, want 3", len(apps))
	}
	r.must("GET", "/api/applications/bob", admin, nil, &apps)
	if len(apps) != 2 {
		t.Errorf("admin lists bob's: %d, want 2", len(apps))
	}

	bsvc := b.Microservices[0]
	before := r.snapshot(admin)
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/application/" + b.ApplicationID},
		{"PUT", "/api/application/" + b.ApplicationID},
		{"DELETE", "/api/application/" + b.ApplicationID},
		{"GET", "/api/services/" + b.ApplicationID},
		{"GET", "/api/service/" + bsvc},
		{"DELETE", "/api/service/" + bsvc},
		{"POST", "/api/service/" + bsvc + "/instance"},
		{"DELETE", "/api/service/" + bsvc + "/instance/0"},
	} {
		resp := r.do(req.method, req.path, alice, map[string]string{"application_desc": "hijacked"})
		if resp.Status != http.StatusNotFound {
			t.Errorf("alice %s %s: want 404, got %s", req.method, req.path, resp)
		}
	}
	// Nor can she add services to bob's application.
	body := testSLA("x")
	body["applications"].([]any)[0].(map[string]any)["applicationID"] = b.ApplicationID
	if resp := r.do("POST", "/api/service", alice, body); resp.Status != http.StatusNotFound {
		t.Errorf("alice adds a service to bob's app: want 404, got %s", resp)
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("alice's refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}
	// The admin may act on anyone's.
	r.must("POST", "/api/service/"+bsvc+"/instance", admin, nil, nil)
	r.must("DELETE", "/api/application/"+b.ApplicationID, admin, nil, nil)
}

// TestServiceListIsOwnerScoped checks GET /api/services/: each user gets
// exactly the services of their own applications, an admin everyone's, all
// oldest first; none is [] (not null); without a token it is 401.
func TestServiceListIsOwnerScoped(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice, bob := r.newUser(admin, "alice"), r.newUser(admin, "bob")
	paths := []string{"/api/services", "/api/services/"}
	empty := func(token, who string) {
		t.Helper()
		for _, path := range paths {
			if resp := r.do("GET", path, token, nil); resp.Status != http.StatusOK || strings.TrimSpace(string(resp.Body)) != "[]" {
				t.Errorf("%s GET %s with no services: want 200 [], got %s", who, path, resp)
			}
		}
	}
	empty(admin, "admin")
	empty(alice, "alice")

	first := r.createApp(alice, testSLA("first"), "first")
	bobs := r.createApp(bob, testSLA("shared"), "shared") // same name as alice's next
	r.createApp(alice, testSLA("shared"), "shared")
	// A service added later to alice's first application comes last.
	r.must("POST", "/api/service/", alice, map[string]any{"sla_version": "v2.0", "applications": []any{map[string]any{
		"applicationID": first.ApplicationID, "microservices": []any{map[string]any{"microservice_name": "late",
			"microservice_namespace": "test", "virtualization": "container", "code": "docker.io/library/redis:7", "memory": 64}},
	}}}, nil)

	want := map[string][]string{
		"alice": {"alice first/web", "alice first/db", "alice shared/web", "alice shared/db", "alice first/late"},
		"bob":   {"bob shared/web", "bob shared/db"},
		"admin": {"alice first/web", "alice first/db", "bob shared/web", "bob shared/db",
			"alice shared/web", "alice shared/db", "alice first/late"},
	}
	tokens := map[string]string{"alice": alice, "bob": bob, "admin": admin}
	for who, token := range tokens {
		for _, path := range paths {
			var svcs []api.Service
			r.must("GET", path, token, nil, &svcs)
			got := make([]string, len(svcs))
			for i, s := range svcs {
				got[i] = s.UserID + " " + s.AppName + "/" + s.MicroserviceName
				if s.Status != api.StatusCreated || s.InstanceList == nil {
					t.Errorf("%s GET %s: service %s has status %q, instance_list %v", who, path, got[i], s.Status, s.InstanceList)
				}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want[who]) {
				t.Errorf("%s GET %s = %q, want %q", who, path, got, want[who])
			}
		}
	}

	// Bob's last application goes: his list is empty again, not null.
	r.must("DELETE", "/api/application/"+bobs.ApplicationID, bob, nil, nil)
	empty(bob, "bob")

	for _, path := range paths {
		if resp := r.do("GET", path, "", nil); resp.Status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: want 401, got %s", path, resp)
		}
	}
}

func TestServiceIPsAreUniqueAcrossApplications(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")
	withIP := func(app, ip string) map[string]any {
		s := testSLA(app)
		ms := s["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
		ms[1].(map[string]any)["addresses"] = map[string]string{"rr_ip": ip}
		return s
	}
	r.createApp(admin, withIP("first", "10.30.1.1"), "first")
	before := r.snapshot(admin)
	// Another user, another application: the address is still taken.
	resp := r.do("POST", "/api/application/", alice, withIP("second", "10.30.1.1"))
	if resp.Status != http.StatusConflict {
		t.Fatalf("reused rr_ip: want 409, got %s", resp)
	}
	if f := resp.errorBody(t).Field; f != "applications[0].microservices[1].addresses.rr_ip" {
		t.Errorf("conflict field = %q", f)
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused SLA left something behind:\nbefore %s\nafter  %s", before, after)
	}
	// The first service of the refused SLA got an allocated address that
	// must have been released: creating many more works and nothing leaks.
	r.createApp(alice, withIP("second", "10.30.1.2"), "second")
	var svcs []api.Service
	seen := map[string]bool{}
	var apps []api.Application
	r.must("GET", "/api/applications/", admin, nil, &apps)
	for _, a := range apps {
		r.must("GET", "/api/services/"+a.ApplicationID, admin, nil, &svcs)
		for _, s := range svcs {
			if seen[s.RRIP] {
				t.Errorf("service IP %s given twice", s.RRIP)
			}
			seen[s.RRIP] = true
		}
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct service IPs, want 4", len(seen))
	}
	// A duplicate application name for the same user is a conflict too.
	if resp := r.do("POST", "/api/application/", admin, testSLA("first")); resp.Status != http.StatusConflict {
		t.Errorf("duplicate application: want 409, got %s", resp)
	}
}

func TestInvalidSLAsAreRefusedAndChangeNothing(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	r.createApp(admin, testSLA("existing"), "existing")
	before := r.snapshot(admin)
	cases := slatest.Invalid()
	if len(cases) < 25 {
		t.Fatalf("only %d invalid SLAs in the table", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			resp := r.do("POST", "/api/application/", admin, []byte(c.Body))
			if resp.Status != http.StatusBadRequest {
				t.Fatalf("want 400, got %s", resp)
			}
			if e := resp.errorBody(t); e.Field != c.Field {
				t.Errorf("field = %q, want %q (error %q)", e.Field, c.Field, e.Error)
			}
		})
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("invalid SLAs changed the store:\nbefore %s\nafter  %s", before, after)
	}
	// POST /api/service with bad bodies.
	var apps []api.Application
	r.must("GET", "/api/applications", admin, nil, &apps)
	appID := apps[0].ApplicationID
	svcBody := func(mut func(ms map[string]any)) []byte {
		ms := map[string]any{"microservice_name": "extra", "microservice_namespace": "test",
			"virtualization": "container", "code": "docker.io/library/redis:7", "memory": 64}
		mut(ms)
		b, _ := json.Marshal(map[string]any{"sla_version": "v2.0", "applications": []any{map[string]any{
			"applicationID": appID, "microservices": []any{ms}}}})
		return b
	}
	svcCases := []struct {
		name, field string
		body        []byte
		status      int
	}{
		{"bad port", "applications[0].microservices[0].port", svcBody(func(m map[string]any) { m["port"] = "80:" }), 400},
		{"negative memory", "applications[0].microservices[0].memory", svcBody(func(m map[string]any) { m["memory"] = -1 }), 400},
		{"bad virtualization", "applications[0].microservices[0].virtualization", svcBody(func(m map[string]any) { m["virtualization"] = "vm" }), 400},
		{"rr_ip outside", "applications[0].microservices[0].addresses.rr_ip", svcBody(func(m map[string]any) { m["addresses"] = map[string]string{"rr_ip": "10.31.0.1"} }), 400},
		{"no applicationID", "applications[0].applicationID", []byte(`{"sla_version":"v2.0","applications":[{"microservices":[{"microservice_name":"a","microservice_namespace":"b","virtualization":"container","code":"nginx"}]}]}`), 400},
		{"unknown application", "applications[0].applicationID", []byte(`{"sla_version":"v2.0","applications":[{"applicationID":"6b0000000000000000000000","microservices":[{"microservice_name":"a","microservice_namespace":"b","virtualization":"container","code":"nginx"}]}]}`), 404},
		{"name taken in the app", "applications[0].microservices[0].microservice_name", svcBody(func(m map[string]any) { m["microservice_name"] = "web" }), 409},
	}
	for _, c := range svcCases {
		t.Run("service/"+c.name, func(t *testing.T) {
			resp := r.do("POST", "/api/service/", admin, c.body)
			if resp.Status != c.status {
				t.Fatalf("want %d, got %s", c.status, resp)
			}
			if e := resp.errorBody(t); e.Field != c.field {
				t.Errorf("field = %q, want %q (error %q)", e.Field, c.field, e.Error)
			}
		})
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("invalid service SLAs changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

func TestOversizedBodiesAre413(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	big := `{"sla_version":"v2.0","pad":"` + strings.Repeat("x", 5<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("POST", r.URL+"/api/application/", body)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := r.httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked=%v: want 413, got %d", chunked, resp.StatusCode)
		}
	}
}
