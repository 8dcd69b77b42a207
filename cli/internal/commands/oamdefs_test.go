package commands

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestApplyComponentDefinitions: apply sends a file's ComponentDefinitions,
// each as written, before its Application; get componentdefinitions lists
// them; delete componentdefinition deletes one; two Applications in one
// file are refused before anything is sent.
func TestApplyComponentDefinitions(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		if r.URL.Path != "/api/auth/login" {
			sent = append(sent, r.Method+" "+r.URL.Path+" "+strings.SplitN(string(body), "\n", 2)[0])
		}
		mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "POST /api/oam/componentdefinitions":
			name := "va-wasm"
			if strings.Contains(string(body), "va-container") {
				name = "va-container"
			}
			_, _ = w.Write([]byte(`{"name":"` + name + `","kind":"definition","base_component":"video-analytics","workload":"worker","virtualization":"wasm"}`))
		case "POST /api/oam/applications":
			_, _ = w.Write([]byte(`{"name":"cameras","applicationID":"a1","application_name":"cameras","application_namespace":"default",
				"components":[{"name":"analytics","microserviceID":"s1","microservice_name":"analytics","replicas":2,"instances":2}],
				"workflow":{"phase":"running","step":"deploy","steps":[{"name":"deploy","components":["analytics"],"phase":"running"}]}}`))
		case "GET /api/oam/componentdefinitions":
			_, _ = w.Write([]byte(`[{"name":"worker","kind":"builtin","description":"d","properties":[]},
				{"name":"va-wasm","kind":"definition","base_component":"video-analytics","workload":"worker","virtualization":"wasm","image":"https://h/va.wasm"}]`))
		case "DELETE /api/oam/componentdefinitions/va-wasm":
			_, _ = w.Write([]byte(`{"message":"component definition deleted"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), "v0", append([]string{"--config", dir, "--server", srv.URL}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errs := run("", "login", "-u", "alice", "-p", "pw"); code != ExitOK {
		t.Fatalf("login: %d %s", code, errs)
	}
	example, err := os.ReadFile("../../../sla_examples/oam/video-analytics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(string(example), "apply", "-f", "-", "--no-wait")
	if code != ExitOK || !strings.Contains(out, "component definition va-container registered") ||
		!strings.Contains(out, "component definition va-wasm registered") || !strings.Contains(out, "OAM application cameras created") {
		t.Errorf("apply: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = run("", "get", "componentdefinitions")
	if code != ExitOK || !strings.Contains(out, "va-wasm") || !strings.Contains(out, "video-analytics") || !strings.Contains(out, "BASE") {
		t.Errorf("get componentdefinitions: exit %d, %q, %q", code, out, errs)
	}
	if code, out, errs := run("", "delete", "componentdefinition", "va-wasm"); code != ExitOK || !strings.Contains(out, "va-wasm deleted") {
		t.Errorf("delete: exit %d, %q, %q", code, out, errs)
	}
	app := string(example[strings.LastIndex(string(example), "apiVersion: core.oam.dev/v1beta1\nkind: Application"):])
	if code, _, errs := run(app+"---\n"+app, "apply", "-f", "-"); code != ExitUsage || !strings.Contains(errs, "2 Applications") {
		t.Errorf("two applications: exit %d, %q", code, errs)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"POST /api/oam/componentdefinitions # An overloaded component (Flocky's BaseComponent): two ComponentDefinitions",
		"POST /api/oam/componentdefinitions apiVersion: core.oam.dev/v1beta1",
		"POST /api/oam/applications apiVersion: core.oam.dev/v1beta1",
		"GET /api/oam/componentdefinitions ",
		"DELETE /api/oam/componentdefinitions/va-wasm ",
	}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
}
