// Package measure holds the measurements of Thicket against the targets of
// docs/targets.md. Each runs on the machinery of package system, cleans up what it
// started, and returns a report section and its rows of the summary.
package measure

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// Env is what the measurements share.
type Env struct {
	Sys *system.System
	// Short selects the quick variant of every measurement (CI smoke runs).
	Short bool
	// Clusters and ClusterNodes size the several-clusters scenario (0: the
	// mode's default).
	Clusters, ClusterNodes int
	// Repo is the workspace root; GoBin the go command.
	Repo  string
	GoBin string
	Log   *slog.Logger
}

// Outcome of one measurement.
type Outcome struct {
	Section report.Section
	Targets []report.Target
}

// stack is a root and one cluster (and any more clusters), stopped
// together.
type stack struct {
	root    *system.Root
	cluster *system.Cluster
	// more are the clusters after the first (addClusters).
	more  []*system.Cluster
	nodes []*system.Node
}

func (e *Env) startStack(ctx context.Context, cluster string, o system.ClusterOptions) (*stack, error) {
	r, err := e.Sys.StartRoot(ctx)
	if err != nil {
		return nil, fmt.Errorf("start root: %w", err)
	}
	st := &stack{root: r}
	if st.cluster, err = e.Sys.StartCluster(ctx, r, cluster, o); err != nil {
		st.stop()
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	return st, nil
}

// addNodes starts workers on the given host octets and waits until the
// root sees them active.
func (e *Env) addNodes(ctx context.Context, st *stack, o system.NodeOptions, octets ...int) error {
	for _, oc := range octets {
		n, err := e.Sys.StartNode(ctx, st.cluster, oc, o)
		if err != nil {
			return fmt.Errorf("start node: %w", err)
		}
		st.nodes = append(st.nodes, n)
	}
	return st.root.WaitNodes(ctx, st.cluster.Name, len(st.nodes), 90*time.Second)
}

// addClusters starts more clusters joined to the stack's root.
func (e *Env) addClusters(ctx context.Context, st *stack, o system.ClusterOptions, names ...string) error {
	for _, name := range names {
		c, err := e.Sys.StartCluster(ctx, st.root, name, o)
		if err != nil {
			return fmt.Errorf("start cluster %s: %w", name, err)
		}
		st.more = append(st.more, c)
	}
	return nil
}

// clusters are all the stack's clusters, the first one first.
func (st *stack) clusters() []*system.Cluster {
	return append([]*system.Cluster{st.cluster}, st.more...)
}

func (st *stack) stop() {
	for _, n := range st.nodes {
		n.Stop()
	}
	for _, c := range st.more {
		c.Proc.Stop()
	}
	if st.cluster != nil {
		st.cluster.Proc.Stop()
	}
	st.root.Proc.Stop()
}

// waitNoContainers waits until no container matches the filter in the
// run's containerd namespace.
func (e *Env) waitNoContainers(ctx context.Context, filter string, timeout time.Duration) error {
	return testharness.Until(ctx, timeout, 100*time.Millisecond, "containers "+filter+" removed", func() (bool, string) {
		ids, err := e.Sys.NS.Containers(ctx, filter)
		if err != nil {
			return false, err.Error()
		}
		return len(ids) == 0, fmt.Sprint(ids)
	})
}

func instanceFilter(key string) string { return `labels."thicket.instance"==` + key }

// sleep waits, or less when ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ms is a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
