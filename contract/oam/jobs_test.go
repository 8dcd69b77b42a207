package oam

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
)

// oneError checks that a manifest fails to parse or compile with exactly
// one error, at field, mentioning contains.
func oneError(t *testing.T, manifest, field, contains string) {
	t.Helper()
	app, err := Parse([]byte(manifest))
	if err == nil {
		_, err = Compile(app)
	}
	var errs sla.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("err = %v, want one error", err)
	}
	if errs[0].Field != field || !strings.Contains(err.Error(), contains) {
		t.Errorf("error %v, want at %s mentioning %q", err, field, contains)
	}
}

func jobsApp(traits string) string {
	return "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n" +
		"    - {name: cams, type: worker, properties: {image: busybox}, traits: [" + traits + "]}\n"
}

// TestJobsTrait: the jobs trait becomes the SLA's jobs and jobs_lease_s;
// bad lists fail at the trait's fields and compile nothing.
func TestJobsTrait(t *testing.T) {
	app, err := Parse([]byte(jobsApp("{type: scaler, properties: {replicas: 3}}, {type: jobs, properties: {jobs: [cam-1, cam-2, 'lobby door'], lease: 60}}")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(app)
	if err != nil {
		t.Fatal(err)
	}
	ms := c.SLA().Applications[0].Microservices[0]
	if !slices.Equal(ms.Jobs, []string{"cam-1", "cam-2", "lobby door"}) || ms.JobsLease != 60 {
		t.Errorf("compiled jobs %q lease %d", ms.Jobs, ms.JobsLease)
	}
	if !slices.ContainsFunc(TraitDefinitions(), func(d TraitDefinition) bool { return d.Name == TraitJobs }) {
		t.Error("the jobs trait is not listed")
	}

	for _, tc := range []struct {
		name, traits string
		field        string
		contains     string
	}{
		{"no jobs", "{type: jobs, properties: {lease: 60}}", "spec.components[0].traits[0].properties.jobs", "required"},
		{"not a list", "{type: jobs, properties: {jobs: cam-1}}", "spec.components[0].traits[0].properties.jobs", "must be a list"},
		{"a number", "{type: jobs, properties: {jobs: [cam-1, 7]}}", "spec.components[0].traits[0].properties.jobs[1]", "must be a string"},
		{"empty name", "{type: jobs, properties: {jobs: ['']}}", "spec.components[0].traits[0].properties.jobs[0]", "must not be empty"},
		{"comma", "{type: jobs, properties: {jobs: ['a,b']}}", "spec.components[0].traits[0].properties.jobs[0]", "','"},
		{"duplicate", "{type: jobs, properties: {jobs: [a, b, a]}}", "spec.components[0].traits[0].properties.jobs[2]", "duplicate"},
		{"lease too short", "{type: jobs, properties: {jobs: [a], lease: 1}}", "spec.components[0].traits[0].properties.lease", ""},
		{"unknown field", "{type: jobs, properties: {jobs: [a], url: 'https://x'}}", "spec.components[0].traits[0].properties.url", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) { oneError(t, jobsApp(tc.traits), tc.field, tc.contains) })
	}
}
