package apitest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// TestJobListFromURL: PUT and POST /api/service/{id}/jobs take {"url": ...}:
// the root fetches the list once (one job per line). By default only
// public addresses: a URL on loopback is refused with the reason and the
// flag that allows it, and nothing is stored or fetched; with
// --jobs-allow-net it is read. Invalid lists, both fields and others'
// services are refused without storing anything.
func TestJobListFromURL(t *testing.T) {
	var hits atomic.Int32
	lists := map[string]string{
		"/cams.txt": "cam-1\n cam-2 \n\ncam-3\n",
		"/more.txt": "cam-4\n",
		"/bad.txt":  "cam-1\ncam,2\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, ok := lists[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()

	setup := func(r *root) (string, string, string) {
		admin := r.adminToken()
		alice := r.newUser(admin, "alice")
		doc := testSLA("urls")
		web := doc["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)
		web["jobs"] = []string{"cam-0"}
		app := r.createApp(alice, doc, "urls")
		return admin, alice, "/api/service/" + app.Microservices[0] + "/jobs"
	}

	t.Run("public addresses only by default", func(t *testing.T) {
		r := startRoot(t, "", nil)
		admin, alice, path := setup(r)
		before := r.snapshot(admin)
		resp := r.do("PUT", path, alice, map[string]any{"url": srv.URL + "/cams.txt"})
		if e := resp.errorBody(t); resp.Status != http.StatusBadRequest || e.Field != "url" ||
			!strings.Contains(e.Error, "loopback") || !strings.Contains(e.Error, "--jobs-allow-net") {
			t.Errorf("a loopback URL: %s", resp)
		}
		if hits.Load() != 0 {
			t.Errorf("the root fetched a refused URL (%d requests)", hits.Load())
		}
		if r.snapshot(admin) != before {
			t.Error("a refused URL changed the state")
		}
	})

	t.Run("an allowed network", func(t *testing.T) {
		r := startRoot(t, "", nil, "--jobs-allow-net", "127.0.0.0/8")
		admin, alice, path := setup(r)
		var got api.ServiceJobs
		r.must("PUT", path, alice, map[string]any{"url": srv.URL + "/cams.txt"}, &got)
		if !slices.Equal(got.Jobs, []string{"cam-1", "cam-2", "cam-3"}) || got.Version != 2 {
			t.Errorf("set from a URL: %+v", got)
		}
		r.must("POST", path, alice, map[string]any{"url": srv.URL + "/more.txt"}, &got)
		if !slices.Equal(got.Jobs, []string{"cam-1", "cam-2", "cam-3", "cam-4"}) || got.Version != 3 {
			t.Errorf("added from a URL: %+v", got)
		}
		before := r.snapshot(admin)
		bob := r.newUser(admin, "bob")
		n := hits.Load()
		for _, tc := range []struct {
			name, method string
			token        string
			body         any
			status       int
			field        string
		}{
			{"invalid list", "PUT", alice, map[string]any{"url": srv.URL + "/bad.txt"}, http.StatusBadRequest, "url[1]"},
			{"not found", "PUT", alice, map[string]any{"url": srv.URL + "/nope.txt"}, http.StatusBadRequest, "url"},
			{"both", "PUT", alice, map[string]any{"url": srv.URL + "/cams.txt", "jobs": []string{"a"}}, http.StatusBadRequest, "url"},
			{"not a URL", "PUT", alice, map[string]any{"url": "file:///etc/passwd"}, http.StatusBadRequest, "url"},
			{"another's service", "PUT", bob, map[string]any{"url": srv.URL + "/cams.txt"}, http.StatusNotFound, ""},
		} {
			resp := r.do(tc.method, path, tc.token, tc.body)
			if resp.Status != tc.status {
				t.Errorf("%s: %s; want %d", tc.name, resp, tc.status)
				continue
			}
			if e := resp.errorBody(t); e.Field != tc.field {
				t.Errorf("%s: field %q, want %q (%s)", tc.name, e.Field, tc.field, e.Error)
			}
		}
		if got := hits.Load() - n; got != 2 {
			t.Errorf("%d fetches for the refused changes, want 2 (the invalid list and the missing one)", got)
		}
		if r.snapshot(admin) != before {
			t.Error("refused changes changed the state")
		}
	})
}
