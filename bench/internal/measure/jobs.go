package measure

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/scheduler/jobs"
)

// jobsMovedBudget is the target (docs/targets.md): jobs moved per pool
// change at most this much above the optimum.
const jobsMovedBudget = 1.10

// poolChange is a change of a job pool: the members before and after.
type poolChange struct {
	what          string
	jobs          int
	before, after []int
}

// poolChanges are the changes measured: the end-to-end test's (300 jobs,
// 2→3→5→2, a member lost) and larger pools.
var poolChanges = []poolChange{
	{"grow 2→3", 300, []int{0, 1}, []int{0, 1, 2}},
	{"grow 3→5", 300, []int{0, 1, 2}, []int{0, 1, 2, 3, 4}},
	{"shrink 5→2", 300, []int{0, 1, 2, 3, 4}, []int{0, 1}},
	{"lose member 1 of 5", 300, []int{0, 1, 2, 3, 4}, []int{0, 2, 3, 4}},
	{"grow 10→11", 10000, seq(10), seq(11)},
	{"lose member 5 of 11", 10000, seq(11), slices.DeleteFunc(seq(11), func(n int) bool { return n == 5 })},
	{"grow 50→51", 10000, seq(50), seq(51)},
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// movement is what one change moves: by rendezvous hashing, by contiguous
// blocks over the members in order (the Kubernetes operator of issue 21
// assigns so), and the optimum.
type movement struct {
	rendezvous, blocks int
	optimum            float64
}

// measureChange computes the movement of c.
func measureChange(c poolChange) movement {
	list := make([]string, c.jobs)
	for i := range list {
		list[i] = fmt.Sprintf("job-%05d", i)
	}
	var m movement
	before, after := jobs.Assign(list, jobs.Numbered(c.before...)), jobs.Assign(list, jobs.Numbered(c.after...))
	bb, ba := blocks(list, c.before), blocks(list, c.after)
	for _, j := range list {
		if before[j] != after[j] {
			m.rendezvous++
		}
		if bb[j] != ba[j] {
			m.blocks++
		}
	}
	m.optimum = optimumMoves(c, before)
	return m
}

// blocks assigns jobs in contiguous blocks over the members in order:
// the i-th of J jobs to member ⌊i·N/J⌋.
func blocks(list []string, members []int) map[string]int {
	out := make(map[string]int, len(list))
	for i, j := range list {
		out[j] = members[i*len(members)/len(list)]
	}
	return out
}

// optimumMoves is the fewest jobs any assignment must move from before:
// every job the leavers held, and on growth the newcomers' balanced share
// J·k/M (k newcomers, M members after).
func optimumMoves(c poolChange, before map[string]string) float64 {
	came := 0
	for _, n := range c.after {
		if !slices.Contains(c.before, n) {
			came++
		}
	}
	held := 0
	for _, owner := range before {
		if n, _ := strconv.Atoi(owner); !slices.Contains(c.after, n) {
			held++
		}
	}
	return float64(held) + float64(c.jobs)*float64(came)/float64(len(c.after))
}

// Jobs measures how many jobs a change of a collaborative pool moves
// (scheduler/jobs, pure; no system needed).
func Jobs(_ context.Context, _ *Env) (out Outcome) {
	s := &out.Section
	s.Title = "9. Collaborative workloads: jobs moved per pool change"
	s.Method = []string{"The cluster's assignment (`scheduler/jobs`, weighted rendezvous hashing over the instance numbers) computed for the job " +
		"list `job-00000`… before and after each change, in process; the jobs whose owner differs are the ones moved. Compared with contiguous " +
		"blocks over the members in order (job i of J to member ⌊i·N/J⌋, as the Kubernetes operator of issue 21 assigns over a " +
		"StatefulSet's ordinals) and with the optimum: the fewest jobs any assignment must move from the one before, that is every job " +
		"the leavers held, plus on growth the newcomers' balanced share J·k/M. The target is judged on the largest ratio to the optimum."}
	target := report.Target{What: "jobs moved per pool change", Anchor: "contiguous blocks (Kubernetes operator): about half on growth by one",
		Target: "≤ 110 % of the optimum", Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target) }()
	t := report.Table{Header: []string{"change", "jobs", "optimum", "rendezvous", "÷ optimum", "contiguous blocks", "÷ optimum"}}
	worst, at := 0.0, ""
	for _, c := range poolChanges {
		m := measureChange(c)
		r := float64(m.rendezvous) / m.optimum
		if r > worst {
			worst, at = r, c.what
		}
		t.Rows = append(t.Rows, []string{c.what, strconv.Itoa(c.jobs), fmt.Sprintf("%.0f", m.optimum), strconv.Itoa(m.rendezvous),
			report.Pct(100 * r), strconv.Itoa(m.blocks), report.Pct(100 * float64(m.blocks) / m.optimum)})
	}
	s.Tables = []report.Table{t}
	target.Measured = fmt.Sprintf("%s of the optimum at worst (%s)", report.Pct(100*worst), at)
	target.Verdict = report.Verdict(worst <= jobsMovedBudget)
	s.Notes = []string{"Rendezvous hashing moves jobs only to newcomers or from leavers, never between members that stay; its excess over the " +
		"optimum is the imbalance of the hash on growth (a newcomer's share varies by about 1/√(J/M)); on loss it moves exactly the leavers' jobs. The time from a scale change until every " +
		"instance runs its new set, on real nodes, is section 11."}
	return
}
