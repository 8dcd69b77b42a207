package commands

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestEditCommand: edit sends the file's microservice of the service's
// name, with the service's application id, to PUT /api/service/{id}, and
// waits until the rollout is done; a stopped rollout, a refusal of the
// root and a file without the service are errors.
func TestEditCommand(t *testing.T) {
	var mu sync.Mutex
	var sent []map[string]any
	polls := 0
	failing := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		svc := func(rollout string) string {
			return `{"microserviceID":"s1","microservice_name":"web","applicationID":"a1","app_name":"shop",` +
				`"running_instances":1,"desired_instances":1,"instance_list":[]` + rollout + `}`
		}
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "GET /api/service/s1":
			polls++
			switch {
			case failing:
				_, _ = w.Write([]byte(svc(`,"rollout":{"replicas":1,"outdated":1,"message":"new instance 3 FAILED: exit 1; the old instances keep running"}`)))
			case polls < 3:
				_, _ = w.Write([]byte(svc(`,"rollout":{"replicas":1,"outdated":1}`)))
			default:
				_, _ = w.Write([]byte(svc("")))
			}
		case "PUT /api/service/s1":
			var d map[string]any
			if err := json.Unmarshal(body, &d); err != nil {
				t.Errorf("PUT body: %v", err)
			}
			sent = append(sent, d)
			if strings.Contains(string(body), `"memory":-1`) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"applications[0].microservices[0].memory: must be at least 1","field":"applications[0].microservices[0].memory"}`))
				return
			}
			polls = 0
			_, _ = w.Write([]byte(svc(`,"rollout":{"replicas":1,"outdated":1}`)))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
		}
	}))
	defer srv.Close()
	run := cliAt(t, srv.URL, "-p", "pw")
	dir := t.TempDir()
	file := func(name, mem string) string {
		p := filepath.Join(dir, name)
		sla := `{"sla_version":"v2.0","applications":[{"applicationID":"","application_name":"shop","application_namespace":"test","microservices":[
			{"microservice_name":"db","microservice_namespace":"test","virtualization":"container","code":"redis","memory":100,"vcpus":1},
			{"microservice_name":"web","microservice_namespace":"test","virtualization":"container","code":"nginx:1.27","memory":` + mem + `,"vcpus":1}]}]}`
		if err := os.WriteFile(p, []byte(sla), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	code, out, errs := run("edit", "s1", "-f", file("ok.json", "100"))
	if code != ExitOK || !strings.Contains(out, "shop/web edited: replacing 1 instance one at a time") ||
		!strings.Contains(out, "every instance runs the new spec") {
		t.Fatalf("edit: %d %q %q", code, out, errs)
	}
	mu.Lock()
	app := sent[0]["applications"].([]any)[0].(map[string]any)
	ms := app["microservices"].([]any)
	mu.Unlock()
	if app["applicationID"] != "a1" || len(ms) != 1 || ms[0].(map[string]any)["code"] != "nginx:1.27" {
		t.Errorf("sent %+v", app)
	}

	if code, _, errs := run("edit", "s1", "-f", file("bad.json", "-1")); code != ExitError || !strings.Contains(errs, "memory: must be at least 1") {
		t.Errorf("refused edit: %d %q", code, errs)
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	if code, _, errs := run("edit", "s1", "-f", file("ok.json", "100")); code != ExitError || !strings.Contains(errs, "the rollout stopped: new instance 3 FAILED") {
		t.Errorf("stopped rollout: %d %q", code, errs)
	}
	other := filepath.Join(dir, "other.json")
	_ = os.WriteFile(other, []byte(`{"applications":[{"application_name":"shop","microservices":[{"microservice_name":"db"},{"microservice_name":"cache"}]}]}`), 0o600)
	if code, _, errs := run("edit", "s1", "-f", other); code != ExitError || !strings.Contains(errs, "0 microservices named web") {
		t.Errorf("a file without the service: %d %q", code, errs)
	}
}
