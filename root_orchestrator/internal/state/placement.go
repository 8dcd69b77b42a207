package state

import (
	"cmp"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// Spec turns an instance of a service into what a cluster needs to run it.
func Spec(svc *Service, in *Instance) wire.InstanceSpec {
	sp := specOf(svc, in)
	p := sp.Disconnect
	cons := make([]wire.Constraint, len(sp.Constraints))
	for i, c := range sp.Constraints {
		cons[i] = wire.Constraint(c)
	}
	return wire.InstanceSpec{
		Key:                   in.Key,
		ServiceID:             svc.ID,
		InstanceNumber:        in.Number,
		ApplicationName:       svc.AppName,
		ApplicationNamespace:  svc.AppNamespace,
		MicroserviceName:      svc.Name,
		MicroserviceNamespace: svc.Namespace,
		Virtualization:        sp.Virtualization,
		Code:                  sp.Code,
		Arch:                  sp.Arch,
		Cmd:                   sp.Cmd,
		Environment:           sp.Environment,
		Ports:                 sp.Ports,
		Port:                  sp.Port,
		Resources: wire.Resources{
			MilliCPU: int64(sp.VCPUs) * 1000,
			MemoryMB: int64(sp.MemoryMB),
			VGPUs:    int64(sp.VGPUs),
		},
		OneShot:     sp.OneShot,
		Completions: sp.Completions,
		Retries:     sp.Retries,
		Disconnect: &wire.Disconnect{Replace: p.Replace, ReplaceAfter: int(p.ReplaceAfter / time.Second),
			StopAfter: int(p.StopAfter / time.Second), Reconcile: p.Reconcile},
		Constraints: cons,
		Security:    sp.Security,
		RRIP:        svc.RRIP,
		ClosestIP:   svc.ClosestIP,
		Jobs:        svc.Jobs,
		JobsLease:   jobsLeaseSeconds(svc),

		Implementations: sp.Implementations,
		NodeSelector:    sp.NodeSelector,
	}
}

// Pending is an instance waiting for a cluster, with its spec.
type Pending struct {
	Spec   wire.InstanceSpec
	Status string
}

// Waiting returns the instances that have no cluster (requested, without
// capacity so far, or lost with their cluster), oldest first.
func (sn *Snapshot) Waiting() []Pending { return sn.pending("waiting") }

// Fresh returns the waiting instances the scheduler has not tried yet,
// oldest first.
func (sn *Snapshot) Fresh() []Pending { return sn.pending("fresh") }

func (sn *Snapshot) pending(index string) []Pending {
	ins := all[Instance](sn.r(), tInstances, index, true)
	slices.SortFunc(ins, func(a, b *Instance) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Key, b.Key))
	})
	out := make([]Pending, 0, len(ins))
	for _, in := range ins {
		if svc := sn.Service(in.ServiceID); svc != nil {
			out = append(out, Pending{Spec: Spec(svc, in), Status: in.Status})
		}
	}
	return out
}

// SchedulingNodes returns a cluster's nodes as the root scheduler should see
// them: as reported, plus what the instances the root assigned to the cluster
// take on the node the root counted on, until the cluster reports where they
// run (the cluster's figures do not include them yet).
func (sn *Snapshot) SchedulingNodes(clusterID string) []wire.NodeInfo {
	nodes := sn.Nodes(clusterID)
	out := make([]wire.NodeInfo, len(nodes))
	at := make(map[string]int, len(nodes))
	for i, n := range nodes {
		out[i] = n.NodeInfo
		at[n.ID] = i
	}
	for _, in := range all[Instance](sn.r(), tInstances, "cluster", clusterID) {
		i, ok := at[in.PlannedNode]
		if in.PlannedNode == "" || !ok {
			continue
		}
		svc := sn.Service(in.ServiceID)
		if svc == nil {
			continue
		}
		sp := specOf(svc, in)
		out[i].Reserved = out[i].Reserved.Add(wire.Resources{
			MilliCPU: int64(sp.VCPUs) * 1000, MemoryMB: int64(sp.MemoryMB), VGPUs: int64(sp.VGPUs)})
	}
	return out
}

// NodeServices names, per node of a cluster (by id), the services with
// instances there (reported, else planned) as "<application>/<service>":
// the targets of latency constraints that name a service.
func (sn *Snapshot) NodeServices(clusterID string) map[string][]string {
	out := map[string][]string{}
	for _, in := range all[Instance](sn.r(), tInstances, "cluster", clusterID) {
		node := cmp.Or(in.NodeID, in.PlannedNode)
		svc := sn.Service(in.ServiceID)
		if node == "" || svc == nil {
			continue
		}
		if name := svc.AppName + "/" + svc.Name; !slices.Contains(out[node], name) {
			out[node] = append(out[node], name)
		}
	}
	return out
}

// Assignment is the root scheduler's decision for one instance: a cluster
// (and the node that made it feasible), or none with the reason.
type Assignment struct {
	Key       string
	ClusterID string
	NodeID    string
	Reason    string
}

// Assign records scheduling decisions and returns how many instances
// changed. An instance that meanwhile got a cluster or was removed is left
// alone.
func (s *Store) Assign(as []Assignment) (int, error) {
	n := 0
	_, err := s.Write(func(t *Txn) error {
		t.lazy = true // nobody waits for it
		for _, a := range as {
			old := first[Instance](t.r(), tInstances, "id", a.Key)
			if old == nil || old.ClusterID != "" {
				continue
			}
			in := *old
			if a.ClusterID == "" {
				in.Judged = true
				if in.Status == wire.StatusNoCapacity && in.Detail == a.Reason {
					if !old.Judged {
						t.put(tInstances, KindInstance, in.Key, &in, false)
					}
					continue
				}
				in.Status, in.Detail = wire.StatusNoCapacity, a.Reason
			} else {
				c := first[Cluster](t.r(), tClusters, "id", a.ClusterID)
				if c == nil {
					continue
				}
				in.ClusterID, in.ClusterLocation, in.PlannedNode = c.ID, c.Location, a.NodeID
				if in.LostFrom == c.ID {
					in.LostFrom = "" // back where it ran: one copy
				}
				in.Status, in.Detail = wire.StatusScheduled, "assigned to a cluster"
				in.NodeID, in.NodeName, in.HostIP, in.InstanceIP = "", "", "", ""
				in.DesiredIndex, in.Judged = t.index, false
			}
			in.UpdatedAt = t.now
			t.put(tInstances, KindInstance, in.Key, &in, true)
			n++
		}
		return nil
	})
	return n, err
}

// HasFresh reports whether an instance waits that the root scheduler has
// not tried yet.
func (sn *Snapshot) HasFresh() bool {
	o, err := sn.tx.First(tInstances, "fresh", true)
	return err == nil && o != nil
}
