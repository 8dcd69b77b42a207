package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

// httpMethods are the keys of an OpenAPI path item that name operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadSpec decodes the embedded OpenAPI description generically.
func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	var spec map[string]any
	if err := json.Unmarshal(OpenAPISpec(), &spec); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return spec
}

// operations returns the spec's operations keyed by "METHOD path".
func operations(t *testing.T, spec map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := spec["paths"].(map[string]any)
	if !ok {
		t.Fatalf("paths is %T, want an object", spec["paths"])
	}
	ops := map[string]map[string]any{}
	for p, item := range paths {
		m, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("path item %s is %T, want an object", p, item)
		}
		for _, method := range httpMethods {
			if op, ok := m[method]; ok {
				o, ok := op.(map[string]any)
				if !ok {
					t.Fatalf("%s %s is %T, want an object", method, p, op)
				}
				ops[strings.ToUpper(method)+" "+p] = o
			}
		}
	}
	return ops
}

// openAPIPath turns an echo route path ("/api/user/:username") into the
// OpenAPI form ("/api/user/{username}").
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func TestOpenAPIPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/api/users", "/api/users"},
		{"/api/user/:username", "/api/user/{username}"},
		{"/api/service/:id/instance/:n", "/api/service/{id}/instance/{n}"},
	} {
		if got := openAPIPath(tc.in); got != tc.want {
			t.Errorf("openAPIPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenAPIVersion(t *testing.T) {
	spec := loadSpec(t)
	if v := spec["openapi"]; v != "3.0.3" {
		t.Errorf("openapi = %v, want 3.0.3", v)
	}
	for _, key := range []string{"info", "paths", "components"} {
		if _, ok := spec[key].(map[string]any); !ok {
			t.Errorf("%s is missing or not an object", key)
		}
	}
}

// docsRoute reports whether an API route serves the documentation UI, which
// need not be described.
func docsRoute(path string) bool {
	return path == "/api/docs" || strings.HasPrefix(path, "/api/docs/")
}

// TestOpenAPIMatchesRoutes checks that the spec describes exactly the
// server's /api/ routes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := New(nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	want := map[string]bool{}
	for _, r := range s.Routes() {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Fatalf("route %q is not \"METHOD path\"", r)
		}
		if docsRoute(path) {
			continue
		}
		want[method+" "+openAPIPath(path)] = true
	}
	if len(want) == 0 {
		t.Fatal("the server lists no /api/ routes")
	}
	got := map[string]bool{}
	for key := range operations(t, loadSpec(t)) {
		_, path, _ := strings.Cut(key, " ")
		if strings.HasPrefix(path, "/api/") && !docsRoute(path) {
			got[key] = true
		}
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("spec and routes differ\nmissing from the spec:\n\t%s\nin the spec but not routed:\n\t%s",
			strings.Join(missing, "\n\t"), strings.Join(extra, "\n\t"))
	}
}

// walkRefs calls f with the JSON path and value of every $ref in v.
func walkRefs(path string, v any, f func(path, ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "$ref" {
				s, _ := e.(string)
				f(path, s)
				continue
			}
			walkRefs(path+"/"+k, e, f)
		}
	case []any:
		for _, e := range v {
			walkRefs(path+"[]", e, f)
		}
	}
}

// resolve follows a local JSON pointer ("#/components/schemas/Error").
func resolve(doc any, ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr, "/") {
		tok, err := url.PathUnescape(tok)
		if err != nil {
			return nil, false
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestOpenAPIRefsResolve(t *testing.T) {
	spec := loadSpec(t)
	n := 0
	walkRefs("", spec, func(path, ref string) {
		n++
		if !strings.HasPrefix(ref, "#/components/") {
			t.Errorf("%s: $ref %q does not point into components", path, ref)
			return
		}
		if _, ok := resolve(spec, ref); !ok {
			t.Errorf("%s: $ref %q does not resolve", path, ref)
		}
	})
	if n == 0 {
		t.Error("the spec has no $ref at all")
	}
}

func TestOpenAPIOperations(t *testing.T) {
	spec := loadSpec(t)
	paths := spec["paths"].(map[string]any)
	for key, op := range operations(t, spec) {
		_, path, _ := strings.Cut(key, " ")
		responses, _ := op["responses"].(map[string]any)
		// Every success is 200 but a logout's, which has no body.
		_, ok200 := responses["200"]
		_, ok204 := responses["204"]
		if !ok200 && !(ok204 && key == "POST /api/auth/logout") {
			t.Errorf("%s: no 200 response", key)
		}
		// An operation that needs a token must say what happens without.
		if sec, ok := op["security"].([]any); !ok || len(sec) > 0 {
			if _, ok := responses["401"]; !ok {
				t.Errorf("%s: needs a token but documents no 401", key)
			}
		}
		// Every path template parameter is declared, on the path item or
		// the operation.
		declared := map[string]bool{}
		params, _ := paths[path].(map[string]any)["parameters"].([]any)
		opParams, _ := op["parameters"].([]any)
		for _, p := range slices.Concat(params, opParams) {
			pm, _ := p.(map[string]any)
			if ref, ok := pm["$ref"].(string); ok {
				r, _ := resolve(spec, ref)
				pm, _ = r.(map[string]any)
			}
			if pm["in"] == "path" {
				declared[pm["name"].(string)] = true
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				if !declared[name] {
					t.Errorf("%s: path parameter %q is not declared", key, name)
				}
			}
		}
	}
}

// TestOpenAPIPublicOperations checks which operations need no token.
func TestOpenAPIPublicOperations(t *testing.T) {
	spec := loadSpec(t)
	ops := operations(t, spec)
	global, _ := spec["security"].([]any)
	if len(global) == 0 {
		t.Error("no global security requirement")
	}
	for _, key := range []string{
		"GET /healthz",
		"GET /api/openapi.json",
		"POST /api/auth/login",
		"POST /api/auth/refresh",
	} {
		op, ok := ops[key]
		if !ok {
			t.Errorf("%s: not in the spec", key)
			continue
		}
		if sec, ok := op["security"].([]any); !ok || len(sec) != 0 {
			t.Errorf("%s: security = %v, want []", key, op["security"])
		}
	}
}
