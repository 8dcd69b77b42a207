package commands

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestApplyOAMManifest: apply sends a file with apiVersion and kind to the
// OAM endpoint as it is, and waits until its workflow is done; an SLA
// still goes to /api/application/.
func TestApplyOAMManifest(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"Admin","role":"admin"}`))
		case "POST /api/oam/applications", "POST /api/application/", "PUT /api/oam/applications/first-vela-app":
			mu.Lock()
			posted = append(posted, r.URL.Path+" "+string(body))
			mu.Unlock()
			if r.URL.Path == "/api/application/" {
				_, _ = w.Write([]byte(`[]`))
				return
			}
			if r.Method == http.MethodPost && len(posted) > 2 {
				w.WriteHeader(http.StatusConflict)
				_, _ = w.Write([]byte(`{"error":"OAM application first-vela-app already exists","field":"metadata.name"}`))
				return
			}
			_, _ = w.Write([]byte(`{"name":"first-vela-app","applicationID":"a1","application_name":"firstvelaapp","application_namespace":"default",
				"components":[{"name":"express-server","microserviceID":"s1","microservice_name":"expressserver","replicas":1,"instances":1}],
				"workflow":{"phase":"running","step":"deploy","steps":[{"name":"deploy","components":["express-server"],"phase":"running"}]}}`))
		case "GET /api/oam/applications/first-vela-app":
			_, _ = w.Write([]byte(`{"name":"first-vela-app","applicationID":"a1","components":[{"name":"express-server","microserviceID":"s1","replicas":1,"instances":1}],
				"workflow":{"phase":"succeeded","steps":[{"name":"deploy","components":["express-server"],"phase":"succeeded"}]}}`))
		case "GET /api/applications/":
			_, _ = w.Write([]byte(`[]`))
		case "GET /api/service/s1":
			_, _ = w.Write([]byte(`{"microserviceID":"s1","microservice_name":"expressserver","app_name":"firstvelaapp",
				"instance_list":[{"instance_number":0,"status":"RUNNING","node_name":"n1"}]}`))
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
	if code, _, errs := run("", "login", "-p", "pw"); code != ExitOK {
		t.Fatalf("login: %d %s", code, errs)
	}
	manifest := "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: first-vela-app\n"
	code, out, errs := run(manifest, "apply", "-f", "-", "--timeout", "10s")
	if code != ExitOK || !strings.Contains(out, "OAM application first-vela-app created") || !strings.Contains(out, "step deploy (express-server): running\nstep deploy (express-server): succeeded\nevery step done") {
		t.Errorf("apply: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := run(`{"sla_version":"v2.0","applications":[]}`, "apply", "-f", "-", "--no-wait"); code != ExitOK {
		t.Errorf("apply of an SLA: exit %d, %s", code, errs)
	}
	// The same name again: the manifest is the next revision.
	manifest += "spec: {components: [{name: express-server, type: webservice, properties: {image: x}}]}\n"
	if code, out, errs := run(manifest, "apply", "-f", "-", "--no-wait"); code != ExitOK || !strings.Contains(out, "updated to revision") {
		t.Errorf("second apply: exit %d, %q, %q", code, out, errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posted) != 4 || posted[0] != "/api/oam/applications "+manifest[:strings.Index(manifest, "spec:")] ||
		!strings.HasPrefix(posted[1], "/api/application/ ") || posted[3] != "/api/oam/applications/first-vela-app "+manifest {
		t.Errorf("posted %q", posted)
	}
}
