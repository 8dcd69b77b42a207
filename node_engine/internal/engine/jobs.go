package engine

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/internal/jobsapi"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Collaborative workloads on the node: an instance whose spec carries a
// job grant learns its jobs from environment variables at start and, live,
// from a file the engine replaces atomically in a directory the instance
// sees read-only at /run/thicket (containers). The engine reports the
// grant version each instance applied (the cluster's acknowledgement),
// and holds the lease's end itself: cut off from its cluster for longer
// than the lease, it empties the file, as the cluster then gives the
// jobs to another instance.

// JobFile is the content of an instance's job file, and the answer of
// the job endpoint on its gateway (jobsapi).
type JobFile = jobsapi.Document

// maxJobsEnv bounds THICKET_JOBS; a longer list is only in the file. A
// unikernel's environment goes on its kernel command line (2 KiB on x86):
// maxJobsEnvUnikernel.
const (
	maxJobsEnv          = 32 << 10
	maxJobsEnvUnikernel = 512
)

// jobsDir is the host directory of an instance's job file.
func (e *Engine) jobsDir(key string) string {
	return filepath.Join(e.cfg.DataDir, "jobs", key)
}

// validKey says whether a key can name a directory (a cluster's keys are
// "<service id>.<number>").
func validKey(key string) bool {
	return key != "" && key != "." && key != ".." && !strings.ContainsAny(key, "/\\\x00")
}

// writeJobFile replaces an instance's job file atomically.
func (e *Engine) writeJobFile(key string, f JobFile) error {
	dir := e.jobsDir(key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".jobs-*.tmp")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := firstErr(werr, serr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, runtimes.JobsFile)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// touch records a contact with the cluster's broker at t.
func (e *Engine) touch(t time.Time) {
	for {
		old := e.contact.Load()
		if old >= t.UnixNano() || e.contact.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

// leaseOver says whether the node has not reached its cluster for longer
// than lease: its last report the broker acknowledged, or the last desired
// set it delivered, is older. Before the first, the engine's start counts.
func (e *Engine) leaseOver(lease time.Duration, now time.Time) bool {
	last := e.started
	if ns := e.contact.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return now.Sub(last) > lease
}

// wantedJobs is the job file an instance of spec should have now. Caller
// holds mu.
func (e *Engine) wantedJobs(spec *wire.InstanceSpec, now time.Time) JobFile {
	g := spec.JobGrant
	f := JobFile{Version: g.Version, Jobs: slices.Clone(g.Jobs)}
	if f.Jobs == nil {
		f.Jobs = []string{}
	}
	lease := time.Duration(g.LeaseS) * time.Second
	if lease <= 0 {
		lease = 30 * time.Second
	}
	if e.leaseOver(lease, now) && len(f.Jobs) > 0 {
		f.Jobs, f.LeaseExpired = []string{}, true
	}
	return f
}

// applyJobs brings every job file up to date: the grants of the desired
// set, or none (an instance held although its desired set dropped it, or
// a set that is not known yet). Caller holds mu.
//
// A desired set older than the last one applied changes nothing: the
// reconciler reads its set before it lists the runtimes, and the lease
// watcher or a report may meanwhile have applied a newer one, whose grants
// the older set's would undo (a job revoked and already granted to
// another instance would come back). A generation far below (a cluster
// that started counting anew) is taken, as the desired set itself is.
func (e *Engine) applyJobs(d wire.NodeDesired, known bool, now time.Time) {
	if known {
		if e.jobsGenSet && d.Generation < e.jobsGen && d.Generation >= e.jobsGen-(1<<40) {
			return
		}
		e.jobsGen, e.jobsGenSet = d.Generation, true
	}
	granted := map[string]bool{}
	if known {
		for i := range d.Instances {
			spec := &d.Instances[i]
			if spec.JobGrant == nil || !validKey(spec.Key) {
				continue
			}
			granted[spec.Key] = true
			e.setJobs(spec.Key, e.wantedJobs(spec, now))
		}
	}
	for key, f := range e.jobFiles {
		if !granted[key] && len(f.Jobs) > 0 {
			e.setJobs(key, JobFile{Version: f.Version, Jobs: []string{}})
		}
	}
}

// setJobs writes an instance's job file when it changes. Caller holds mu.
func (e *Engine) setJobs(key string, f JobFile) {
	if old, ok := e.jobFiles[key]; ok && old.Version == f.Version && old.LeaseExpired == f.LeaseExpired && slices.Equal(old.Jobs, f.Jobs) {
		return
	}
	if err := e.writeJobFile(key, f); err != nil {
		e.log.Warn("write job file", "instance", key, "err", err)
		return
	}
	if f.LeaseExpired {
		e.log.Warn("cut off from the cluster for longer than the job lease; the instance's jobs are taken away", "instance", key)
	}
	e.jobFiles[key] = f
	e.jobsNotify()
}

// dropJobs forgets a removed instance's job file. Caller holds mu.
func (e *Engine) dropJobs(key string) {
	if _, ok := e.jobFiles[key]; !ok {
		return
	}
	delete(e.jobFiles, key)
	e.jobsNotify()
	if err := os.RemoveAll(e.jobsDir(key)); err != nil {
		e.log.Warn("remove job file", "instance", key, "err", err)
	}
}

// emptyJobFiles empties the job files a previous engine left: until the
// cluster's desired set says what holds now, no instance owns a job. Its
// version is kept.
func (e *Engine) emptyJobFiles() {
	root := filepath.Join(e.cfg.DataDir, "jobs")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ent := range ents {
		key := ent.Name()
		var f JobFile
		if b, err := os.ReadFile(filepath.Join(root, key, runtimes.JobsFile)); err == nil {
			_ = json.Unmarshal(b, &f)
		}
		e.jobFiles[key] = f // marked as written with what it holds
		e.setJobs(key, JobFile{Version: f.Version, Jobs: []string{}})
	}
}

// withJobs is spec as the runtime starts it: for an instance with a job
// grant, its job directory (containers see it at /run/thicket) and the
// environment THICKET_JOBS (comma-separated), THICKET_JOBS_VERSION,
// THICKET_JOBS_FILE, THICKET_INSTANCE_INDEX and THICKET_POOL_SIZE, from
// the job file just written, and on the overlay THICKET_JOBS_URL (the job
// endpoint on its gateway, jobserve.go). Caller holds mu.
func (e *Engine) withJobs(spec wire.InstanceSpec) wire.InstanceSpec {
	if spec.JobGrant == nil || !validKey(spec.Key) {
		return spec
	}
	e.setJobs(spec.Key, e.wantedJobs(&spec, time.Now()))
	f := e.jobFiles[spec.Key]
	env := slices.Clone(spec.Environment)
	limit := maxJobsEnv
	if spec.Virtualization == "unikernel" {
		limit = maxJobsEnvUnikernel // it goes on the kernel command line
	}
	if list := strings.Join(f.Jobs, ","); len(list) <= limit {
		env = append(env, "THICKET_JOBS="+list)
	}
	env = append(env,
		"THICKET_JOBS_VERSION="+strconv.FormatInt(f.Version, 10),
		"THICKET_JOBS_FILE="+runtimes.JobsMountPoint+"/"+runtimes.JobsFile,
		"THICKET_INSTANCE_INDEX="+strconv.Itoa(spec.InstanceNumber),
		"THICKET_POOL_SIZE="+strconv.Itoa(spec.JobGrant.PoolSize),
	)
	if u := e.jobsURL(); u != "" {
		env = append(env, "THICKET_JOBS_URL="+u)
	}
	spec.Environment = env
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[runtimes.LabelJobsDir] = e.jobsDir(spec.Key)
	spec.Labels = labels
	return spec
}

// jobStatus fills in the grant an instance applied. Caller holds mu.
func (e *Engine) jobStatus(st *wire.InstanceStatus) {
	if f, ok := e.jobFiles[st.Key]; ok {
		st.JobsVersion, st.Jobs = f.Version, f.Jobs
	}
}

// hasGrants says whether any instance of the desired set has a job grant:
// reports then go out with QoS 1, so that the node knows when the cluster
// last heard it (its lease).
func hasGrants(d wire.NodeDesired) bool {
	return slices.ContainsFunc(d.Instances, func(s wire.InstanceSpec) bool { return s.JobGrant != nil })
}

// watchLeases applies the job lease twice a second, whatever the report
// loop does (a report to a broker that does not answer takes seconds),
// until ctx ends.
func (e *Engine) watchLeases(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, ok := e.desiredSet()
		if !ok || !hasGrants(d) {
			continue
		}
		e.mu.Lock()
		e.applyJobs(d, true, time.Now())
		e.mu.Unlock()
	}
}
