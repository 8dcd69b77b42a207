package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/scheduler/jobs"
)

// pool drives a manager with a job pool the way nodes would: each node
// applies the grants in its desired set at once and acknowledges them in
// its next report, unless it is silent.
type pool struct {
	t      *testing.T
	m      *Manager
	pub    *recorder
	nodes  []string
	silent map[string]bool
	list   []string
	// runs: the jobs each instance runs now (what its node applied), by key.
	runs map[string][]string
	ver  map[string]int64 // the grant version each instance applied
	// moved counts, per job, the instances it went to after the first
	// assignment.
	owner map[string]string
	moved int
}

func newPool(t *testing.T, store Store, nJobs int) *pool {
	p := &pool{t: t, pub: &recorder{desired: map[string]wire.NodeDesired{}}, silent: map[string]bool{},
		runs: map[string][]string{}, ver: map[string]int64{}, owner: map[string]string{}}
	p.m = newManager(t, store, p.pub)
	p.nodes = []string{join(t, p.m, "n1"), join(t, p.m, "n2")}
	for i := range nJobs {
		p.list = append(p.list, "cam-"+strconv.Itoa(i))
	}
	return p
}

func (p *pool) spec(n int) wire.InstanceSpec {
	return wire.InstanceSpec{Key: wire.InstanceKey("svc", n), ServiceID: "svc", InstanceNumber: n, Virtualization: "container",
		Code: "img", Resources: wire.Resources{MilliCPU: 900, MemoryMB: 64}, Jobs: p.list, JobsLease: 5}
}

// step reconciles, lets every node that is not silent apply its desired
// set and report its instances running with the grant applied, then checks
// that no job runs in two instances.
func (p *pool) step() {
	p.t.Helper()
	if err := p.m.Reconcile(context.Background()); err != nil {
		p.t.Fatal(err)
	}
	for _, id := range p.nodes {
		if p.silent[id] {
			continue
		}
		var sts []wire.InstanceStatus
		for _, sp := range p.pub.desired[id].Instances {
			if len(sp.Jobs) != 0 || sp.JobsLease != 0 {
				p.t.Fatalf("node %s got the job list in %s's spec", id, sp.Key)
			}
			st := wire.InstanceStatus{Key: sp.Key, Status: wire.StatusRunning}
			if g := sp.JobGrant; g != nil {
				p.runs[sp.Key], p.ver[sp.Key] = g.Jobs, g.Version
				st.JobsVersion, st.Jobs = g.Version, g.Jobs
			}
			sts = append(sts, st)
		}
		p.m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
			Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}, Instances: sts, Full: true})
	}
	p.check()
}

// check: every job runs in at most one instance.
func (p *pool) check() {
	p.t.Helper()
	where := map[string]string{}
	for key, js := range p.runs {
		for _, j := range js {
			if other, dup := where[j]; dup {
				p.t.Fatalf("job %s runs in %s and %s", j, other, key)
			}
			where[j] = key
			if o, ok := p.owner[j]; ok && o != key {
				p.moved++
			}
			p.owner[j] = key
		}
	}
}

// settle steps until the grants stop changing.
func (p *pool) settle() {
	p.t.Helper()
	for range 10 {
		before := fmt.Sprint(p.runs, p.ver)
		p.step()
		if fmt.Sprint(p.runs, p.ver) == before {
			return
		}
	}
	p.t.Fatalf("the grants did not settle: %v", p.runs)
}

// byInstance is what each instance runs, by instance number.
func (p *pool) byInstance() map[string][]string {
	out := map[string][]string{}
	for key, js := range p.runs {
		_, n, _ := wire.ParseInstanceKey(key)
		if len(js) > 0 {
			out[strconv.Itoa(n)] = js
		}
	}
	return out
}

func assignment(list []string, members ...int) map[string][]string {
	return jobs.ByMember(jobs.Assign(list, jobs.Numbered(members...)))
}

// TestJobPool: the cluster shares a service's jobs among its running
// instances as rendezvous hashing says; a new instance gets only the jobs
// that must move, each only after its holder gave it up; a changed list
// restarts nothing; a silent node's jobs stay with it for its lease, then
// go to the others; a restarted manager keeps the handover.
func TestJobPool(t *testing.T) {
	store := state.NewMemory()
	p := newPool(t, store, 24)
	p.m.SetDesired([]wire.InstanceSpec{p.spec(0), p.spec(1), p.spec(2)}, nil)
	p.settle()
	if want := assignment(p.list, 0, 1, 2); !maps.EqualFunc(p.byInstance(), want, slices.Equal[[]string]) {
		t.Fatalf("three instances run %v, want %v", p.byInstance(), want)
	}
	for _, sp := range p.pub.desired[p.nodes[0]].Instances {
		if sp.JobGrant.PoolSize != 3 || sp.JobGrant.LeaseS != 5 {
			t.Errorf("grant of %s: %+v", sp.Key, sp.JobGrant)
		}
	}

	// A fourth instance: only the jobs it owns move, each revoked first.
	p.moved = 0
	p.m.UpdateDesired([]wire.InstanceSpec{p.spec(3)}, nil)
	p.step()
	want := assignment(p.list, 0, 1, 2, 3)
	if len(p.runs["svc.3"]) != 0 {
		t.Errorf("the new instance got %v before their holders gave them up", p.runs["svc.3"])
	}
	p.settle()
	if !maps.EqualFunc(p.byInstance(), want, slices.Equal[[]string]) {
		t.Fatalf("four instances run %v, want %v", p.byInstance(), want)
	}
	if p.moved != len(want["3"]) {
		t.Errorf("%d jobs moved, want %d (those of the new instance)", p.moved, len(want["3"]))
	}

	// A changed list is no new spec for the nodes: nothing restarts.
	p.list = append(slices.Clone(p.list), "cam-new")
	var specs []wire.InstanceSpec
	for n := range 4 {
		specs = append(specs, p.spec(n))
	}
	p.m.UpdateDesired(specs, nil)
	p.settle()
	if want := assignment(p.list, 0, 1, 2, 3); !maps.EqualFunc(p.byInstance(), want, slices.Equal[[]string]) {
		t.Fatalf("after a new job: %v, want %v", p.byInstance(), want)
	}

	// A restarted manager on the same store continues the handover.
	p.m = newManager(t, store, p.pub)
	p.settle()
	if want := assignment(p.list, 0, 1, 2, 3); !maps.EqualFunc(p.byInstance(), want, slices.Equal[[]string]) {
		t.Fatalf("after a restart: %v, want %v", p.byInstance(), want)
	}

	// A node goes silent: its instances' jobs stay theirs for the lease,
	// although their replacements on a third node run and acknowledge.
	p.nodes = append(p.nodes, join(t, p.m, "n3"))
	p.m.cfg.Grace = 50 * time.Millisecond
	silent := p.nodes[0]
	p.silent[silent] = true
	var lostKeys []string
	for _, sp := range p.pub.desired[silent].Instances {
		lostKeys = append(lostKeys, sp.Key)
	}
	if len(lostKeys) == 0 {
		t.Fatal("no instance on the first node")
	}
	p.m.mu.Lock()
	p.m.nodes[silent].lastSeen = time.Now().Add(-time.Second)
	p.m.nodes[silent].graceUntil = time.Time{}
	p.m.mu.Unlock()
	held := 0
	for _, k := range lostKeys {
		held += len(p.runs[k])
	}
	p.step() // check: none of their jobs runs elsewhere
	p.step()
	for _, st := range p.m.Statuses() {
		if slices.Contains(lostKeys, st.Key) && st.NodeID != p.nodes[2] {
			t.Fatalf("the silent node's instance %s is not replaced on the third node: %+v", st.Key, st)
		}
	}
	running := 0
	for k, js := range p.runs {
		if !slices.Contains(lostKeys, k) {
			running += len(js)
		}
	}
	if running+held != len(p.list) {
		t.Errorf("within the lease the others run %d jobs and the silent node held %d, of %d", running, held, len(p.list))
	}
	// The lease ran out: the silent node has dropped them (it enforces
	// the lease itself), and they go to the instances that run.
	for _, k := range lostKeys {
		p.runs[k] = nil
	}
	p.m.mu.Lock()
	p.m.nodes[silent].lastSeen = time.Now().Add(-time.Minute)
	p.m.mu.Unlock()
	p.settle()
	var alive []int
	for k, js := range p.runs {
		if len(js) > 0 {
			_, n, _ := wire.ParseInstanceKey(k)
			alive = append(alive, n)
		}
	}
	if len(alive) != 4 {
		t.Fatalf("after the lease %v run jobs; want all four (two replaced)", p.runs)
	}
	if want := assignment(p.list, alive...); !maps.EqualFunc(p.byInstance(), want, slices.Equal[[]string]) {
		t.Errorf("after the lease: %v, want %v", p.byInstance(), want)
	}
}

// TestJobLedgerWrittenBeforeGrants: a ledger the store does not take is
// not published.
func TestJobLedgerWrittenBeforeGrants(t *testing.T) {
	store := state.NewMemory()
	p := newPool(t, store, 4)
	store.SaveErr = errors.New("store down")
	p.m.SetDesired([]wire.InstanceSpec{p.spec(0)}, nil)
	_ = p.m.Reconcile(context.Background())
	p.m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: p.nodes[0], Node: wire.NodeInfo{Active: true}, Full: true,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}})
	p.m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: p.nodes[1], Node: wire.NodeInfo{Active: true}, Full: true,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}})
	if err := p.m.Reconcile(context.Background()); err == nil {
		t.Fatal("reconcile with a failing store reported no error")
	}
	for _, id := range p.nodes {
		for _, sp := range p.pub.desired[id].Instances {
			if sp.JobGrant != nil && len(sp.JobGrant.Jobs) > 0 {
				t.Fatalf("a grant was published from a ledger that is not stored: %+v", sp.JobGrant)
			}
		}
	}
	store.SaveErr = nil
	p.settle()
	if len(p.runs["svc.0"]) != 4 {
		t.Errorf("once stored, the instance runs %v", p.runs["svc.0"])
	}
}

// TestJobLedgerInMongoDB: a ledger with job names MongoDB keys could not
// hold is stored and loaded whole, and deleted.
func TestJobLedgerInMongoDB(t *testing.T) {
	st := realStore(t, t.TempDir())
	ctx := context.Background()
	l := jobs.Ledger{Version: 7, Holders: map[string]string{"a.b": "0", "$c": "1"}, Revoked: map[string]int64{"$c": 7}}
	if err := st.SaveJobLedger(ctx, "svc", &l); err != nil {
		t.Fatal(err)
	}
	got, err := st.JobLedgers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := got["svc"]; len(got) != 1 || !sameLedger(g, l) {
		t.Fatalf("loaded %+v, want %+v", got, l)
	}
	if id, err := st.Identity(ctx); err != nil || id != nil {
		t.Errorf("a ledger reads as the identity: %+v, %v", id, err)
	}
	if err := st.SaveJobLedger(ctx, "svc", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := st.JobLedgers(ctx); err != nil || len(got) != 0 {
		t.Errorf("after delete: %+v, %v", got, err)
	}
}
