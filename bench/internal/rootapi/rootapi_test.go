package rootapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestCreateApp checks the SLA CreateApp posts and the ids it returns.
func TestCreateApp(t *testing.T) {
	var sla map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /api/auth/login":
			w.Write([]byte(`{"token":"t","expires_in":900}`))
		case "POST /api/application/":
			json.NewDecoder(r.Body).Decode(&sla)
			w.Write([]byte(`[{"applicationID":"a0","application_name":"other"},{"applicationID":"a1","application_name":"deploy"}]`))
		case "GET /api/services/a1":
			w.Write([]byte(`[{"microserviceID":"s1","microservice_name":"web"},{"microserviceID":"s2","microservice_name":"db"}]`))
		case "GET /api/clusters/active":
			w.Write([]byte(`[{"cluster_name":"c1","active_nodes":3}]`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL+"/", "")
	if err := c.Login(ctx, "Admin", "pw"); err != nil {
		t.Fatal(err)
	}
	app, ids, err := c.CreateApp(ctx, "deploy", []ServiceSpec{{Name: "web", Image: "bench/web:v1", MemoryMB: 16, Cmd: []string{"serve"}}, {Name: "db"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"web": "s1", "db": "s2"}; app != "a1" || !reflect.DeepEqual(ids, want) {
		t.Errorf("CreateApp = %q, %v; want a1, %v", app, ids, want)
	}
	ms := sla["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
	web := ms[0].(map[string]any)
	if len(ms) != 2 || web["code"] != "bench/web:v1" || web["memory"] != 16.0 || !reflect.DeepEqual(web["cmd"], []any{"serve"}) || ms[1].(map[string]any)["cmd"] != nil {
		t.Errorf("posted microservices %v", ms)
	}
	if n, err := c.ActiveNodes(ctx); err != nil || n["c1"] != 3 {
		t.Errorf("ActiveNodes = %v, %v", n, err)
	}
}
