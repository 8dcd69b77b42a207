// Package run is thicket-bench's program: it prepares the system, runs the
// selected measurements in order and writes the report.
package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/machine"
	"github.com/thicket-edge/thicket/bench/internal/measure"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// Config of a run.
type Config struct {
	Short bool
	// Clusters and ClusterNodes size the several-clusters scenario (0: 5
	// clusters of 1,000 simulated nodes, -short 5 of 50).
	Clusters, ClusterNodes int
	// Out is the report file, relative to Repo unless absolute; "" prints only.
	Out string
	// Only names the measurements to run (all if empty).
	Only    []string
	Repo    string
	Command string
}

type step struct {
	name string
	// section is the measurement's place in the report (the order of docs/targets.md).
	section int
	// needsSystem: the measurement runs Thicket's processes.
	needsSystem bool
	run         func(context.Context, *measure.Env) measure.Outcome
}

// steps in the order they run: the footprint first, on a machine no
// measurement has used yet; the Go benchmarks last. The report lists them
// by section.
var steps = []step{
	{"footprint", 3, true, measure.Footprint},
	{"deploy", 1, true, measure.Deploy},
	{"failover", 2, true, measure.Failover},
	{"scale", 4, true, measure.Scale},
	{"clusters", 5, true, measure.Clusters},
	{"isolation", 8, true, measure.Isolation},
	{"scheduler", 6, false, measure.Scheduler},
	{"overlay", 7, false, measure.Overlay},
	{"jobs", 9, false, measure.Jobs},
	{"coordinates", 10, false, measure.Coordinates},
	{"jobs-e2e", 11, false, measure.JobsLive},
	{"dashboards", 12, true, measure.Dashboards},
}

// Names of the measurements.
func Names() []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.name
	}
	return out
}

// Run runs the measurements and returns the report's Markdown; the error
// tells of a failed setup or failed measurements (whose sections say why).
func Run(ctx context.Context, cfg Config, log *slog.Logger) (string, error) {
	start := time.Now()
	for _, n := range cfg.Only {
		if !slices.Contains(Names(), n) {
			return "", fmt.Errorf("unknown measurement %q (have %v)", n, Names())
		}
	}
	if os.Geteuid() != 0 {
		return "", errors.New("must run as root (network namespaces, containerd)")
	}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err != nil {
		return "", fmt.Errorf("containerd is not running (start it: containerd &): %w", err)
	}
	// Before building anything: the load average tells of other work.
	desc := machine.Describe(ctx)
	repo, err := testharness.FindRepo(cfg.Repo)
	if err != nil {
		return "", err
	}
	selected := steps
	if len(cfg.Only) > 0 {
		selected = nil
		for _, s := range steps {
			if slices.Contains(cfg.Only, s.name) {
				selected = append(selected, s)
			}
		}
	}
	env := &measure.Env{Short: cfg.Short, Clusters: cfg.Clusters, ClusterNodes: cfg.ClusterNodes, Repo: repo, GoBin: testharness.GoCommand(), Log: log}
	if slices.ContainsFunc(selected, func(s step) bool { return s.needsSystem }) {
		work, err := os.MkdirTemp("", "thicket-bench-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(work)
		var b [3]byte
		rand.Read(b[:])
		sys, err := system.New(ctx, system.Config{Repo: repo, WorkDir: work, Tag: hex.EncodeToString(b[:]), Log: log})
		if err != nil {
			return "", fmt.Errorf("prepare the system: %w", err)
		}
		defer sys.Close()
		env.Sys = sys
	}

	rep := report.Report{Machine: desc, Mode: "full", Command: cfg.Command}
	if cfg.Short {
		rep.Mode = "short"
	}
	var failed []string
	outcomes := map[int]measure.Outcome{}
	for _, s := range selected {
		if ctx.Err() != nil {
			break
		}
		log.Info("measuring", "what", s.name)
		t0 := time.Now()
		o := s.run(ctx, env)
		log.Info("measured", "what", s.name, "took", time.Since(t0).Round(time.Second), "err", o.Section.Err)
		if o.Section.Err != nil {
			failed = append(failed, s.name)
		}
		outcomes[s.section] = o
	}
	for _, sec := range slices.Sorted(maps.Keys(outcomes)) {
		rep.Sections = append(rep.Sections, outcomes[sec].Section)
		rep.Targets = append(rep.Targets, outcomes[sec].Targets...)
	}
	rep.Elapsed = time.Since(start)
	md := rep.Markdown()
	if cfg.Out != "" {
		out := cfg.Out
		if !filepath.IsAbs(out) {
			out = filepath.Join(repo, out)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return md, err
		}
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			return md, err
		}
		log.Info("report written", "file", out)
	}
	if ctx.Err() != nil {
		return md, ctx.Err()
	}
	if len(failed) > 0 {
		return md, fmt.Errorf("measurements failed: %v (see their sections)", failed)
	}
	return md, nil
}
