package apitest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// The wire shapes of the reference system, written from its documentation
// independently of Thicket's own types: each listed field must be present
// with this JSON type. Extra fields are allowed.
type refTokens struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
}

type refApplication struct {
	ApplicationID        string   `json:"applicationID"`
	ApplicationName      string   `json:"application_name"`
	ApplicationNamespace string   `json:"application_namespace"`
	ApplicationDesc      string   `json:"application_desc"`
	UserID               string   `json:"userId"`
	Microservices        []string `json:"microservices"`
}

type refInstance struct {
	InstanceNumber  int    `json:"instance_number"`
	Status          string `json:"status"`
	StatusDetail    string `json:"status_detail"`
	ClusterID       string `json:"cluster_id"`
	ClusterLocation string `json:"cluster_location"`
	WorkerID        string `json:"worker_id"`
	HostIP          string `json:"host_ip"`
	HostPort        int    `json:"host_port"`
	PublicIP        string `json:"publicip"`
	Logs            string `json:"logs"`
	CPUPercent      string `json:"cpu_percent"`
	MemoryPercent   string `json:"memory_percent"`
	Disk            string `json:"disk"`
}

type refService struct {
	MicroserviceID        string        `json:"microserviceID"`
	MicroserviceName      string        `json:"microservice_name"`
	MicroserviceNamespace string        `json:"microservice_namespace"`
	ApplicationID         string        `json:"applicationID"`
	AppName               string        `json:"app_name"`
	AppNs                 string        `json:"app_ns"`
	Virtualization        string        `json:"virtualization"`
	Code                  string        `json:"code"`
	Port                  string        `json:"port"`
	RRIP                  string        `json:"RR_ip"`
	Memory                int           `json:"memory"`
	VCPUs                 int           `json:"vcpus"`
	VGPUs                 int           `json:"vgpus"`
	Environment           []string      `json:"environment"`
	Status                string        `json:"status"`
	StatusDetail          string        `json:"status_detail"`
	InstanceList          []refInstance `json:"instance_list"`
}

type refCluster struct {
	ID              string   `json:"_id"`
	ClusterName     string   `json:"cluster_name"`
	IP              string   `json:"ip"`
	Port            int      `json:"port"`
	ClusterLocation string   `json:"cluster_location"`
	Active          bool     `json:"active"`
	ActiveNodes     int      `json:"active_nodes"`
	TotalCPUCores   int      `json:"total_cpu_cores"`
	VCPUs           int      `json:"vcpus"`
	VGPUs           int      `json:"vgpus"`
	MemoryInMB      int      `json:"memory_in_mb"`
	VRAM            int      `json:"vram"`
	CPUPercent      float64  `json:"cpu_percent"`
	MemoryPercent   float64  `json:"memory_percent"`
	Virtualization  []string `json:"virtualization"`
}

// checkShape fails unless raw is a JSON object with every field of the
// struct type T, each decodable into the field's type with no conversion:
// a string id stays a string (not {"$oid": ...}), an int an int (not 1.0 or
// "1"), a list a list.
func checkShape[T any](t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	checkFields(t, what, raw, reflect.TypeFor[T]())
}

func checkFields(t *testing.T, what string, raw json.RawMessage, typ reflect.Type) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		t.Errorf("%s: not a JSON object: %s", what, raw)
		return
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		v, ok := obj[name]
		if !ok {
			t.Errorf("%s: field %q missing", what, name)
			continue
		}
		if string(v) == "null" {
			t.Errorf("%s: field %q is null", what, name)
			continue
		}
		// A list of objects: check each element's fields too.
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			var elems []json.RawMessage
			if err := json.Unmarshal(v, &elems); err != nil {
				t.Errorf("%s: field %q is not a list: %s", what, name, v)
				continue
			}
			for j, e := range elems {
				checkFields(t, what+"."+name+"["+itoa(j)+"]", e, f.Type.Elem())
			}
			continue
		}
		if err := json.Unmarshal(v, reflect.New(f.Type).Interface()); err != nil {
			t.Errorf("%s: field %q = %s: not a %s", what, name, v, f.Type)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func checkList[T any](t *testing.T, what string, body []byte, minLen int) {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		t.Errorf("%s: not a JSON list: %s", what, body)
		return
	}
	if len(list) < minLen {
		t.Errorf("%s: %d elements, want at least %d", what, len(list), minLen)
	}
	for i, e := range list {
		checkShape[T](t, what+"["+itoa(i)+"]", e)
	}
}

// TestWireCompatibility checks every endpoint's answer, with and without a
// trailing slash, against the reference's shapes, with a client that does not
// follow redirects (a redirect would turn a POST into a GET).
func TestWireCompatibility(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=compat-admin-password"})
	noRedirect := r.httpClient()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// A cluster joins through the cluster protocol and reports two nodes.
	joinToken := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	r.must("POST", "/api/cluster/register", joinToken, wire.ClusterRegisterRequest{
		Version: wire.Version, Name: "edge1", Location: "48.1,11.6,1000", Address: "192.0.2.10", Port: 10100}, &reg)
	node := func(name string) wire.NodeInfo {
		return wire.NodeInfo{ID: name, Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 8192}, CPUPercent: 12.5, MemoryPercent: 40}
	}
	r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version,
		Nodes: []wire.NodeInfo{node("n1"), node("n2")}}, nil)
	if resp := r.do("POST", "/api/cluster/sync", "wrong", wire.ClusterSync{Version: wire.Version}); resp.Status != http.StatusUnauthorized {
		t.Errorf("sync with a wrong credential: want 401, got %s", resp)
	}
	if resp := r.do("POST", "/api/cluster/register", "wrong", wire.ClusterRegisterRequest{Version: wire.Version, Name: "x"}); resp.Status != http.StatusUnauthorized {
		t.Errorf("register with a wrong join token: want 401, got %s", resp)
	}

	for _, slash := range []string{"", "/"} {
		t.Run("slash="+slash, func(t *testing.T) {
			ok := func(method, path, token string, body any) []byte {
				t.Helper()
				resp := r.do(method, path+slash, token, body)
				if resp.Status != http.StatusOK {
					t.Fatalf("%s %s%s: want 200, got %s", method, path, slash, resp)
				}
				return resp.Body
			}
			var tok refTokens
			body := ok("POST", "/api/auth/login", "", map[string]string{"username": "Admin", "password": "compat-admin-password"})
			checkShape[refTokens](t, "login", body)
			json.Unmarshal(body, &tok)
			checkShape[refTokens](t, "refresh", ok("POST", "/api/auth/refresh", tok.RefreshToken, nil))
			admin := tok.Token

			name := "compat" + map[string]string{"": "a", "/": "b"}[slash]
			body = ok("POST", "/api/application", admin, testSLA(name))
			checkList[refApplication](t, "POST /api/application", body, 1)
			var apps []refApplication
			json.Unmarshal(body, &apps)
			var app refApplication
			for _, a := range apps {
				if a.ApplicationName == name {
					app = a
				}
			}
			if app.ApplicationID == "" || len(app.Microservices) != 2 {
				t.Fatalf("new application not in answer: %s", body)
			}
			checkList[refApplication](t, "GET /api/applications", ok("GET", "/api/applications", admin, nil), 1)
			checkList[refApplication](t, "GET /api/applications/Admin", ok("GET", "/api/applications/Admin", admin, nil), 1)
			checkShape[refApplication](t, "GET /api/application/{id}", ok("GET", "/api/application/"+app.ApplicationID, admin, nil))
			checkShape[refApplication](t, "PUT /api/application/{id}", ok("PUT", "/api/application/"+app.ApplicationID, admin, map[string]string{"application_desc": "changed"}))

			svcID := app.Microservices[0]
			// POST instance with no body and no Content-Type.
			req, _ := http.NewRequest("POST", r.URL+"/api/service/"+svcID+"/instance"+slash, nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST instance without body: %d", resp.StatusCode)
			}
			ok("POST", "/api/service/"+svcID+"/instance", admin, nil)
			checkShape[refService](t, "GET /api/service/{id}", ok("GET", "/api/service/"+svcID, admin, nil))
			checkList[refService](t, "GET /api/services/{appid}", ok("GET", "/api/services/"+app.ApplicationID, admin, nil), 2)
			checkList[refService](t, "GET /api/services", ok("GET", "/api/services", admin, nil), 2)
			var svc refService
			json.Unmarshal(ok("GET", "/api/service/"+svcID, admin, nil), &svc)
			if len(svc.InstanceList) != 2 || svc.InstanceList[0].Status == "" {
				t.Errorf("instance_list = %+v", svc.InstanceList)
			}
			ok("DELETE", "/api/service/"+svcID+"/instance/0", admin, nil)

			svcSLA := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
				"applicationID": app.ApplicationID, "application_name": name, "application_namespace": "test",
				"microservices": []any{map[string]any{"microservice_name": "extra", "microservice_namespace": "test",
					"virtualization": "container", "code": "docker.io/library/redis:7", "memory": 64, "vcpus": 1}},
			}}}
			var job struct {
				JobID string `json:"job_id"`
			}
			json.Unmarshal(ok("POST", "/api/service", admin, svcSLA), &job)
			if job.JobID == "" {
				t.Errorf("POST /api/service: no job_id")
			}
			ok("DELETE", "/api/service/"+job.JobID, admin, nil)

			var cls []api.Cluster
			json.Unmarshal(ok("GET", "/api/clusters", admin, nil), &cls)
			if len(cls) != 1 || cls[0].ActiveNodes != 2 || cls[0].TotalCPUCores != 8 || cls[0].MemoryInMB != 16384 || len(cls[0].Nodes) != 2 {
				t.Errorf("cluster aggregates = %+v", cls)
			}
			checkList[refCluster](t, "GET /api/clusters", ok("GET", "/api/clusters", admin, nil), 1)
			checkList[refCluster](t, "GET /api/clusters/active", ok("GET", "/api/clusters/active", admin, nil), 1)

			// Unknown ids are 404, never 200 with null or {}.
			unknown := "6b02ffffffffffffffffffff"
			for _, req := range []struct{ method, path string }{
				{"GET", "/api/application/" + unknown}, {"PUT", "/api/application/" + unknown},
				{"DELETE", "/api/application/" + unknown}, {"GET", "/api/service/" + unknown},
				{"DELETE", "/api/service/" + unknown}, {"GET", "/api/services/" + unknown},
				{"POST", "/api/service/" + unknown + "/instance"}, {"DELETE", "/api/service/" + unknown + "/instance/0"},
				{"GET", "/api/application/not-an-object-id"},
			} {
				if resp := r.do(req.method, req.path+slash, admin, map[string]string{"application_desc": "x"}); resp.Status != http.StatusNotFound {
					t.Errorf("%s %s%s: want 404, got %s", req.method, req.path, slash, resp)
				}
			}
			ok("DELETE", "/api/application/"+app.ApplicationID, admin, nil)
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
