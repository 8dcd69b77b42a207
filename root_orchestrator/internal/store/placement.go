package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/thicket-edge/thicket/contract/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Spec turns a stored instance of a service into what a cluster needs to
// run it.
func Spec(svc *api.Service, n int) wire.InstanceSpec {
	cons := make([]wire.Constraint, len(svc.Constraints))
	for i, c := range svc.Constraints {
		cons[i] = wire.Constraint(c)
	}
	return wire.InstanceSpec{
		Key:                   wire.InstanceKey(svc.MicroserviceID, n),
		ServiceID:             svc.MicroserviceID,
		InstanceNumber:        n,
		ApplicationName:       svc.AppName,
		ApplicationNamespace:  svc.AppNamespace,
		MicroserviceName:      svc.MicroserviceName,
		MicroserviceNamespace: svc.MicroserviceNamespace,
		Virtualization:        svc.Virtualization,
		Code:                  svc.Code,
		Arch:                  svc.Arch,
		Cmd:                   svc.Cmd,
		Environment:           svc.Environment,
		Port:                  svc.Port,
		Resources: wire.Resources{
			MilliCPU: int64(svc.VCPUs) * 1000,
			MemoryMB: int64(svc.Memory),
			VGPUs:    int64(svc.VGPUs),
		},
		OneShot:     svc.OneShot,
		Constraints: cons,
		RRIP:        svc.RRIP,
		ClosestIP:   svc.ClosestIP,
	}
}

// findServices returns the services matching filter, an empty list (not
// nil) when there are none.
func (s *Store) findServices(ctx context.Context, filter bson.M, opts ...options.Lister[options.FindOptions]) ([]api.Service, error) {
	cur, err := s.services.Find(ctx, filter, opts...)
	if err != nil {
		return nil, fmt.Errorf("find services: %w", err)
	}
	out := []api.Service{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find services: %w", err)
	}
	return out, nil
}

// DesiredForCluster returns every instance assigned to a cluster.
func (s *Store) DesiredForCluster(ctx context.Context, clusterID string) ([]wire.InstanceSpec, error) {
	svcs, err := s.findServices(ctx, bson.M{"instance_list.cluster_id": clusterID})
	if err != nil {
		return nil, err
	}
	out := []wire.InstanceSpec{}
	for i := range svcs {
		for _, in := range svcs[i].InstanceList {
			if in.ClusterID == clusterID {
				out = append(out, Spec(&svcs[i], in.InstanceNumber))
			}
		}
	}
	return out, nil
}

// updateInstances applies change to the instances named by the keys of
// byKey (InstanceKey → value), service by service. change reports whether it
// changed the instance; a service is written only if one of its instances
// changed, and the changed ones get a new updated_at. Instances of services
// removed meanwhile are skipped.
func updateInstances[T any](ctx context.Context, s *Store, byKey map[string]T, change func(svc *api.Service, in *api.Instance, v T) bool) (int, error) {
	bySvc := map[string]map[int]T{}
	for key, v := range byKey {
		id, n, err := wire.ParseInstanceKey(key)
		if err != nil {
			continue
		}
		if bySvc[id] == nil {
			bySvc[id] = map[int]T{}
		}
		bySvc[id][n] = v
	}
	now := s.now()
	total := 0
	for id, vs := range bySvc {
		changed := 0
		_, err := s.mutateService(ctx, id, func(svc *api.Service) error {
			changed = 0 // a retry starts over
			for i := range svc.InstanceList {
				in := &svc.InstanceList[i]
				if v, ok := vs[in.InstanceNumber]; ok && change(svc, in, v) {
					in.UpdatedAt = now
					changed++
				}
			}
			if changed == 0 {
				return errUnchanged
			}
			return nil
		})
		if err != nil && !isNotFound(err) {
			return total, err
		}
		if err == nil {
			total += changed
		}
	}
	return total, nil
}

// ApplyClusterReport records the statuses a cluster reports for instances
// assigned to it. Reports about instances no longer assigned to the cluster
// are ignored (the desired set it gets back tells it to drop them). An
// instance the cluster cannot place is released for the root to place
// elsewhere; the returned count says how many were, so the caller can
// schedule at once.
func (s *Store) ApplyClusterReport(ctx context.Context, c *ClusterRecord, statuses []wire.InstanceStatus) (released, changed int, err error) {
	byKey := make(map[string]wire.InstanceStatus, len(statuses))
	for _, st := range statuses {
		byKey[st.Key] = st
	}
	changed, err = updateInstances(ctx, s, byKey, func(svc *api.Service, in *api.Instance, st wire.InstanceStatus) bool {
		if in.ClusterID != c.ID {
			return false
		}
		before := *in
		if st.Status == wire.StatusNoCapacity {
			in.ClusterID, in.ClusterLocation = "", ""
			in.Status, in.StatusDetail = wire.StatusNoCapacity, "cluster "+c.ClusterName+": "+st.Detail
			released++
			return true
		}
		in.Status, in.StatusDetail = st.Status, st.Detail
		in.WorkerID, in.NodeName = st.NodeID, st.Node
		in.HostIP, in.HostPort, in.InstanceIP = st.HostIP, st.HostPort, st.InstanceIP
		in.PublicIP, in.Restarts = st.HostIP, st.Restarts
		in.CPUPercent = strconv.FormatFloat(st.CPUPercent, 'f', 1, 64)
		in.MemoryPercent = "0"
		if svc.Memory > 0 {
			in.MemoryPercent = strconv.FormatFloat(float64(st.MemoryMB)*100/float64(svc.Memory), 'f', 1, 64)
		}
		if st.Logs != "" {
			in.Logs = st.Logs
		}
		in.ClusterLocation = c.ClusterLocation
		return *in != before
	})
	return released, changed, err
}

// Pending is an instance waiting for a cluster.
type Pending struct {
	Spec   wire.InstanceSpec
	Status string
}

// PendingInstances returns the instances that have no cluster: requested,
// without capacity so far, or lost with their cluster.
func (s *Store) PendingInstances(ctx context.Context) ([]Pending, error) {
	waiting := bson.A{wire.StatusRequested, wire.StatusNoCapacity, wire.StatusLost}
	svcs, err := s.findServices(ctx, bson.M{"instance_list.status": bson.M{"$in": waiting}})
	if err != nil {
		return nil, err
	}
	var out []Pending
	for i := range svcs {
		for _, in := range svcs[i].InstanceList {
			if in.ClusterID == "" && (in.Status == wire.StatusRequested || in.Status == wire.StatusNoCapacity || in.Status == wire.StatusLost) {
				out = append(out, Pending{Spec: Spec(&svcs[i], in.InstanceNumber), Status: in.Status})
			}
		}
	}
	return out, nil
}

// Assignment is the root scheduler's decision for one instance: a cluster,
// or none with the reason.
type Assignment struct {
	Key             string
	ClusterID       string
	ClusterLocation string
	Reason          string
}

// Assign records scheduling decisions and returns how many instances
// changed. An instance that meanwhile got a cluster or was removed is left
// alone.
func (s *Store) Assign(ctx context.Context, as []Assignment) (int, error) {
	byKey := make(map[string]Assignment, len(as))
	for _, a := range as {
		byKey[a.Key] = a
	}
	return updateInstances(ctx, s, byKey, func(_ *api.Service, in *api.Instance, a Assignment) bool {
		if in.ClusterID != "" {
			return false
		}
		before := *in
		if a.ClusterID == "" {
			in.Status, in.StatusDetail = wire.StatusNoCapacity, a.Reason
		} else {
			in.ClusterID, in.ClusterLocation = a.ClusterID, a.ClusterLocation
			in.Status, in.StatusDetail = wire.StatusScheduled, "assigned to a cluster"
			in.WorkerID, in.NodeName, in.HostIP, in.InstanceIP = "", "", "", ""
		}
		return *in != before
	})
}

// ReleaseCluster takes every instance away from a cluster that went silent,
// marking them LOST so that the root places them elsewhere. It returns how
// many it released.
func (s *Store) ReleaseCluster(ctx context.Context, c *ClusterRecord, reason string) (int, error) {
	svcs, err := s.findServices(ctx, bson.M{"instance_list.cluster_id": c.ID})
	if err != nil {
		return 0, err
	}
	n := 0
	now := s.now()
	for _, svc := range svcs {
		_, err := s.mutateService(ctx, svc.MicroserviceID, func(svc *api.Service) error {
			for i := range svc.InstanceList {
				in := &svc.InstanceList[i]
				if in.ClusterID != c.ID || in.Status == wire.StatusCompleted {
					continue
				}
				in.ClusterID, in.ClusterLocation, in.WorkerID, in.NodeName = "", "", "", ""
				in.Status, in.StatusDetail, in.UpdatedAt = wire.StatusLost, reason, now
				n++
			}
			return nil
		})
		if err != nil && !isNotFound(err) {
			return n, err
		}
	}
	return n, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
