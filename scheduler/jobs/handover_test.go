package jobs

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

func live(id string, acked int64) State {
	return State{Member: Member{ID: id}, Live: true, Acked: acked}
}

func jobsOf(r Result, id string) []string { return r.Grants[id].Jobs }

// TestHandoverWaitsForTheRelease walks one job from A to B: revoked from A
// first, granted to B only after A acknowledged.
func TestHandoverWaitsForTheRelease(t *testing.T) {
	jobs := names("cam", 40)
	r := Step(Ledger{}, jobs, []State{live("A", 0)}, t0)
	if len(jobsOf(r, "A")) != 40 || r.Ledger.Version != 1 || len(r.Unowned) != 0 {
		t.Fatalf("one member: A has %d jobs at version %d, unowned %v", len(jobsOf(r, "A")), r.Ledger.Version, r.Unowned)
	}
	// B joins; A has applied version 1.
	r = Step(r.Ledger, jobs, []State{live("A", 1), live("B", 0)}, t0)
	if len(jobsOf(r, "B")) != 0 {
		t.Fatalf("B got %v before A released anything", jobsOf(r, "B"))
	}
	if len(r.Moving) == 0 || len(r.Moving)+len(jobsOf(r, "A")) != 40 {
		t.Fatalf("moving %d, A keeps %d: want the moving ones out of A's set", len(r.Moving), len(jobsOf(r, "A")))
	}
	for j, mv := range r.Moving {
		if mv.From != "A" || mv.To != "B" || slices.Contains(jobsOf(r, "A"), j) {
			t.Fatalf("job %s: move %+v, still in A's set: %v", j, mv, slices.Contains(jobsOf(r, "A"), j))
		}
	}
	if got := len(r.Unowned); got != len(r.Moving) {
		t.Fatalf("%d unowned, %d moving", got, len(r.Moving))
	}
	v := r.Ledger.Version
	// Nothing changes while A has not acknowledged.
	again := Step(r.Ledger, jobs, []State{live("A", 1), live("B", v)}, t0)
	if again.Ledger.Version != v || len(jobsOf(again, "B")) != 0 {
		t.Fatalf("without A's ack: version %d→%d, B has %v", v, again.Ledger.Version, jobsOf(again, "B"))
	}
	// A acknowledges: B gets exactly the moved jobs.
	done := Step(r.Ledger, jobs, []State{live("A", v), live("B", v)}, t0)
	if len(done.Moving) != 0 || len(done.Unowned) != 0 {
		t.Fatalf("after A's ack: moving %v, unowned %v", done.Moving, done.Unowned)
	}
	for j := range r.Moving {
		if !slices.Contains(jobsOf(done, "B"), j) {
			t.Fatalf("job %s moved, but B did not get it: %v", j, jobsOf(done, "B"))
		}
	}
	want := Assign(jobs, []Member{{ID: "A"}, {ID: "B"}})
	for j, owner := range want {
		if !slices.Contains(jobsOf(done, owner), j) {
			t.Fatalf("job %s: not granted to its rendezvous owner %s", j, owner)
		}
	}
}

// TestHandoverAcrossAPartition: a member behind a partition keeps its jobs
// (nobody else gets them) until its lease ends.
func TestHandoverAcrossAPartition(t *testing.T) {
	jobs := names("stream", 30)
	r := Step(Ledger{}, jobs, []State{live("A", 0), live("B", 0)}, t0)
	aJobs := jobsOf(r, "A")
	if len(aJobs) == 0 {
		t.Fatal("A got no jobs")
	}
	lease := t0.Add(30 * time.Second)
	cut := State{Member: Member{ID: "A"}, Acked: 0, LeaseUntil: lease}
	r = Step(r.Ledger, jobs, []State{cut, live("B", r.Ledger.Version)}, t0.Add(time.Second))
	for _, j := range aJobs {
		if slices.Contains(jobsOf(r, "B"), j) {
			t.Fatalf("job %s given to B while A may still run it", j)
		}
	}
	r = Step(r.Ledger, jobs, []State{cut, live("B", r.Ledger.Version)}, lease.Add(time.Millisecond))
	if got := len(jobsOf(r, "B")); got != 30 || len(r.Unowned) != 0 {
		t.Fatalf("after A's lease ended: B has %d of 30, unowned %v", got, r.Unowned)
	}
	// A member absent from the input runs nothing: no wait.
	r2 := Step(Ledger{}, jobs, []State{live("A", 0), live("B", 0)}, t0)
	r2 = Step(r2.Ledger, jobs, []State{live("B", 1)}, t0)
	if len(jobsOf(r2, "B")) != 30 {
		t.Fatalf("A removed: B has %d of 30", len(jobsOf(r2, "B")))
	}
}

func TestJobsRemovedAndAddedBack(t *testing.T) {
	r := Step(Ledger{}, []string{"a", "b"}, []State{live("A", 0), live("B", 0)}, t0)
	holder := r.Ledger.Holders["a"]
	other := "A"
	if holder == "A" {
		other = "B"
	}
	// "a" is removed: revoked from its holder, which has not acked yet.
	r = Step(r.Ledger, []string{"b"}, []State{live("A", 1), live("B", 1)}, t0)
	if slices.Contains(jobsOf(r, holder), "a") {
		t.Fatalf("removed job still granted: %v", r.Grants)
	}
	// "a" comes back, now assigned (by weights) to the other member:
	// it must wait for the old holder's release.
	r = Step(r.Ledger, []string{"a", "b"}, []State{live(holder, 1), {Member: Member{ID: other, Weight: 1000}, Live: true, Acked: 1}}, t0)
	if r.Ledger.Holders["a"] == holder && slices.Contains(jobsOf(r, other), "a") {
		t.Fatalf("job a granted to %s while %s holds it", other, holder)
	}
	if got := Step(Ledger{}, nil, nil, t0); got.Ledger.Version != 0 || len(got.Grants) != 0 {
		t.Fatalf("empty step: %+v", got)
	}
}

// TestNeverTwoOwners drives random pools (joins, leaves, partitions, slow
// acknowledgements, job list changes) and checks after every step that no
// job may be running on two members, where a member may be running a job
// from the moment it is granted until it acknowledged a set without it or
// its lease ended; and that a quiet pool converges to the rendezvous
// assignment.
func TestNeverTwoOwners(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runPool(t, seed) })
	}
}

type simMember struct {
	id      string
	live    bool
	present bool
	lease   time.Time
	// applied is the grant the member runs; pending ones arrive later.
	applied Grant
	pending []Grant
}

func runPool(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	now := t0
	members := map[string]*simMember{}
	ids := names("m", 6)
	for _, id := range ids {
		members[id] = &simMember{id: id}
	}
	jobs := names("job", 25)
	var ledger Ledger
	for step := range 300 {
		now = now.Add(time.Second)
		// Random events.
		m := members[ids[rng.IntN(len(ids))]]
		switch rng.IntN(8) {
		case 0: // join or come back
			if !m.present {
				*m = simMember{id: m.id, present: true, live: true}
			} else {
				m.live = true
			}
		case 1: // partition: unreachable, stops on its own when the lease ends
			if m.present && m.live {
				m.live = false
				m.lease = now.Add(time.Duration(1+rng.IntN(10)) * time.Second)
			}
		case 2: // confirmed stopped
			*m = simMember{id: m.id}
		case 3: // the job list changes
			if rng.IntN(2) == 0 && len(jobs) > 1 {
				jobs = slices.Delete(slices.Clone(jobs), 0, 1)
			} else {
				jobs = append(slices.Clone(jobs), fmt.Sprintf("new%d", step))
			}
		}
		// Members behind a partition whose lease ended stop their jobs.
		for _, sm := range members {
			if sm.present && !sm.live && !now.Before(sm.lease) {
				sm.applied = Grant{Version: sm.applied.Version}
				sm.pending = nil
			}
		}
		// Live members apply pending grants in order, at random speed.
		for _, sm := range members {
			if sm.present && sm.live && len(sm.pending) > 0 && rng.IntN(3) > 0 {
				sm.applied = sm.pending[0]
				sm.pending = sm.pending[1:]
			}
		}
		var in []State
		for _, id := range ids {
			sm := members[id]
			if sm.present {
				in = append(in, State{Member: Member{ID: id}, Live: sm.live, Acked: sm.applied.Version, LeaseUntil: sm.lease})
			}
		}
		r := Step(ledger, jobs, in, now)
		ledger = r.Ledger
		for _, sm := range members {
			if g, ok := r.Grants[sm.id]; ok && sm.present && sm.live {
				last := sm.applied
				if n := len(sm.pending); n > 0 {
					last = sm.pending[n-1]
				}
				if g.Version != last.Version {
					sm.pending = append(sm.pending, g)
				}
			}
		}
		// Invariant: what may be running anywhere (applied, or granted and
		// possibly applied any moment) has at most one member per job.
		running := map[string]string{}
		for _, sm := range members {
			if !sm.present {
				continue
			}
			may := slices.Clone(sm.applied.Jobs)
			for _, g := range sm.pending {
				may = append(may, g.Jobs...)
			}
			for _, j := range may {
				if other, ok := running[j]; ok && other != sm.id {
					t.Fatalf("step %d: job %s may run on %s and %s (ledger %+v)", step, j, other, sm.id, ledger)
				}
				running[j] = sm.id
			}
		}
	}
	// Quiet: everybody live and applying; the pool converges.
	for _, sm := range members {
		if sm.present {
			sm.live = true
		}
	}
	var in []State
	for range 20 {
		in = nil
		for _, id := range ids {
			sm := members[id]
			if !sm.present {
				continue
			}
			if len(sm.pending) > 0 {
				sm.applied = sm.pending[len(sm.pending)-1]
				sm.pending = nil
			}
			in = append(in, State{Member: Member{ID: id}, Live: true, Acked: sm.applied.Version})
		}
		r := Step(ledger, jobs, in, now)
		ledger = r.Ledger
		for _, st := range in {
			if g := r.Grants[st.ID]; g.Version != members[st.ID].applied.Version {
				members[st.ID].pending = []Grant{g}
			}
		}
	}
	var live []Member
	for _, st := range in {
		live = append(live, st.Member)
	}
	want := Assign(jobs, live)
	for _, j := range jobs {
		if len(live) > 0 && ledger.Holders[j] != want[j] {
			t.Fatalf("quiet pool did not converge: job %s held by %q, rendezvous owner %q", j, ledger.Holders[j], want[j])
		}
	}
}
