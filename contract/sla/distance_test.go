package sla

import (
	"strings"
	"testing"
)

// TestLatencyGeoConstraints: the reference SLA's latency and geo
// constraints with Thicket's targets; each bad one names its field.
func TestLatencyGeoConstraints(t *testing.T) {
	tests := []struct {
		name  string
		c     Constraint
		field string // "" valid
	}{
		{"latency to an area", Constraint{Type: ConstraintLatency, Area: "munich", Threshold: 100, Rigidness: 0.99, ConvergenceTime: 300}, ""},
		{"latency to a node", Constraint{Type: ConstraintLatency, Node: "sensor-1", Threshold: 20}, ""},
		{"latency to a node of a cluster", Constraint{Type: ConstraintLatency, Node: "sensor-1", Cluster: "edge", Threshold: 20}, ""},
		{"latency to a cluster", Constraint{Type: ConstraintLatency, Cluster: "edge", Threshold: 20}, ""},
		{"latency without target", Constraint{Type: ConstraintLatency, Threshold: 20}, "m.constraints[0]"},
		{"latency with two targets", Constraint{Type: ConstraintLatency, Area: "munich", Node: "n1", Threshold: 20}, "m.constraints[0]"},
		{"latency without threshold", Constraint{Type: ConstraintLatency, Area: "munich"}, "m.constraints[0].threshold"},
		{"latency threshold too high", Constraint{Type: ConstraintLatency, Area: "munich", Threshold: 10001}, "m.constraints[0].threshold"},
		{"latency area a point", Constraint{Type: ConstraintLatency, Area: "48.1,11.5", Threshold: 20}, "m.constraints[0].area"},
		{"latency bad node", Constraint{Type: ConstraintLatency, Node: "a b", Threshold: 20}, "m.constraints[0].node"},
		{"latency to a service", Constraint{Type: ConstraintLatency, Service: "db", Threshold: 20}, ""},
		{"latency to a service and a node", Constraint{Type: ConstraintLatency, Service: "db", Node: "n1", Threshold: 20}, "m.constraints[0]"},
		{"latency to a bad service name", Constraint{Type: ConstraintLatency, Service: "my-db", Threshold: 20}, "m.constraints[0].service"},
		{"geo to a point", Constraint{Type: ConstraintGeo, Location: "48.1374,11.5755", Threshold: 40, Rigidness: 0.9, ConvergenceTime: 1000}, ""},
		{"geo to a site", Constraint{Type: ConstraintGeo, Location: "munich"}, ""},
		{"geo without location", Constraint{Type: ConstraintGeo, Threshold: 40}, "m.constraints[0].location"},
		{"geo bad location", Constraint{Type: ConstraintGeo, Location: "95,11", Threshold: 40}, "m.constraints[0].location"},
		{"geo point without threshold", Constraint{Type: ConstraintGeo, Location: "48.1,11.5"}, "m.constraints[0].threshold"},
		{"rigidness above 1", Constraint{Type: ConstraintGeo, Location: "munich", Rigidness: 2}, "m.constraints[0].rigidness"},
		{"unknown type", Constraint{Type: "bandwidth"}, "m.constraints[0].type"},
	}
	for _, tt := range tests {
		m := Microservice{MicroserviceName: "a", MicroserviceNamespace: "b", Virtualization: VirtContainer, Code: "nginx",
			Constraints: []Constraint{tt.c}}
		errs := ValidateMicroservice("m", &m)
		switch {
		case tt.field == "" && errs != nil:
			t.Errorf("%s: rejected: %v", tt.name, errs)
		case tt.field != "" && (errs == nil || errs.First().Field != tt.field):
			t.Errorf("%s: errors %v, want one on %s", tt.name, errs, tt.field)
		}
	}
}

func TestDecodeThreshold(t *testing.T) {
	doc := func(th string) string {
		return `{"sla_version":"v2.0","applications":[{"microservices":[{"constraints":[{"type":"geo","location":"48.1,11.5","threshold":` + th + `}]}]}]}`
	}
	for _, ok := range []string{`40`, `40.5`, `"40"`} {
		s, err := Decode([]byte(doc(ok)))
		if err != nil || s.Applications[0].Microservices[0].Constraints[0].Threshold < 40 {
			t.Errorf("threshold %s: %v", ok, err)
		}
	}
	for _, bad := range []string{`"far"`, `true`, `[]`} {
		_, err := Decode([]byte(doc(bad)))
		if err == nil || !strings.Contains(err.Error(), "constraints[0].threshold") {
			t.Errorf("threshold %s: error %v, want one on the threshold", bad, err)
		}
	}
}
