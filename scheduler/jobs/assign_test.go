package jobs

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func pool(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("inst-%d", i)}
	}
	return ms
}

func TestAssignIsDeterministicAndIgnoresOrder(t *testing.T) {
	jobs := names("rtsp://camera-", 500)
	members := pool(7)
	want := Assign(jobs, members)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := append([]Member(nil), members...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := Assign(jobs, shuffled)
		for _, j := range jobs {
			if got[j] != want[j] {
				t.Fatalf("job %s: owner %s with one member order, %s with another", j, want[j], got[j])
			}
		}
	}
	// A known value, so that a change of the hash (which would move every
	// job of every running pool at upgrade) cannot go unnoticed.
	if got, _ := Owner("backup-db1", pool(3)); got != golden {
		t.Fatalf("Owner(backup-db1, 3 members) = %s, was %s: the hash changed", got, golden)
	}
}

// golden is the owner of "backup-db1" among inst-0..inst-2 as computed
// when the hash was chosen.
const golden = "inst-1"

func TestAssignEdgeCases(t *testing.T) {
	if got := Assign([]string{"a"}, nil); len(got) != 0 {
		t.Fatalf("no members: %v, want no owners", got)
	}
	if got := Assign(nil, pool(3)); len(got) != 0 {
		t.Fatalf("no jobs: %v", got)
	}
	got := Assign([]string{"a", "b", "c"}, []Member{{ID: "only"}, {ID: "only", Weight: 50}, {ID: ""}})
	for j, m := range got {
		if m != "only" {
			t.Fatalf("job %s owned by %q with one real member", j, m)
		}
	}
	if _, ok := Owner("x", nil); ok {
		t.Fatal("Owner with no members reported an owner")
	}
}

// TestAssignBalance: with J jobs over N equal members each member gets J/N
// within 15 %; at J=20000, N=10 that is about 5 standard deviations of a
// uniform hash, so a biased hash fails and a fair one practically never.
func TestAssignBalance(t *testing.T) {
	for _, tc := range []struct{ jobs, members int }{{20000, 10}, {20000, 4}, {30000, 25}} {
		t.Run(fmt.Sprintf("%d/%d", tc.jobs, tc.members), func(t *testing.T) {
			count := map[string]int{}
			for _, m := range Assign(names("job-", tc.jobs), pool(tc.members)) {
				count[m]++
			}
			mean := float64(tc.jobs) / float64(tc.members)
			if len(count) != tc.members {
				t.Fatalf("%d of %d members got jobs", len(count), tc.members)
			}
			for m, c := range count {
				if math.Abs(float64(c)-mean) > 0.15*mean {
					t.Errorf("%s got %d jobs, mean %.0f (bound ±15 %%)", m, c, mean)
				}
			}
		})
	}
}

func TestAssignWeights(t *testing.T) {
	members := []Member{{ID: "small", Weight: 1}, {ID: "big", Weight: 3}, {ID: "default"}}
	count := map[string]int{}
	const n = 30000
	for _, m := range Assign(names("j", n), members) {
		count[m]++
	}
	// Shares 1:3:1 of 5.
	for id, share := range map[string]float64{"small": 0.2, "big": 0.6, "default": 0.2} {
		got := float64(count[id]) / n
		if math.Abs(got-share) > 0.03 {
			t.Errorf("%s got %.3f of the jobs, want %.2f ± 0.03", id, got, share)
		}
	}
}

// TestMinimalMovement: growing a pool moves only jobs to the newcomer
// (about J/(N+1)); shrinking it moves only the leaver's jobs.
func TestMinimalMovement(t *testing.T) {
	const J = 12000
	jobs := names("stream-", J)
	for _, n := range []int{1, 3, 8} {
		before := Assign(jobs, pool(n))
		grown := pool(n + 1)
		after := Assign(jobs, grown)
		newcomer := grown[n].ID
		moved := 0
		for _, j := range jobs {
			if before[j] == after[j] {
				continue
			}
			moved++
			if after[j] != newcomer {
				t.Fatalf("growth %d→%d: job %s moved from %s to %s, not to the newcomer", n, n+1, j, before[j], after[j])
			}
		}
		want := float64(J) / float64(n+1)
		if math.Abs(float64(moved)-want) > 0.1*want {
			t.Errorf("growth %d→%d moved %d jobs, want about %.0f (±10 %%)", n, n+1, moved, want)
		}

		// The member inst-0 leaves.
		shrunk := grown[1:]
		afterLoss := Assign(jobs, shrunk)
		for _, j := range jobs {
			if after[j] != "inst-0" && afterLoss[j] != after[j] {
				t.Fatalf("loss of inst-0: job %s moved from %s, which stayed, to %s", j, after[j], afterLoss[j])
			}
			if afterLoss[j] == "inst-0" {
				t.Fatalf("job %s still owned by the member that left", j)
			}
		}
	}
}

func TestByMember(t *testing.T) {
	got := ByMember(map[string]string{"b": "x", "a": "x", "c": "y"})
	if fmt.Sprint(got) != "map[x:[a b] y:[c]]" {
		t.Fatalf("ByMember = %v", got)
	}
}

func BenchmarkAssign1000x50(b *testing.B) {
	jobs, members := names("j", 1000), pool(50)
	for b.Loop() {
		Assign(jobs, members)
	}
}

func TestNumbered(t *testing.T) {
	got := Numbered(0, 7)
	if len(got) != 2 || got[0] != (Member{ID: "0", Weight: 1}) || got[1] != (Member{ID: "7", Weight: 1}) {
		t.Errorf("Numbered(0, 7) = %+v", got)
	}
}
