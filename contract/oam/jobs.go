package oam

import (
	"github.com/thicket-edge/thicket/contract/sla"
	"go.yaml.in/yaml/v3"
)

// TraitJobs gives a component a job list (collaborative workloads): the
// SLA's jobs and jobs_lease_s.
const TraitJobs = "jobs"

// JobsTrait is a component's job list and lease.
type JobsTrait struct {
	// Jobs are the job names (checked as the SLA checks them).
	Jobs []string
	// LeaseS is jobs_lease_s: 0 for the default.
	LeaseS int
}

var jobsTraitDefinition = TraitDefinition{TraitJobs, nil,
	"a job list shared by the component's instances, each job owned by exactly one (collaborative workloads): jobs (names, at most 10000), lease (seconds an instance cut off from its cluster keeps its jobs, 5 to 3600; default 30)",
	all, []string{"jobs", "lease"}}

// jobsTrait reads the properties of a jobs trait at path.
func (w *walker) jobsTrait(path string, props *yaml.Node) *JobsTrait {
	j := &JobsTrait{}
	seen := w.object(path, props, []field{
		{"jobs", func(p string, n *yaml.Node) { j.Jobs = w.uniqueStrs(p, n, sla.MaxJobs, "job", sla.CheckJobName) }},
		{"lease", func(p string, n *yaml.Node) { j.LeaseS = w.integer(p, n, sla.MinJobsLease, sla.MaxJobsLease) }},
	})
	w.required(path, props, seen, "jobs")
	return j
}

// uniqueStrs reads a list of at most max strings, each of which check
// accepts ("") or names the problem with, without repeats (what names an
// entry in the error).
func (w *walker) uniqueStrs(path string, n *yaml.Node, max int, what string, check func(string) string) []string {
	out := []string{}
	at := map[string]bool{}
	w.list(path, n, max, func(p string, _ int, e *yaml.Node) {
		s := w.str(p, e)
		if e.Kind != yaml.ScalarNode || e.Tag != "!!str" {
			return // str said so
		}
		if msg := check(s); msg != "" {
			w.fail(p, e, "%s", msg)
			return
		}
		if at[s] {
			w.fail(p, e, "duplicate %s %q", what, s)
			return
		}
		at[s] = true
		out = append(out, s)
	})
	return out
}
