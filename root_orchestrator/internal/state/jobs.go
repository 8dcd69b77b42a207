package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
)

// Collaborative workloads: a service's job list. The root stores the list
// and sends it down with every instance's spec; the cluster that runs the
// service's instances shares the jobs among them (scheduler/jobs) and
// reports back which instance applied which set.

// jobsOf is a microservice's job list, nil for none.
func jobsOf(m *sla.Microservice) []string {
	if len(m.Jobs) == 0 {
		return nil
	}
	return slices.Clone(m.Jobs)
}

// jobsVersionOf is the list version of a new service: 1 if it has jobs.
func jobsVersionOf(m *sla.Microservice) int64 {
	if len(m.Jobs) == 0 {
		return 0
	}
	return 1
}

// jobsLeaseSeconds is the lease a service's specs carry: 0 for a service
// without jobs, so that its specs stay as they were.
func jobsLeaseSeconds(svc *Service) int {
	if len(svc.Jobs) == 0 {
		return 0
	}
	if svc.JobsLease <= 0 {
		return sla.DefaultJobsLease
	}
	return int(svc.JobsLease / time.Second)
}

// HasJobs reports whether a service shares a job list among its instances.
func (svc *Service) HasJobs() bool { return len(svc.Jobs) > 0 }

// clustersOf lists the clusters instances are assigned to.
func clustersOf(ins []*Instance) []string {
	var out []string
	for _, in := range ins {
		if in.ClusterID != "" && !slices.Contains(out, in.ClusterID) {
			out = append(out, in.ClusterID)
		}
	}
	return out
}

// UpdateJobs changes a service's job list to what change makes of the
// current one, which it must not modify. change returns the new list, or an
// error that leaves everything as it was. An unchanged list stores nothing;
// a service whose instances run in more than one cluster gets none (each
// cluster would share the jobs among its own instances); a changed list gets the next JobsVersion and goes to the service's
// cluster with its instances' specs (restarting none of them).
func (s *Store) UpdateJobs(serviceID string, change func(old []string) ([]string, error)) (*Service, Ticket, error) {
	var out *Service
	tk, err := s.Write(func(t *Txn) error {
		old := first[Service](t.r(), tServices, "id", serviceID)
		if old == nil {
			return fmt.Errorf("service %s: %w", serviceID, ErrNotFound)
		}
		jobs, err := change(old.Jobs)
		if err != nil {
			return err
		}
		if slices.Equal(jobs, old.Jobs) {
			out = old
			return nil
		}
		if len(jobs) > 0 {
			if cs := clustersOf(instancesOf(t.r(), serviceID)); len(cs) > 1 {
				return &ConflictError{Field: "jobs", Message: fmt.Sprintf("the service's instances run in %d clusters, "+
					"and a job list is shared within one: remove the instances of all but one cluster first", len(cs))}
			}
		}
		svc := *old
		svc.Jobs = slices.Clip(slices.Clone(jobs))
		if len(svc.Jobs) == 0 {
			svc.Jobs = nil
		}
		svc.JobsVersion++
		if svc.JobsLease <= 0 {
			svc.JobsLease = sla.DefaultJobsLease * time.Second
		}
		svc.UpdatedAt = t.now
		t.put(tServices, KindService, svc.ID, &svc, true)
		for _, in := range instancesOf(t.r(), svc.ID) {
			if in.ClusterID == "" {
				continue
			}
			c := *in
			c.DesiredIndex = t.index // its cluster gets the spec again
			t.put(tInstances, KindInstance, c.Key, &c, false)
		}
		out = &svc
		return nil
	})
	return out, tk, err
}
