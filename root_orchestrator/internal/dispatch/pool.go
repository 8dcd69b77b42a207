package dispatch

import (
	"cmp"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// A service with a job list keeps all its instances in one cluster: that
// cluster shares the jobs among them (it knows within seconds which of them
// run, and keeps assigning while the root is away), so a pool must not
// span clusters.
//
// onePool prepares a batch for the scheduler: the spec of a pending
// instance of such a service is restricted to the cluster its placed
// instances are assigned to (the one most of them are, should they be
// spread, e.g. placed before the service had jobs). A service with no
// placed instance places one instance in this batch, which then decides
// the cluster; its other pending instances are deferred to the next pass
// (which the resulting write starts at once): they are returned apart, by
// index into pending, with the index of the instance placed for them.
func onePool(sn *state.Snapshot, pending []state.Pending) (specs []wire.InstanceSpec, from []int, deferred map[int]int) {
	anchors := map[string]string{} // service: cluster name, "" if none
	leader := map[string]int{}     // service without a cluster: its instance in this batch (index into pending)
	for i, p := range pending {
		sp := p.Spec
		if len(sp.Jobs) > 0 {
			name, seen := anchors[sp.ServiceID]
			if !seen {
				name = poolCluster(sn, sp.ServiceID)
				anchors[sp.ServiceID] = name
			}
			if name == "" {
				if l, ok := leader[sp.ServiceID]; ok {
					if deferred == nil {
						deferred = map[int]int{}
					}
					deferred[i] = l
					continue
				}
				leader[sp.ServiceID] = i
			} else {
				sp.Constraints = append(append([]wire.Constraint(nil), sp.Constraints...),
					wire.Constraint{Type: "clusters", Allowed: []string{name}})
			}
		}
		specs = append(specs, sp)
		from = append(from, i)
	}
	return specs, from, deferred
}

// poolCluster is the name of the cluster most of a service's assigned
// instances are assigned to, or "".
func poolCluster(sn *state.Snapshot, serviceID string) string {
	count := map[string]int{}
	best := ""
	for _, in := range sn.Instances(serviceID) {
		if in.ClusterID == "" {
			continue
		}
		count[in.ClusterID]++
		if best == "" || cmp.Compare(count[in.ClusterID], count[best]) > 0 {
			best = in.ClusterID
		}
	}
	if best == "" {
		return ""
	}
	if c := sn.Cluster(best); c != nil {
		return c.Name
	}
	return ""
}
