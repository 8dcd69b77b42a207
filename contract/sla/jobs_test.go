package sla

import (
	"strconv"
	"strings"
	"testing"
)

func TestJobsValidation(t *testing.T) {
	many := make([]any, MaxJobs+1)
	for i := range many {
		many[i] = "j" + strconv.Itoa(i)
	}
	const ms = "applications[0].microservices[0]."
	cases := []struct {
		name  string
		jobs  any
		lease any
		field string // "" when valid
	}{
		{name: "absent"},
		{name: "list", jobs: []any{"cam-1", "cam-2", "Ünïcode job"}, lease: 5},
		{name: "max lease", jobs: []any{"a"}, lease: MaxJobsLease},
		{name: "the most jobs", jobs: many[:MaxJobs]},
		{name: "too many", jobs: many, field: ms + "jobs"},
		{name: "empty name", jobs: []any{"a", ""}, field: ms + "jobs[1]"},
		{name: "duplicate", jobs: []any{"a", "b", "a"}, field: ms + "jobs[2]"},
		{name: "too long", jobs: []any{strings.Repeat("x", MaxJobName+1)}, field: ms + "jobs[0]"},
		{name: "longest", jobs: []any{strings.Repeat("x", MaxJobName)}},
		{name: "comma", jobs: []any{"a,b"}, field: ms + "jobs[0]"},
		{name: "control", jobs: []any{"a\nb"}, field: ms + "jobs[0]"},
		{name: "spaces around", jobs: []any{" a"}, field: ms + "jobs[0]"},
		{name: "not strings", jobs: []any{1}, field: ms + "jobs[0]"},
		{name: "lease too short", jobs: []any{"a"}, lease: 4, field: ms + "jobs_lease_s"},
		{name: "lease too long", jobs: []any{"a"}, lease: MaxJobsLease + 1, field: ms + "jobs_lease_s"},
		{name: "negative lease", lease: -1, field: ms + "jobs_lease_s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := mutateJSON(t, func(doc map[string]any) {
				m := msJSON(doc, 0)
				if c.jobs != nil {
					m["jobs"] = c.jobs
				}
				if c.lease != nil {
					m["jobs_lease_s"] = c.lease
				}
			})
			errs := check(body)
			switch {
			case c.field == "" && len(errs) > 0:
				t.Fatalf("refused: %v", errs)
			case c.field != "" && len(errs) == 0:
				t.Fatalf("accepted; want an error on %s", c.field)
			case c.field != "" && errs.First().Field != c.field:
				t.Fatalf("first error %v, want field %s", errs.First(), c.field)
			}
		})
	}
}

func TestJobsDecodeAndLease(t *testing.T) {
	body := mutateJSON(t, func(doc map[string]any) { msJSON(doc, 0)["jobs"] = []any{"x", "y"} })
	s, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	m := &s.Applications[0].Microservices[0]
	if strings.Join(m.Jobs, ",") != "x,y" || m.Lease() != DefaultJobsLease {
		t.Fatalf("jobs %q lease %d", m.Jobs, m.Lease())
	}
	m.JobsLease = 60
	if m.Lease() != 60 {
		t.Fatalf("lease %d", m.Lease())
	}
}
