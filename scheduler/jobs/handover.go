package jobs

import (
	"maps"
	"slices"
	"time"
)

// Ledger is what the assigning tier remembers between steps: who may be
// running each job, which jobs are being taken away from whom, and the
// version of what every member was last told. It is plain data, so it can
// be stored and reloaded; the zero Ledger is a pool that owns nothing.
type Ledger struct {
	// Version grows whenever what any member is told changes.
	Version int64 `json:"version"`
	// Holders maps a job to the member that may be running it: the job is
	// granted to it, or revoked from it but not yet released.
	Holders map[string]string `json:"holders,omitempty"`
	// Revoked maps a job being taken away to the version whose set first
	// left it out: the holder releases it by acknowledging that version.
	Revoked map[string]int64 `json:"revoked,omitempty"`
}

// State is what the assigning tier knows of one member now.
type State struct {
	Member
	// Live members are reachable and may get jobs.
	Live bool
	// Acked is the highest Version the member has confirmed it applied
	// (it runs exactly the jobs of that version's set and no others).
	Acked int64
	// LeaseUntil matters for a member that is not Live (e.g. its node is
	// UNKNOWN behind a partition): until then it may still be running
	// what it held, after it it has stopped on its own. A member absent
	// from the input is known to run nothing (stopped, deleted).
	LeaseUntil time.Time
}

// Grant is what one member is told: the jobs it owns at Version.
type Grant struct {
	Version int64    `json:"version"`
	Jobs    []string `json:"jobs"`
}

// Result is the outcome of a Step.
type Result struct {
	Ledger Ledger
	// Grants holds, for every member of the input, the jobs it may run.
	Grants map[string]Grant
	// Moving lists the jobs held by one member and assigned to another,
	// waiting for the holder to release them.
	Moving map[string]Move
	// Unowned lists the jobs that nobody may run now, sorted: no live
	// member, or waiting for a release.
	Unowned []string
}

// Move is a job on its way from one member to another.
type Move struct {
	From, To string
}

// Step advances the handover from ledger towards the rendezvous assignment
// of jobs over the live members, at time now. It never lets two members
// hold one job: a job whose holder must give it up is left out of the
// holder's set first, and granted to its new owner only after the holder
// acknowledged a version without it, its lease ran out, or it left the
// input. Jobs removed from the list are revoked the same way, so a job
// added back cannot be granted twice.
//
// Step is a pure function: call it whenever jobs, members or
// acknowledgements change, store the Ledger, publish the Grants.
func Step(ledger Ledger, jobs []string, members []State, now time.Time) Result {
	byID := make(map[string]State, len(members))
	var live []Member
	for _, m := range members {
		if m.ID == "" {
			continue
		}
		if _, dup := byID[m.ID]; dup {
			continue
		}
		byID[m.ID] = m
		if m.Live {
			live = append(live, m.Member)
		}
	}
	// mayRun says whether a member may still be running what it holds.
	mayRun := func(id string) bool {
		m, ok := byID[id]
		return ok && (m.Live || now.Before(m.LeaseUntil))
	}
	target := Assign(jobs, live)
	wanted := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		wanted[j] = true
	}

	holders := map[string]string{}
	revoking := map[string]bool{} // job: revoked in this step's sets
	oldRevoked := ledger.Revoked
	all := slices.Collect(maps.Keys(ledger.Holders))
	for _, j := range jobs {
		if _, ok := ledger.Holders[j]; !ok {
			all = append(all, j)
		}
	}
	moving := map[string]Move{}
	for _, j := range all {
		h := ledger.Holders[j]
		if h != "" && !mayRun(h) {
			h = "" // stopped, deleted or its lease ran out
		}
		if v, ok := oldRevoked[j]; ok && h != "" && byID[h].Acked >= v {
			h = "" // released
		}
		t := ""
		if wanted[j] {
			t = target[j]
		}
		switch {
		case h == "" && t == "":
		case h == "":
			holders[j] = t
		case h == t:
			holders[j] = h // kept, or a revocation withdrawn
		default:
			holders[j] = h
			revoking[j] = true
			if t != "" {
				moving[j] = Move{From: h, To: t}
			}
		}
	}

	// The sets: every member's granted jobs.
	sets := map[string][]string{}
	for j, h := range holders {
		if !revoking[j] {
			sets[h] = append(sets[h], j)
		}
	}
	for _, js := range sets {
		slices.Sort(js)
	}
	prevSets := grantedSets(ledger)
	version := ledger.Version
	if !equalSets(prevSets, sets) {
		version++
	}
	revoked := map[string]int64{}
	for j := range revoking {
		if v, ok := oldRevoked[j]; ok && ledger.Holders[j] == holders[j] {
			revoked[j] = v // still waiting for the same release
		} else {
			revoked[j] = version
		}
	}

	res := Result{
		Ledger: Ledger{Version: version, Holders: holders, Revoked: revoked},
		Grants: make(map[string]Grant, len(byID)),
		Moving: moving,
	}
	for id := range byID {
		res.Grants[id] = Grant{Version: version, Jobs: nonNil(sets[id])}
	}
	for _, j := range jobs {
		if _, ok := holders[j]; !ok || revoking[j] {
			res.Unowned = append(res.Unowned, j)
		}
	}
	slices.Sort(res.Unowned)
	res.Unowned = slices.Compact(res.Unowned)
	if len(res.Ledger.Holders) == 0 {
		res.Ledger.Holders = nil
	}
	if len(res.Ledger.Revoked) == 0 {
		res.Ledger.Revoked = nil
	}
	return res
}

// grantedSets recomputes the members' sets of a ledger.
func grantedSets(l Ledger) map[string][]string {
	sets := map[string][]string{}
	for j, h := range l.Holders {
		if _, revoked := l.Revoked[j]; !revoked {
			sets[h] = append(sets[h], j)
		}
	}
	for _, js := range sets {
		slices.Sort(js)
	}
	return sets
}

func equalSets(a, b map[string][]string) bool {
	return maps.EqualFunc(a, b, slices.Equal[[]string])
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
