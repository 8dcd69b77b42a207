package sla

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla/slatest"
)

// check decodes and validates body as a full SLA, returning the errors.
func check(body []byte) Errors {
	s, err := Decode(body)
	if err == nil {
		err = s.Validate()
	}
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		panic("error is not sla.Errors: " + err.Error())
	}
	return errs
}

// validSLA decodes slatest.Valid().
func validSLA(t *testing.T) *SLA {
	t.Helper()
	s, err := Decode(slatest.Valid())
	if err != nil {
		t.Fatalf("Decode(slatest.Valid()): %v", err)
	}
	return s
}

// mutateJSON applies fn to the generic form of slatest.Valid() and returns
// the re-encoded document.
func mutateJSON(t *testing.T, fn func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(slatest.Valid(), &doc); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// msJSON returns microservice j of application 0 in a generic document.
func msJSON(doc map[string]any, j int) map[string]any {
	return doc["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[j].(map[string]any)
}

func TestErrorsFormatting(t *testing.T) {
	e := &FieldError{Field: "applications[0].microservices[1].port", Message: "bad"}
	if got, want := e.Error(), "applications[0].microservices[1].port: bad"; got != want {
		t.Errorf("FieldError.Error() = %q, want %q", got, want)
	}
	if got := (&FieldError{Message: "invalid JSON"}).Error(); got != "invalid JSON" {
		t.Errorf("FieldError without field: %q", got)
	}
	errs := Errors{e, {Field: "sla_version", Message: "wrong"}}
	if got, want := errs.Error(), "applications[0].microservices[1].port: bad; sla_version: wrong"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	if errs.First() != e {
		t.Errorf("First() = %v", errs.First())
	}
	if (Errors{}).First() != nil || Errors(nil).First() != nil {
		t.Error("First() of empty Errors is not nil")
	}
}

// TestDisconnectDefaults: a service that says nothing is replaced at once
// and keeps its original copy; a one-shot one is never replaced.
func TestDisconnectDefaults(t *testing.T) {
	no := false
	for _, tc := range []struct {
		m           Microservice
		replace     bool
		after, stop int
		reconcile   string
	}{
		{Microservice{}, true, 0, 0, KeepOriginal},
		{Microservice{OneShot: true}, false, 0, 0, KeepOriginal},
		{Microservice{Disconnect: &Disconnect{Replace: &no, StopAfter: 5}}, false, 0, 5, KeepOriginal},
		{Microservice{Disconnect: &Disconnect{ReplaceAfter: 60, Reconcile: KeepReplacement}}, true, 60, 0, KeepReplacement},
	} {
		r, a, s, rc := tc.m.Policy()
		if r != tc.replace || a != tc.after || s != tc.stop || rc != tc.reconcile {
			t.Errorf("Policy(%+v) = %v %d %d %s, want %v %d %d %s", tc.m, r, a, s, rc, tc.replace, tc.after, tc.stop, tc.reconcile)
		}
	}
}

func TestValidSLA(t *testing.T) {
	s := validSLA(t)
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate(slatest.Valid()) = %v", err)
	}
	if len(s.Applications) != 1 || len(s.Applications[0].Microservices) != 2 {
		t.Fatalf("slatest.Valid() should have one application with two microservices: %+v", s)
	}
}

func TestInvalidCases(t *testing.T) {
	cases := slatest.Invalid()
	if len(cases) < 30 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
	names := make(map[string]bool)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if names[c.Name] {
				t.Errorf("duplicate case name %q", c.Name)
			}
			names[c.Name] = true
			errs := check(c.Body)
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error on %q", c.Field)
			}
			if got := errs.First(); got.Field != c.Field {
				t.Errorf("first error %q, want field %q (all: %v)", got, c.Field, errs)
			}
			for _, e := range errs {
				if e.Message == "" {
					t.Errorf("error without message on %q", e.Field)
				}
			}
		})
	}
}

func TestValidVariants(t *testing.T) {
	tests := []struct {
		name string
		fn   func(s *SLA)
	}{
		{"unchanged", func(s *SLA) {}},
		{"name of 30 characters", func(s *SLA) {
			s.Applications[0].ApplicationName = strings.Repeat("a", 30)
			s.Applications[0].Microservices[0].MicroserviceNamespace = strings.Repeat("Z9", 15)
		}},
		{"description of 500 multi-byte characters", func(s *SLA) { s.Applications[0].ApplicationDesc = strings.Repeat("ü", 500) }},
		{"empty description", func(s *SLA) { s.Applications[0].ApplicationDesc = "" }},
		{"zero resources", func(s *SLA) {
			m := &s.Applications[0].Microservices[0]
			m.Memory, m.VCPUs = 0, 0
		}},
		{"maximum resources", func(s *SLA) {
			m := &s.Applications[0].Microservices[0]
			m.Memory, m.VCPUs, m.VGPUs, m.Storage, m.BandwidthIn = 1<<20, 1024, 8, 1<<30, 1000
		}},
		{"environment variants", func(s *SLA) {
			s.Applications[0].Microservices[0].Environment = []string{"A=", "B=c=d", "lower_case=x y z", "PATH=/bin:/usr/bin"}
		}},
		{"cmd anything", func(s *SLA) { s.Applications[0].Microservices[0].Cmd = []string{"", " ", "a;b", "=", "ü"} }},
		{"image references", func(s *SLA) {
			s.Applications[0].Microservices[0].Code = "nginx"
			s.Applications[0].Microservices[1].Code = "localhost:5000/team/app_server--x:v1.2.3-rc1"
		}},
		{"image reference with digest", func(s *SLA) {
			s.Applications[0].Microservices[0].Code = "ghcr.io/org/img@sha256:" + strings.Repeat("0123456789abcdef", 4)
			s.Applications[0].Microservices[1].Code = "Registry.Example.com/a/b:Tag_1"
		}},
		{"unikernel with matching arch", func(s *SLA) {
			m := &s.Applications[0].Microservices[1]
			m.Virtualization = VirtUnikernel
			m.Code = "https://example.com/k_x86.tar.gz,http://10.0.0.1:8080/k_arm.tar.gz"
			m.Arch = []string{"amd64", "arm64"}
		}},
		{"unikernel without arch", func(s *SLA) {
			m := &s.Applications[0].Microservices[1]
			m.Virtualization = VirtUnikernel
			m.Code = "HTTPS://example.com/kernel.tar.gz"
		}},
		{"wasm", func(s *SLA) {
			m := &s.Applications[0].Microservices[1]
			m.Virtualization = VirtWasm
			m.Code = "https://example.com/app.wasm"
			m.Arch = []string{"riscv64", "arm"}
		}},
		{"container with arch", func(s *SLA) { s.Applications[0].Microservices[1].Arch = []string{"arm64"} }},
		{"ports", func(s *SLA) { s.Applications[0].Microservices[1].Port = " 8080:80 ; 53/UDP;" }},
		{"no addresses", func(s *SLA) { s.Applications[0].Microservices[1].Addresses = nil }},
		{"empty addresses", func(s *SLA) { s.Applications[0].Microservices[1].Addresses = &Addresses{} }},
		{"rr_ip and closest_ip", func(s *SLA) {
			s.Applications[0].Microservices[1].Addresses = &Addresses{RRIP: "10.30.0.1", ClosestIP: "10.30.255.254"}
			s.Applications[0].Microservices[0].Addresses = &Addresses{ClosestIP: "10.30.1.0"}
		}},
		{"constraints", func(s *SLA) {
			s.Applications[0].Microservices[0].Constraints = []Constraint{
				{Type: ConstraintDirect, Cluster: "gpu_cluster-1.eu"},
				{Type: ConstraintDirect, Cluster: "gpu", Node: "xavier1;xavier_2;node-3.local"},
				{Type: ConstraintClusters, Allowed: []string{"cluster1", "cluster_2"}},
			}
		}},
		{"one shot", func(s *SLA) { s.Applications[0].Microservices[0].OneShot = true }},
		{"disconnect policy", func(s *SLA) {
			no := false
			s.Applications[0].Microservices[0].Disconnect = &Disconnect{ReplaceAfter: 300, StopAfter: 600, Reconcile: KeepReplacement}
			s.Applications[0].Microservices[1].OneShot = true
			s.Applications[0].Microservices[1].Disconnect = &Disconnect{Replace: &no, StopAfter: 60}
		}},
		{"security", func(s *SLA) {
			s.Applications[0].Microservices[0].Security = &Security{Privileged: true, CapAdd: []string{"NET_ADMIN", "cap_sys_time"}, PidsLimit: 64}
			s.Applications[0].Microservices[1].Security = &Security{}
		}},
		{"ids and state are not checked", func(s *SLA) {
			s.CustomerID = "someone else"
			s.Applications[0].ApplicationID = "6523f1b4c2a1d2e3f4a5b6c7"
			s.Applications[0].Microservices[0].MicroserviceID = "x"
			s.Applications[0].Microservices[0].State = "RUNNING"
			s.Applications[0].Microservices[0].AddedFiles = []string{"whatever"}
		}},
		{"two applications", func(s *SLA) {
			a := s.Applications[0]
			a.ApplicationName = "other"
			a.Microservices = []Microservice{a.Microservices[0]}
			s.Applications = append(s.Applications, a)
		}},
		{"same application name in another namespace", func(s *SLA) {
			a := s.Applications[0]
			a.ApplicationNamespace = "prod"
			a.Microservices = []Microservice{a.Microservices[0]}
			s.Applications = append(s.Applications, a)
		}},
		{"same microservice name in another application", func(s *SLA) {
			a := s.Applications[0]
			a.ApplicationName = "other"
			m := a.Microservices[1]
			m.Addresses = &Addresses{RRIP: "10.30.55.56"}
			a.Microservices = []Microservice{m}
			s.Applications = append(s.Applications, a)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSLA(t)
			tt.fn(s)
			if err := s.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			// and the same through JSON
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if errs := check(b); errs != nil {
				t.Fatalf("after JSON round trip: %v", errs)
			}
		})
	}
}

func TestValidJSONVariants(t *testing.T) {
	tests := []struct {
		name string
		fn   func(doc map[string]any)
	}{
		{"null lists", func(doc map[string]any) {
			m := msJSON(doc, 0)
			for _, k := range []string{"cmd", "environment", "added_files", "constraints", "arch"} {
				m[k] = nil
			}
		}},
		{"null scalars and objects", func(doc map[string]any) {
			m := msJSON(doc, 1)
			m["addresses"] = nil
			m["vgpus"] = nil
			m["port"] = nil
			m["one_shot"] = nil
			doc["customerID"] = nil
		}},
		{"missing optional fields", func(doc map[string]any) {
			m := msJSON(doc, 0)
			for _, k := range []string{"microserviceID", "cmd", "environment", "memory", "vcpus", "vgpus", "vtpus",
				"bandwidth_in", "bandwidth_out", "storage", "state", "port", "added_files", "constraints"} {
				delete(m, k)
			}
			delete(doc, "customerID")
		}},
		{"unknown fields ignored", func(doc map[string]any) {
			doc["extra"] = map[string]any{"nested": []any{1, "x", nil}}
			msJSON(doc, 0)["priority"] = "high"
			// field names are matched exactly: other capitalisations are unknown fields
			msJSON(doc, 0)["Memory"] = "lots"
		}},
		{"integral numbers", func(doc map[string]any) {
			msJSON(doc, 0)["memory"] = json.Number("-0")
			msJSON(doc, 0)["storage"] = json.Number("9223372036854775807")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if errs := check(mutateJSON(t, tt.fn)); errs != nil {
				t.Fatalf("rejected: %v", errs)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields []string // all error fields, in order
		msg    string   // substring of the first message
	}{
		{"empty body", "", []string{""}, "empty"},
		{"blank body", " \n\t ", []string{""}, "empty"},
		{"syntax error", "{\n  \"sla_version\": \"v2.0\",\n  }", []string{""}, "line 3, column 3"},
		{"truncated", `{"sla_version": "v2.0"`, []string{""}, "unexpected end"},
		{"trailing data", `{"sla_version": "v2.0"} {}`, []string{""}, "unexpected data"},
		{"trailing garbage", `{"sla_version": "v2.0"}x`, []string{""}, "invalid JSON"},
		{"array", `[]`, []string{""}, "must be a JSON object, got an array"},
		{"null", `null`, []string{""}, "got null"},
		{"number", `12`, []string{""}, "got the number 12"},
		{"memory string", `{"applications":[{"microservices":[{},{"memory":"100"}]}]}`,
			[]string{"applications[0].microservices[1].memory"}, "must be an integer, got a string"},
		{"vcpus fraction", `{"applications":[{"microservices":[{"vcpus":0.5}]}]}`,
			[]string{"applications[0].microservices[0].vcpus"}, "must be an integer, got 0.5"},
		{"vcpus exponent", `{"applications":[{"microservices":[{"vcpus":1e2}]}]}`,
			[]string{"applications[0].microservices[0].vcpus"}, "must be an integer, got 1e2"},
		{"vcpus overflow", `{"applications":[{"microservices":[{"vcpus":123456789012345678901234567890}]}]}`,
			[]string{"applications[0].microservices[0].vcpus"}, "out of range"},
		{"cmd string", `{"applications":[{"microservices":[{"cmd":"ls"}]}]}`,
			[]string{"applications[0].microservices[0].cmd"}, "must be an array, got a string"},
		{"applications object", `{"applications":{}}`, []string{"applications"}, "must be an array, got an object"},
		{"application not an object", `{"applications":[{}, "app"]}`, []string{"applications[1]"}, "must be an object, got a string"},
		{"constraint allowed entry", `{"applications":[{"microservices":[{"constraints":[{"type":"clusters","allowed":["a",false]}]}]}]}`,
			[]string{"applications[0].microservices[0].constraints[0].allowed[1]"}, "must be a string, got a boolean"},
		{"addresses", `{"applications":[{"microservices":[{"addresses":[]}]}]}`,
			[]string{"applications[0].microservices[0].addresses"}, "must be an object, got an array"},
		{"rr_ip number", `{"applications":[{"microservices":[{"addresses":{"rr_ip":10}}]}]}`,
			[]string{"applications[0].microservices[0].addresses.rr_ip"}, "must be a string"},
		{"one_shot", `{"applications":[{"microservices":[{"one_shot":1}]}]}`,
			[]string{"applications[0].microservices[0].one_shot"}, "must be true or false"},
		{"disconnect replace", `{"applications":[{"microservices":[{"disconnect":{"replace":"yes"}}]}]}`,
			[]string{"applications[0].microservices[0].disconnect.replace"}, "must be true or false"},
		{"disconnect not an object", `{"applications":[{"microservices":[{"disconnect":true}]}]}`,
			[]string{"applications[0].microservices[0].disconnect"}, "must be an object"},
		{"all type errors in field order", `{"applications":[{"microservices":[{"storage":"1","memory":"1","cmd":"x"},{"port":80}],"application_name":1}],"sla_version":2}`,
			[]string{
				"sla_version",
				"applications[0].application_name",
				"applications[0].microservices[0].cmd",
				"applications[0].microservices[0].memory",
				"applications[0].microservices[0].storage",
				"applications[0].microservices[1].port",
			}, "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("Decode accepted %q: %+v", tt.body, s)
			}
			if s != nil {
				t.Errorf("Decode returned an SLA with an error")
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("error %T is not Errors", err)
			}
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("fields = %q, want %q (%v)", fields, tt.fields, errs)
			}
			if !strings.Contains(errs.First().Message, tt.msg) {
				t.Errorf("first message %q does not contain %q", errs.First().Message, tt.msg)
			}
		})
	}
}

func TestDecodeNormalizesLists(t *testing.T) {
	s, err := Decode([]byte(`{"sla_version":"v2.0","applications":[{"microservices":[{"cmd":null,"constraints":[{"type":"clusters"}]}]}, null]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Applications[1].Microservices == nil {
		t.Error("null application has nil microservices")
	}
	m := s.Applications[0].Microservices[0]
	if m.Cmd == nil || m.Environment == nil || m.AddedFiles == nil || m.Arch == nil || m.Constraints[0].Allowed == nil {
		t.Errorf("nil lists after Decode: %+v", m)
	}
	if m.Addresses != nil {
		t.Errorf("absent addresses decoded as %+v", m.Addresses)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cmd":[]`) || strings.Contains(string(b), "null") {
		t.Errorf("re-encoded microservice: %s", b)
	}
}

func TestValidateAllErrorsInOrder(t *testing.T) {
	s := validSLA(t)
	s.SLAVersion = ""
	a := &s.Applications[0]
	a.ApplicationNamespace = "bad ns"
	m0 := &a.Microservices[0]
	m0.Memory = -5
	m0.Port = "x"
	m0.Constraints = []Constraint{{Type: "direct"}}
	m1 := &a.Microservices[1]
	m1.MicroserviceName = "curl"
	m1.Virtualization = "vm"
	m1.Addresses = &Addresses{RRIP: "10.30.55.55", ClosestIP: "10.30.55.55"}
	err := s.Validate()
	errs, ok := err.(Errors)
	if !ok {
		t.Fatalf("Validate() = %v (%T)", err, err)
	}
	want := []string{
		"sla_version",
		"applications[0].application_namespace",
		"applications[0].microservices[0].memory",
		"applications[0].microservices[0].port",
		"applications[0].microservices[0].constraints[0].cluster",
		"applications[0].microservices[1].microservice_name",
		"applications[0].microservices[1].virtualization",
		"applications[0].microservices[1].addresses.closest_ip",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields:\n got %q\nwant %q\n(%v)", got, want, errs)
	}
	if !strings.Contains(errs[5].Message, "applications[0].microservices[0]") {
		t.Errorf("duplicate name message does not name the first use: %q", errs[5].Message)
	}
}

func TestValidateNil(t *testing.T) {
	var s *SLA
	if s.Validate() == nil || s.ValidateServices() == nil {
		t.Error("nil SLA accepted")
	}
	if ValidateMicroservice("x", nil) == nil {
		t.Error("nil microservice accepted")
	}
}

func TestValidateServices(t *testing.T) {
	base := func() *SLA {
		s := validSLA(t)
		s.Applications[0].ApplicationID = "6523f1b4c2a1d2e3f4a5b6c7"
		return s
	}
	valid := []struct {
		name string
		fn   func(s *SLA)
	}{
		{"full", func(s *SLA) {}},
		{"without names and version", func(s *SLA) {
			s.SLAVersion = ""
			s.Applications[0].ApplicationName = ""
			s.Applications[0].ApplicationNamespace = ""
		}},
		{"two applications with the same name", func(s *SLA) {
			a := s.Applications[0]
			a.ApplicationID = "other"
			a.Microservices = []Microservice{a.Microservices[0]}
			s.Applications = append(s.Applications, a)
		}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.fn(s)
			if err := s.ValidateServices(); err != nil {
				t.Fatalf("ValidateServices() = %v", err)
			}
		})
	}
	invalid := []struct {
		name  string
		fn    func(s *SLA)
		field string
	}{
		{"missing applicationID", func(s *SLA) { s.Applications[0].ApplicationID = "" }, "applications[0].applicationID"},
		{"bad version", func(s *SLA) { s.SLAVersion = "v1" }, "sla_version"},
		{"no applications", func(s *SLA) { s.Applications = nil }, "applications"},
		{"bad application name", func(s *SLA) { s.Applications[0].ApplicationName = "a b" }, "applications[0].application_name"},
		{"bad namespace", func(s *SLA) { s.Applications[0].ApplicationNamespace = strings.Repeat("n", 31) }, "applications[0].application_namespace"},
		{"no microservices", func(s *SLA) { s.Applications[0].Microservices = nil }, "applications[0].microservices"},
		{"bad microservice", func(s *SLA) { s.Applications[0].Microservices[1].Port = "80:" }, "applications[0].microservices[1].port"},
		{"duplicate microservice", func(s *SLA) { s.Applications[0].Microservices[1].MicroserviceName = "curl" }, "applications[0].microservices[1].microservice_name"},
		{"duplicate rr_ip", func(s *SLA) {
			s.Applications[0].Microservices[0].Addresses = &Addresses{RRIP: "10.30.55.55"}
		}, "applications[0].microservices[1].addresses.rr_ip"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.fn(s)
			err := s.ValidateServices()
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("ValidateServices() = %v (%T)", err, err)
			}
			if errs.First().Field != tt.field {
				t.Errorf("first error %v, want field %q", errs.First(), tt.field)
			}
		})
	}
	// A full SLA without applicationID is fine for Validate but not for ValidateServices.
	if err := validSLA(t).ValidateServices(); err == nil {
		t.Error("ValidateServices accepted an SLA without applicationID")
	}
}

func TestValidateMicroservice(t *testing.T) {
	s := validSLA(t)
	m := s.Applications[0].Microservices[1]
	if errs := ValidateMicroservice("microservices[0]", &m); errs != nil {
		t.Fatalf("ValidateMicroservice = %v", errs)
	}
	m.Port = "abc"
	m.Addresses = &Addresses{RRIP: "10.30.1.1", ClosestIP: "10.30.1.1"}
	m.Environment = []string{"OK=1", "NOT OK=1"}
	errs := ValidateMicroservice("microservices[0]", &m)
	want := []string{"microservices[0].environment[1]", "microservices[0].port", "microservices[0].addresses.closest_ip"}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields %q, want %q (%v)", got, want, errs)
	}
	if errs := ValidateMicroservice("", &Microservice{}); errs.First().Field != "microservice_name" {
		t.Errorf("empty prefix: %v", errs)
	}
}

func TestServiceIPs(t *testing.T) {
	tests := []struct {
		ip string
		ok bool
	}{
		{"10.30.0.1", true},
		{"10.30.255.254", true},
		{"10.30.128.0", true},
		{"10.30.0.0", false},
		{"10.30.255.255", false},
		{"10.29.255.255", false},
		{"10.31.0.0", false},
		{"10.030.0.1", false},
		{"10.30.0.1/32", false},
		{" 10.30.0.1", false},
		{"::ffff:10.30.0.1", false},
		{"fd00::1", false},
		{"localhost", false},
	}
	for _, tt := range tests {
		m := Microservice{MicroserviceName: "a", MicroserviceNamespace: "b", Virtualization: VirtContainer,
			Code: "nginx", Addresses: &Addresses{RRIP: tt.ip}}
		errs := ValidateMicroservice("m", &m)
		if tt.ok != (errs == nil) {
			t.Errorf("rr_ip %q: errors %v, want ok=%v", tt.ip, errs, tt.ok)
		}
		if errs != nil && errs.First().Field != "m.addresses.rr_ip" {
			t.Errorf("rr_ip %q: error on %q", tt.ip, errs.First().Field)
		}
	}
}
