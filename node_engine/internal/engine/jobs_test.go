package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

func jobSpec(key string, n int, version int64, jobs ...string) wire.InstanceSpec {
	return wire.InstanceSpec{Key: key, InstanceNumber: n, Virtualization: "container", Code: "img",
		JobGrant: &wire.JobGrant{Version: version, Jobs: jobs, LeaseS: 5, PoolSize: 3}}
}

func readJobFile(t *testing.T, e *Engine, key string) JobFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.jobsDir(key), runtimes.JobsFile))
	if err != nil {
		t.Fatal(err)
	}
	var f JobFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("job file %q: %v", b, err)
	}
	return f
}

func envOf(spec wire.InstanceSpec, name string) (string, bool) {
	for _, kv := range spec.Environment {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// TestJobFiles: an instance with a job grant starts with its jobs in its
// environment and its job directory, gets a new grant through its file
// without a restart, reports the version it applied, loses its jobs when
// the node is cut off for longer than the lease, and a held or removed
// instance keeps none.
func TestJobFiles(t *testing.T) {
	rt := newFakeRuntime("container")
	e := newTestEngine(Config{DataDir: t.TempDir()}, rt)
	e.touch(time.Now())
	e.want(wire.NodeDesired{Generation: 1, Instances: []wire.InstanceSpec{jobSpec("s.2", 2, 4, "cam-1", "cam-2"), specs("plain")[0]}})
	e.settleOnce(t)

	rt.mu.Lock()
	started := rt.states["s.2"].Spec
	plain := rt.states["plain"].Spec
	rt.mu.Unlock()
	for name, want := range map[string]string{"THICKET_JOBS": "cam-1,cam-2", "THICKET_JOBS_VERSION": "4", "THICKET_INSTANCE_INDEX": "2",
		"THICKET_POOL_SIZE": "3", "THICKET_JOBS_FILE": "/run/thicket/jobs.json"} {
		if got, _ := envOf(started, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if dir := started.Labels[runtimes.LabelJobsDir]; dir != e.jobsDir("s.2") {
		t.Errorf("job dir label %q, want %q", dir, e.jobsDir("s.2"))
	}
	if _, ok := envOf(plain, "THICKET_JOBS"); ok || plain.Labels[runtimes.LabelJobsDir] != "" {
		t.Errorf("an instance without a grant got jobs: %+v", plain)
	}
	if f := readJobFile(t, e, "s.2"); f.Version != 4 || !slices.Equal(f.Jobs, []string{"cam-1", "cam-2"}) {
		t.Errorf("job file %+v", f)
	}
	st := wire.InstanceStatus{Key: "s.2"}
	e.mu.Lock()
	e.jobStatus(&st)
	e.mu.Unlock()
	if st.JobsVersion != 4 || !slices.Equal(st.Jobs, []string{"cam-1", "cam-2"}) {
		t.Errorf("reported %d %v", st.JobsVersion, st.Jobs)
	}

	// A new grant: the file changes, the instance is not started again.
	rt.calls()
	e.want(wire.NodeDesired{Generation: 2, Instances: []wire.InstanceSpec{jobSpec("s.2", 2, 5, "cam-2"), specs("plain")[0]}})
	e.settleOnce(t)
	if starts, removes := rt.calls(); len(starts)+len(removes) != 0 {
		t.Errorf("a new grant started %v and removed %v", starts, removes)
	}
	if f := readJobFile(t, e, "s.2"); f.Version != 5 || !slices.Equal(f.Jobs, []string{"cam-2"}) {
		t.Errorf("job file after the new grant %+v", f)
	}
	if ents, _ := os.ReadDir(e.jobsDir("s.2")); len(ents) != 1 {
		t.Errorf("job dir holds %d entries, want the file alone", len(ents))
	}

	// Cut off for longer than the lease: the node takes the jobs away.
	e.contact.Store(time.Now().Add(-6 * time.Second).UnixNano())
	e.settleOnce(t)
	if f := readJobFile(t, e, "s.2"); len(f.Jobs) != 0 || !f.LeaseExpired || f.Version != 5 {
		t.Errorf("job file after the lease %+v", f)
	}
	// Back in touch: the grant holds again.
	e.touch(time.Now())
	e.settleOnce(t)
	if f := readJobFile(t, e, "s.2"); !slices.Equal(f.Jobs, []string{"cam-2"}) || f.LeaseExpired {
		t.Errorf("job file after contact %+v", f)
	}

	// An empty set drops it silently: it is held running, without jobs.
	e.want(wire.NodeDesired{Generation: 3})
	e.settleOnce(t)
	if f := readJobFile(t, e, "s.2"); len(f.Jobs) != 0 {
		t.Errorf("a held instance keeps jobs %v", f.Jobs)
	}
	// Removed: its job directory goes with it.
	e.want(wire.NodeDesired{Generation: 4, Instances: specs("plain"), Removed: []string{"s.2"}})
	e.settleOnce(t)
	e.settleOnce(t)
	if _, err := os.Stat(e.jobsDir("s.2")); !os.IsNotExist(err) {
		t.Errorf("job dir of a removed instance: %v", err)
	}
}

// TestJobFilesEmptiedAtStart: a restarted engine takes every job away
// until its cluster's desired set says what holds.
func TestJobFilesEmptiedAtStart(t *testing.T) {
	dir := t.TempDir()
	e := newTestEngine(Config{DataDir: dir}, newFakeRuntime("container"))
	e.mu.Lock()
	e.setJobs("s.0", JobFile{Version: 9, Jobs: []string{"a"}})
	e.mu.Unlock()

	again := newTestEngine(Config{DataDir: dir}, newFakeRuntime("container"))
	again.emptyJobFiles()
	if f := readJobFile(t, again, "s.0"); f.Version != 9 || len(f.Jobs) != 0 {
		t.Errorf("after a restart the job file holds %+v", f)
	}
}

// TestJobsEnvBounds: a long job list stays out of the environment (in the
// file only), sooner for a unikernel, whose environment is its kernel
// command line.
func TestJobsEnvBounds(t *testing.T) {
	e := newTestEngine(Config{DataDir: t.TempDir()})
	e.touch(time.Now())
	var many []string
	for i := range 100 {
		many = append(many, strings.Repeat("j", 8)+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		virt string
		jobs []string
		env  bool
	}{
		{"container", many, true},
		{"unikernel", many[:3], true},
		{"unikernel", many, false},
	} {
		spec := jobSpec("s.0", 0, 1, tc.jobs...)
		spec.Virtualization = tc.virt
		e.mu.Lock()
		got := e.withJobs(spec)
		e.mu.Unlock()
		if _, ok := envOf(got, "THICKET_JOBS"); ok != tc.env {
			t.Errorf("%s with %d jobs: THICKET_JOBS given %v, want %v", tc.virt, len(tc.jobs), ok, tc.env)
		}
		if v, _ := envOf(got, "THICKET_JOBS_VERSION"); v != "1" {
			t.Errorf("%s: THICKET_JOBS_VERSION %q", tc.virt, v)
		}
	}
}

// TestStaleSetKeepsNewerJobs: a desired set older than the one the job
// files were brought up to (a reconcile that read its set before the lease
// watcher or a report applied a newer one) does not give back a job the
// newer set revoked, which the cluster may have granted elsewhere since;
// a generation far below (a cluster that counts anew) is taken.
func TestStaleSetKeepsNewerJobs(t *testing.T) {
	e := newTestEngine(Config{DataDir: t.TempDir()}, newFakeRuntime("container"))
	e.touch(time.Now())
	older := wire.NodeDesired{Generation: 7, Instances: []wire.InstanceSpec{jobSpec("s.1", 1, 4), jobSpec("s.2", 2, 4, "cam-1")}}
	newer := wire.NodeDesired{Generation: 8, Instances: []wire.InstanceSpec{jobSpec("s.1", 1, 6, "cam-1"), jobSpec("s.2", 2, 6)}}
	e.mu.Lock()
	e.applyJobs(older, true, time.Now())
	e.applyJobs(newer, true, time.Now())
	e.applyJobs(older, true, time.Now()) // late
	e.mu.Unlock()
	if f := readJobFile(t, e, "s.2"); len(f.Jobs) != 0 || f.Version != 6 {
		t.Errorf("a stale set gave cam-1 back to s.2: %+v", f)
	}
	if f := readJobFile(t, e, "s.1"); !slices.Equal(f.Jobs, []string{"cam-1"}) {
		t.Errorf("s.1 after the stale set: %+v", f)
	}
	reset := wire.NodeDesired{Generation: 1, Instances: []wire.InstanceSpec{jobSpec("s.1", 1, 1), jobSpec("s.2", 2, 1, "cam-1")}}
	reset.Generation = 8 - (1 << 41)
	e.mu.Lock()
	e.applyJobs(reset, true, time.Now())
	e.mu.Unlock()
	if f := readJobFile(t, e, "s.2"); !slices.Equal(f.Jobs, []string{"cam-1"}) {
		t.Errorf("a cluster counting anew was ignored: %+v", f)
	}
}
