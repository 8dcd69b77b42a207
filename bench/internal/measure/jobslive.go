package measure

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/thicket-edge/thicket/bench/internal/report"
)

// jobsLiveLine is one change of the end-to-end test's summary:
// "<what> moved N, optimum M, every instance on its new set after D".
var jobsLiveLine = regexp.MustCompile(`^\s*(\S.*?)\s+moved\s+(\d+), optimum\s+([\d.]+), every instance on its new set after (\S+)\s*$`)

// JobsLive runs the end-to-end test of a collaborative pool on real
// nodes (e2e TestJobPoolChanges: 300 jobs, 2→3→5 instances, a node killed,
// then 2) and reports, per change, the jobs moved against the optimum and
// the time from the change until every instance holds its new set.
func JobsLive(ctx context.Context, e *Env) (out Outcome) {
	s := &out.Section
	s.Title = "11. Collaborative workloads on real nodes: time to the new sets"
	cmd := "go test -count=1 -run '^TestJobPoolChanges$' -v ./e2e/"
	s.Method = []string{fmt.Sprintf("`%s` from the workspace root (as root, containerd running): a root, a cluster and three "+
		"overlay nodes in network namespaces, real containers; a service with 300 jobs scaled 2→3→5, the node with most instances "+
		"killed (engine and containers), then scaled to 2. Every instance's job file is sampled 10 times a second; a change is "+
		"done when every instance's file holds the set the assignment gives it (the test also checks that no job is ever in two "+
		"files). The node grace is 3 s and the job lease 5 s, so the kill's time includes the lease.", cmd)}
	c := exec.CommandContext(ctx, e.GoBin, "test", "-count=1", "-run", "^TestJobPoolChanges$", "-v", "./e2e/")
	c.Dir = e.Repo
	raw, err := c.CombinedOutput()
	t := report.Table{Header: []string{"change", "jobs moved", "optimum", "every instance on its new set after"}}
	for _, l := range strings.Split(string(raw), "\n") {
		if m := jobsLiveLine.FindStringSubmatch(l); m != nil {
			t.Rows = append(t.Rows, []string{m[1], m[2], m[3], m[4]})
		}
	}
	if err != nil || len(t.Rows) == 0 {
		tail := string(raw)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		s.Err = fmt.Errorf("%s: %v (%d changes read)\n%s", cmd, err, len(t.Rows), tail)
		return
	}
	s.Tables = []report.Table{t}
	s.Notes = []string{"The times are measured at the test's sampling granularity (100 ms) and include the cluster's " +
		"handover: a job moving from A to B is revoked from A and acknowledged (or A's lease ends) before B gets it."}
	return
}
