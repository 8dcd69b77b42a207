package apitest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// TestJobLists: a service's job list from the SLA, read, replaced, added
// to and shrunk through the API and its Go client; bad changes are refused
// with the field and store nothing; others' services stay hidden; the list
// and its version survive a restart.
func TestJobLists(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	alice := r.newUser(admin, "alice")
	doc := testSLA("pool")
	web := doc["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)
	web["jobs"], web["jobs_lease_s"] = []string{"cam-1", "cam-2"}, 10
	app := r.createApp(alice, doc, "pool")
	svc := app.Microservices[0]
	path := "/api/service/" + svc + "/jobs"

	check := func(what string, got *api.ServiceJobs, jobs []string, version int64) {
		t.Helper()
		if got.ServiceID != svc || !slices.Equal(got.Jobs, jobs) || got.Version != version || got.LeaseS != 10 {
			t.Fatalf("%s: %+v; want jobs %q at version %d, lease 10", what, got, jobs, version)
		}
		// No instance runs: every job is unowned.
		if !slices.Equal(got.Unowned, jobs) || len(got.Assignment) != 0 {
			t.Errorf("%s: unowned %q, assignment %v", what, got.Unowned, got.Assignment)
		}
	}
	var got api.ServiceJobs
	r.must("GET", path, alice, nil, &got)
	check("from the SLA", &got, []string{"cam-1", "cam-2"}, 1)

	ctx, cancel := callCtx()
	defer cancel()
	c := r.client(alice)
	sj, err := c.SetJobs(ctx, svc, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	check("set", sj, []string{"x", "y", "z"}, 2)
	if sj, err = c.AddJobs(ctx, svc, []string{"w", "cam/1 ü", "a%b"}); err != nil {
		t.Fatal(err)
	}
	check("add", sj, []string{"x", "y", "z", "w", "cam/1 ü", "a%b"}, 3)
	if sj, err = c.RemoveJob(ctx, svc, "cam/1 ü"); err != nil {
		t.Fatal(err)
	}
	check("remove an escaped name", sj, []string{"x", "y", "z", "w", "a%b"}, 4)
	if sj, err = c.RemoveJob(ctx, svc, "a%b"); err != nil {
		t.Fatal(err)
	}
	check("remove a name with %", sj, []string{"x", "y", "z", "w"}, 5)
	if sj, err = c.SetJobs(ctx, svc, []string{"x", "y", "z", "w"}); err != nil {
		t.Fatal(err)
	}
	check("the same list again", sj, []string{"x", "y", "z", "w"}, 5)

	before := r.snapshot(admin)
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"duplicate", "PUT", path, map[string]any{"jobs": []string{"a", "a"}}, http.StatusBadRequest, "jobs[1]"},
		{"empty name", "POST", path, map[string]any{"jobs": []string{""}}, http.StatusBadRequest, "jobs[0]"},
		{"comma", "PUT", path, map[string]any{"jobs": []string{"a,b"}}, http.StatusBadRequest, "jobs[0]"},
		{"no jobs field", "PUT", path, map[string]any{"job": []string{"a"}}, http.StatusBadRequest, "jobs"},
		{"not a list", "PUT", path, map[string]any{"jobs": "a"}, http.StatusBadRequest, "jobs"},
		{"already there", "POST", path, map[string]any{"jobs": []string{"new", "x"}}, http.StatusConflict, "jobs[1]"},
		{"not in the list", "DELETE", path + "/nope", nil, http.StatusNotFound, "job"},
		{"unknown service", "GET", "/api/service/000000000000000000000000/jobs", nil, http.StatusNotFound, ""},
	} {
		resp := r.do(tc.method, tc.path, alice, tc.body)
		if resp.Status != tc.status {
			t.Errorf("%s: %s; want %d", tc.name, resp, tc.status)
			continue
		}
		if e := resp.errorBody(t); e.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.name, e.Field, tc.field, e.Error)
		}
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("refused changes changed the state")
	}
	r.must("GET", path, alice, nil, &got)
	check("after the refused changes", &got, []string{"x", "y", "z", "w"}, 5)

	// Another user sees nothing of it.
	bob := r.newUser(admin, "bob")
	if resp := r.do("GET", path, bob, nil); resp.Status != http.StatusNotFound {
		t.Errorf("bob reads alice's jobs: %s", resp)
	}
	if resp := r.do("PUT", path, bob, api.JobList{Jobs: []string{"b"}}); resp.Status != http.StatusNotFound {
		t.Errorf("bob sets alice's jobs: %s", resp)
	}

	r.restart(false)
	r.must("GET", path, alice, nil, &got)
	check("after a restart", &got, []string{"x", "y", "z", "w"}, 5)
	raw := r.do("GET", path, alice, nil)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw.Body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"service_id", "jobs", "version", "lease_s", "assignment_version", "assignment", "instances", "unowned"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("answer lacks %q: %s", f, raw.Body)
		}
	}
}
