package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/scheduler/jobs"
)

// jobFiles reads the job files of a service's instances on the given
// nodes: which instance (by node and number) holds which jobs now.
type jobFiles map[string][]string // "<node>/<number>" → jobs

func readJobFiles(serviceID string, nodes ...*node) jobFiles {
	out := jobFiles{}
	for _, n := range nodes {
		root := filepath.Join(n.dir, "jobs")
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			svc, num, err := wire.ParseInstanceKey(e.Name())
			if err != nil || svc != serviceID {
				continue
			}
			b, err := os.ReadFile(filepath.Join(root, e.Name(), "jobs.json"))
			if err != nil {
				continue
			}
			var f struct {
				Jobs []string `json:"jobs"`
			}
			if json.Unmarshal(b, &f) == nil && len(f.Jobs) > 0 {
				out[n.name+"/"+strconv.Itoa(num)] = f.Jobs
			}
		}
	}
	return out
}

// doubles lists the jobs held by more than one instance.
func (f jobFiles) doubles() []string {
	where := map[string][]string{}
	for who, js := range f {
		for _, j := range js {
			where[j] = append(where[j], who)
		}
	}
	var out []string
	for j, ws := range where {
		if len(ws) > 1 {
			slices.Sort(ws)
			out = append(out, j+" in "+strings.Join(ws, " and "))
		}
	}
	slices.Sort(out)
	return out
}

// byNumber is the jobs each instance number holds (the node left out).
func (f jobFiles) byNumber() map[string][]string {
	out := map[string][]string{}
	for who, js := range f {
		_, num, _ := strings.Cut(who, "/")
		out[num] = append(out[num], js...)
	}
	for _, js := range out {
		slices.Sort(js)
	}
	return out
}

// jobSampler reads the job files of a service's instances on the nodes
// it watches ten times a second, until the test ends, and keeps every
// job it finds in two files in two reads in a row (a double in both is no
// artefact of a handover between the reads of two files).
type jobSampler struct {
	t          *testing.T
	mu         sync.Mutex
	live       []*node
	samples    int
	violations []string
}

func startJobSampler(t *testing.T, serviceID string, nodes ...*node) *jobSampler {
	s := &jobSampler{t: t, live: nodes}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s.mu.Lock()
			ns := slices.Clone(s.live)
			s.mu.Unlock()
			first := readJobFiles(serviceID, ns...).doubles()
			second := readJobFiles(serviceID, ns...).doubles()
			s.mu.Lock()
			s.samples++
			for _, d := range first {
				if slices.Contains(second, d) {
					s.violations = append(s.violations, time.Now().Format("15:04:05.000")+" "+d)
				}
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return s
}

// watch sets the nodes whose files count (a dead or cut-off node's are
// read by nobody).
func (s *jobSampler) watch(nodes ...*node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = nodes
}

// check fails the test if a job was in two files so far.
func (s *jobSampler) check(what string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) > 0 {
		s.t.Fatalf("%s: jobs in two files at once: %v", what, s.violations[:min(len(s.violations), 10)])
	}
	s.t.Logf("%s: %d samples so far, no job in two files", what, s.samples)
}

// rendezvous is the assignment the cluster must reach over instances nums.
func rendezvous(list []string, nums ...int) map[string][]string {
	return jobs.ByMember(jobs.Assign(list, jobs.Numbered(nums...)))
}

// TestJobPool: a service with 12 jobs on 3 instances over 2 nodes: every
// job is in exactly one instance's job file, as rendezvous hashing says;
// scaled to 4, only the jobs the new instance owns move; a node cut off
// from its cluster gives its jobs up after the lease and the others take
// them. A sampler reads every job file ten times a second throughout: no
// job is ever in two files.
func TestJobPool(t *testing.T) {
	const nodeGrace, lease = 3 * time.Second, 5
	s := newSystem(t)
	c := s.addClusterOn(bridgeAddr, "pool", "", "--node-grace", nodeGrace.String())
	// Three instances fit on a node: the pool spans both.
	n1 := s.addNode(c, "j1", 61, 1024, c.nodeToken)
	n2 := s.addNode(c, "j2", 62, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"pool": 2})
	var list []string
	for i := range 12 {
		list = append(list, fmt.Sprintf("cam-%02d", i))
	}
	// Instances share their node's network: the test app only watches its
	// job file, and serves nothing.
	id := s.app("pool", map[string]any{"microservice_name": "cams", "memory": 300, "cmd": []string{"jobs"},
		"jobs": list, "jobs_lease_s": lease})["cams"]

	sampler := startJobSampler(t, id, n1, n2)
	checkSamples := sampler.check
	waitAssignment := func(what string, want map[string][]string, nodes ...*node) jobFiles {
		t.Helper()
		var got jobFiles
		testharness.WaitFor(t, 2*time.Minute, what, func() (bool, string) {
			got = readJobFiles(id, nodes...)
			return maps.EqualFunc(got.byNumber(), want, slices.Equal[[]string]), fmt.Sprintf("have %v, want %v", got, want)
		})
		return got
	}

	for range 3 {
		s.scaleUp(id)
	}
	three := rendezvous(list, 0, 1, 2)
	before := waitAssignment("three instances own the jobs as rendezvous hashing says", three, n1, n2)
	checkSamples("three instances")

	// Seen inside the container: the file through the read-only mount.
	printed := func(n int, js []string) {
		t.Helper()
		testharness.WaitFor(t, time.Minute, fmt.Sprintf("instance %d prints its jobs %v", n, js), func() (bool, string) {
			ctx, cancel := s.api.ctx()
			defer cancel()
			l, err := s.api.client().Logs(ctx, id, n, 50)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(l.Logs, ": "+strings.Join(js, ",")+"\n"), l.Logs
		})
	}
	printed(0, three["0"])
	// And through the API.
	testharness.WaitFor(t, time.Minute, "the API shows every job owned", func() (bool, string) {
		ctx, cancel := s.api.ctx()
		defer cancel()
		sj, err := s.api.client().Jobs(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return len(sj.Unowned) == 0 && len(sj.Assignment) == len(list) && sj.Assignment[three["1"][0]] == 1, fmt.Sprintf("%+v", sj)
	})

	// Scale to four: only the jobs the new instance owns move.
	s.scaleUp(id)
	four := rendezvous(list, 0, 1, 2, 3)
	after := waitAssignment("four instances own the jobs as rendezvous hashing says", four, n1, n2)
	moved := 0
	owner := func(f jobFiles, j string) string {
		for who, js := range f.byNumber() {
			if slices.Contains(js, j) {
				return who
			}
		}
		return ""
	}
	for _, j := range list {
		if owner(before, j) != owner(after, j) {
			moved++
			if owner(after, j) != "3" {
				t.Errorf("job %s moved from %s to %s, not to the new instance", j, owner(before, j), owner(after, j))
			}
		}
	}
	if moved != len(four["3"]) {
		t.Errorf("%d jobs moved, want %d (the new instance's)", moved, len(four["3"]))
	}
	checkSamples("scaled to four")
	// The instances that gave jobs up saw it live, without a restart.
	for n := range 3 {
		if !slices.Equal(three[strconv.Itoa(n)], four[strconv.Itoa(n)]) {
			printed(n, four[strconv.Itoa(n)])
			if in, _ := s.api.instance(id, n); in.Restarts != 0 {
				t.Errorf("instance %d restarted %d times", n, in.Restarts)
			}
		}
	}

	// Cut a node holding instance 0 off: within the lease its copies keep
	// their jobs and nobody else gets them; after it they are in files on
	// the other node only.
	in0, _ := s.api.instance(id, 0)
	cut, other := n1, n2
	if in0.NodeName == n2.name {
		cut, other = n2, n1
	}
	var cutNums []int
	for who := range after {
		if node, num, _ := strings.Cut(who, "/"); node == cut.name {
			n, _ := strconv.Atoi(num)
			cutNums = append(cutNums, n)
		}
	}
	veth := fmt.Sprintf("thkv%s%d", runID, map[*node]int{n1: 61, n2: 62}[cut])
	run(t, "ip", "link", "set", veth, "down")
	defer run(t, "ip", "link", "set", veth, "up")
	cutAt := time.Now()
	testharness.WaitFor(t, time.Minute, "the cut-off node empties its job files", func() (bool, string) {
		f := readJobFiles(id, cut)
		return len(f) == 0, fmt.Sprint(f)
	})
	emptied := time.Since(cutAt)
	// The instances that run: those on the other node, and the
	// replacements of the cut node's there (as many as fit).
	var final jobFiles
	var nums []int
	testharness.WaitFor(t, 2*time.Minute, "the other node's instances own every job", func() (bool, string) {
		nums = nil
		for _, in := range s.api.service(id).InstanceList {
			if in.Status == wire.StatusRunning && in.NodeName == other.name {
				nums = append(nums, in.InstanceNumber)
			}
		}
		final = readJobFiles(id, other)
		want := rendezvous(list, nums...)
		return len(nums) > 0 && maps.EqualFunc(final.byNumber(), want, slices.Equal[[]string]), fmt.Sprintf("running there %v: have %v, want %v", nums, final, want)
	})
	reached := time.Since(cutAt)
	sampler.watch(other)
	checkSamples("node cut off")
	t.Logf("node %s cut off (instances %v): its files empty after %s, every job on %s (instances %v) after %s (lease %d s)",
		cut.name, cutNums, emptied.Round(100*time.Millisecond), other.name, nums, reached.Round(100*time.Millisecond), lease)
	if reached < time.Duration(lease)*time.Second {
		t.Errorf("the jobs reached the other node %s after the cut, before the lease of %d s", reached, lease)
	}
	if len(final) == 0 {
		t.Fatal("no job file on the other node")
	}
	var sj *api.ServiceJobs
	testharness.WaitFor(t, time.Minute, "the API shows every job owned after the cut", func() (bool, string) {
		ctx, cancel := s.api.ctx()
		defer cancel()
		var err error
		sj, err = s.api.client().Jobs(ctx, id)
		return err == nil && len(sj.Unowned) == 0 && len(sj.Assignment) == len(list), fmt.Sprintf("%+v %v", sj, err)
	})
}
