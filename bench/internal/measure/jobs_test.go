package measure

import (
	"context"
	"strings"
	"testing"
)

// TestJobsMovement: rendezvous hashing stays within the target on every
// change, and contiguous blocks move far more on growth (the point of
// the comparison).
func TestJobsMovement(t *testing.T) {
	for _, c := range poolChanges {
		m := measureChange(c)
		t.Logf("%-20s J=%-5d optimum %6.0f rendezvous %5d blocks %5d", c.what, c.jobs, m.optimum, m.rendezvous, m.blocks)
		if float64(m.rendezvous) > jobsMovedBudget*m.optimum {
			t.Errorf("%s: rendezvous moved %d, more than %.0f%% of the optimum %.0f", c.what, m.rendezvous, 100*jobsMovedBudget, m.optimum)
		}
		if strings.HasPrefix(c.what, "grow") && float64(m.blocks) < 1.4*m.optimum {
			t.Errorf("%s: blocks moved %d, expected far more than the optimum %.0f", c.what, m.blocks, m.optimum)
		}
	}
	out := Jobs(context.Background(), &Env{})
	if out.Section.Err != nil || len(out.Targets) != 1 || out.Targets[0].Verdict != "met" {
		t.Errorf("outcome %+v", out)
	}
}
