// Package jobs shares a service's list of jobs among its instances so that
// each job has exactly one owner (issue 21, collaborative workloads).
//
// Assign maps jobs to members by weighted rendezvous (highest random weight)
// hashing: every (member, job) pair gets a score from a hash of both names,
// and a job belongs to the member with the highest score. The result depends
// only on the job names, the member ids and their weights, so any tier
// computes the same assignment from the same inputs, and a change of the pool
// moves only the jobs that must move: on growth about J/(N+1) jobs go to the
// newcomer and no job moves between old members; on loss only the leaver's
// jobs move.
//
// Step turns assignments into a handover that never gives a job two owners:
// a job leaving member A is first revoked from A and handed to B only when A
// acknowledged the revocation or A's lease ended (see Ledger).
package jobs

import (
	"cmp"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
)

// Member is one instance of the pool.
type Member struct {
	// ID names the instance; it must be stable across the instance's
	// restarts (e.g. the service's instance number), or its jobs move.
	ID string
	// Weight is the instance's share relative to the others (e.g. its
	// CPU); a member of weight 2 gets about twice the jobs of one of
	// weight 1. Zero or less counts as 1.
	Weight float64
}

func (m Member) weight() float64 {
	if m.Weight > 0 && !math.IsInf(m.Weight, 0) && !math.IsNaN(m.Weight) {
		return m.Weight
	}
	return 1
}

// score is the weighted rendezvous score of a member for a job:
// -w / ln(u), with u uniform in (0, 1) from a hash of both names. Of several
// members the one with the highest score wins, and a member of weight w wins
// a share of w / Σw of the jobs (Schindelhauer and Schomaker's weighted
// distributed hash tables; the logarithmic method).
func score(member Member, job string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member.ID))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(job))
	x := mix(h.Sum64())
	u := (float64(x>>11) + 0.5) / (1 << 53) // in (0, 1)
	return -member.weight() / math.Log(u)
}

// mix is the splitmix64 finaliser: FNV alone leaves the high bits of short,
// similar names correlated.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Owner is the member that owns job among members, or false when there are
// no members. Ties (practically impossible) go to the smaller id, so the
// result never depends on the members' order.
func Owner(job string, members []Member) (string, bool) {
	best, bestScore, found := "", math.Inf(-1), false
	for _, m := range members {
		s := score(m, job)
		if !found || s > bestScore || (s == bestScore && m.ID < best) {
			best, bestScore, found = m.ID, s, true
		}
	}
	return best, found
}

// Assign maps every job to its owner among members. With no members the
// map is empty. Duplicate member ids count once (the first weight wins).
func Assign(jobs []string, members []Member) map[string]string {
	members = uniqueMembers(members)
	out := make(map[string]string, len(jobs))
	if len(members) == 0 {
		return out
	}
	for _, j := range jobs {
		out[j], _ = Owner(j, members)
	}
	return out
}

// ByMember groups an assignment by member, each member's jobs sorted.
// Members without jobs are absent.
func ByMember(assignment map[string]string) map[string][]string {
	out := map[string][]string{}
	for job, m := range assignment {
		out[m] = append(out[m], job)
	}
	for _, js := range out {
		slices.Sort(js)
	}
	return out
}

func uniqueMembers(members []Member) []Member {
	seen := make(map[string]bool, len(members))
	out := make([]Member, 0, len(members))
	for _, m := range members {
		if m.ID == "" || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Numbered returns members named by instance numbers ("0", "1", ...), of
// weight 1: a service's pool as the cluster names it.
func Numbered(ns ...int) []Member {
	out := make([]Member, len(ns))
	for i, n := range ns {
		out[i] = Member{ID: strconv.Itoa(n), Weight: 1}
	}
	return out
}
