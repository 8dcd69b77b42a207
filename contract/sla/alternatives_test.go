package sla

import (
	"slices"
	"strings"
	"testing"
)

func TestAlternatives(t *testing.T) {
	wasm := Implementation{Name: "va-wasm", Virtualization: VirtWasm, Code: "https://h.example/va.wasm", Memory: 32}
	tests := []struct {
		name  string
		alts  []Implementation
		field string // "" when valid
		msg   string
	}{
		{name: "valid", alts: []Implementation{wasm}},
		{name: "unknown virtualization", alts: []Implementation{{Name: "x", Virtualization: "vm", Code: "c"}},
			field: "alternatives[0].virtualization", msg: "not supported"},
		{name: "no code", alts: []Implementation{{Name: "x", Virtualization: VirtWasm}},
			field: "alternatives[0].code", msg: "is required"},
		{name: "duplicate name", alts: []Implementation{wasm, wasm},
			field: "alternatives[1].name", msg: "names another implementation"},
		{name: "bad arch", alts: []Implementation{{Name: "x", Virtualization: VirtContainer, Code: "img", Arch: []string{"sparc"}}},
			field: "alternatives[0].arch[0]", msg: "not a supported architecture"},
		{name: "negative memory", alts: []Implementation{{Name: "x", Virtualization: VirtContainer, Code: "img", Memory: -1}},
			field: "alternatives[0].memory", msg: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSLA(t)
			m := &s.Applications[0].Microservices[0]
			m.Alternatives = tt.alts
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			errs, _ := err.(Errors)
			var found bool
			for _, e := range errs {
				found = found || strings.HasSuffix(e.Field, tt.field) && strings.Contains(e.Message, tt.msg)
			}
			if !found {
				t.Errorf("errors %v, want %s: ...%s...", err, tt.field, tt.msg)
			}
		})
	}
}

func TestImplementationsResolved(t *testing.T) {
	m := Microservice{Virtualization: VirtContainer, Code: "img", Memory: 256, VCPUs: 1, Cmd: []string{"serve"},
		ImplementationName: "va-x86", Alternatives: []Implementation{{Virtualization: VirtWasm, Code: "https://h/va.wasm", Memory: 32}}}
	got := m.Implementations()
	if len(got) != 2 || got[0].Name != "va-x86" || got[0].Memory != 256 || !slices.Equal(got[0].Cmd, []string{"serve"}) ||
		got[1].Name != VirtWasm || got[1].Memory != 32 || got[1].VCPUs != 1 {
		t.Fatalf("Implementations() = %+v", got)
	}
	if (&Microservice{Virtualization: VirtContainer}).Implementations() != nil {
		t.Error("a microservice without alternatives has implementations")
	}
}
