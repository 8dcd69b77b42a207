// Package rollout follows instances until they run: it turns successive
// snapshots of their services into progress lines ("shop/web #0  SCHEDULED
// -> RUNNING on node n1 (cluster alpha) 10.64.1.2") and decides when the
// rollout is done or has failed. It does no I/O.
package rollout

import (
	"fmt"
	"strings"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// Target is one instance to follow.
type Target struct {
	ServiceID string
	// Label names the service for people ("app/service").
	Label  string
	Number int
}

func (t Target) String() string { return fmt.Sprintf("%s #%d", t.Label, t.Number) }

// Outcome of a rollout so far.
type Outcome int

const (
	// Pending: some instances do not run yet.
	Pending Outcome = iota
	// Done: every instance runs (or, one-shot, completed).
	Done
	// Failed: an instance failed or disappeared; see the error.
	Failed
)

// seen is what was last shown of an instance.
type seen struct {
	status, node, detail string
}

// Tracker follows a set of instances.
type Tracker struct {
	targets []Target
	last    map[Target]seen
	current map[Target]api.Instance
}

// New follows the given instances.
func New(targets []Target) *Tracker {
	return &Tracker{targets: targets, last: map[Target]seen{}, current: map[Target]api.Instance{}}
}

// settled reports whether an instance needs no more waiting.
func settled(status string) bool {
	return status == wire.StatusRunning || status == wire.StatusCompleted
}

// Observe takes the targets' services (by id; a missing service was
// deleted) and the names of clusters by id, and returns the progress lines
// to print, the outcome and, when Failed, why.
func (t *Tracker) Observe(svcs map[string]*api.Service, clusters map[string]string) ([]string, Outcome, error) {
	var lines []string
	done := true
	var failure error
	for _, tg := range t.targets {
		svc := svcs[tg.ServiceID]
		if svc == nil {
			if failure == nil {
				failure = fmt.Errorf("%s: the service was deleted", tg)
			}
			continue
		}
		in, ok := find(svc.InstanceList, tg.Number)
		if !ok {
			if failure == nil {
				failure = fmt.Errorf("%s: the instance was removed", tg)
			}
			continue
		}
		t.current[tg] = in
		now := seen{status: in.Status, node: in.NodeName, detail: detailOf(in)}
		prev, shown := t.last[tg]
		if !shown || prev != now {
			from := ""
			if shown {
				from = prev.status
			}
			lines = append(lines, Line(tg, from, in, clusters[in.ClusterID]))
			t.last[tg] = now
		}
		if in.Status == wire.StatusFailed && failure == nil {
			failure = fmt.Errorf("%s failed%s", tg, suffix(in.StatusDetail))
		}
		if !settled(in.Status) {
			done = false
		}
	}
	switch {
	case failure != nil:
		return lines, Failed, failure
	case done:
		return lines, Done, nil
	}
	return lines, Pending, nil
}

// Unsettled describes each instance that does not run yet, as last seen
// ("shop/web #1 NO_CAPACITY: no node fits: ..."), for a timeout message.
func (t *Tracker) Unsettled() []string {
	var out []string
	for _, tg := range t.targets {
		in, ok := t.current[tg]
		switch {
		case !ok:
			out = append(out, tg.String()+" not seen yet")
		case !settled(in.Status):
			out = append(out, fmt.Sprintf("%s %s%s", tg, in.Status, suffix(in.StatusDetail)))
		}
	}
	return out
}

// Settled counts the instances that run (or completed).
func (t *Tracker) Settled() int {
	n := 0
	for _, tg := range t.targets {
		if in, ok := t.current[tg]; ok && settled(in.Status) {
			n++
		}
	}
	return n
}

func find(list []api.Instance, n int) (api.Instance, bool) {
	for _, in := range list {
		if in.InstanceNumber == n {
			return in, true
		}
	}
	return api.Instance{}, false
}

// detailOf is the part of an instance's detail worth showing: none for a
// running instance.
func detailOf(in api.Instance) string {
	if in.Status == wire.StatusRunning {
		return ""
	}
	return in.StatusDetail
}

func suffix(detail string) string {
	if detail == "" {
		return ""
	}
	return ": " + detail
}

// Line renders one progress line: the instance, its status change (from is
// empty the first time it is seen), where it is placed and, for a status
// that is not RUNNING, the detail.
func Line(tg Target, from string, in api.Instance, cluster string) string {
	var b strings.Builder
	b.WriteString(tg.String())
	b.WriteString("  ")
	if from != "" && from != in.Status {
		b.WriteString(from + " -> ")
	}
	b.WriteString(in.Status)
	if cluster == "" {
		cluster = in.ClusterID
	}
	switch {
	case in.NodeName != "" && cluster != "":
		fmt.Fprintf(&b, " on node %s (cluster %s)", in.NodeName, cluster)
	case in.NodeName != "":
		fmt.Fprintf(&b, " on node %s", in.NodeName)
	case cluster != "":
		fmt.Fprintf(&b, " on cluster %s", cluster)
	}
	if in.Status == wire.StatusRunning {
		addr := in.InstanceIP
		if addr == "" {
			addr = in.HostIP
		}
		if addr != "" {
			b.WriteString(" " + addr)
		}
		if in.HostPort != 0 && in.HostIP != "" {
			fmt.Fprintf(&b, ", published %s:%d", in.HostIP, in.HostPort)
		}
	}
	b.WriteString(suffix(detailOf(in)))
	return b.String()
}
