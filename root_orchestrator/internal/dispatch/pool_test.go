package dispatch

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestJobPoolsStayInOneCluster: the instances of a service with a job list
// all go to one cluster, requested together or one by one, even when that
// leaves one without capacity; a service without jobs spreads as before.
func TestJobPoolsStayInOneCluster(t *testing.T) {
	withJobs := func(m *sla.Microservice) { m.Jobs = []string{"a", "b", "c"} }
	noJobs := func(*sla.Microservice) {}
	for _, tc := range []struct {
		name      string
		edit      func(*sla.Microservice)
		nodeMB    int64
		instances int
		clusters  int // how many clusters the placed instances use
		waiting   int // instances left without capacity
	}{
		{name: "without jobs the instances spread when full", edit: noJobs, nodeMB: 250, instances: 4, clusters: 2},
		{name: "with jobs one cluster", edit: withJobs, nodeMB: 1000, instances: 4, clusters: 1},
		{name: "with jobs no room elsewhere", edit: withJobs, nodeMB: 250, instances: 4, clusters: 1, waiting: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cluster("c1", worker("n1", tc.nodeMB))
			f.cluster("c2", worker("n2", tc.nodeMB))
			svc := f.serviceWith("pool", tc.edit)
			var keys []string
			for range tc.instances {
				keys = append(keys, f.add(svc))
			}
			f.pass()
			f.pass()
			used := map[string]bool{}
			waiting := 0
			for _, k := range keys {
				in := f.instance(k)
				switch {
				case in.ClusterID != "":
					used[in.ClusterID] = true
				case in.Status == wire.StatusNoCapacity:
					waiting++
				default:
					t.Errorf("%s: %s %q, neither placed nor without capacity", k, in.Status, in.Detail)
				}
			}
			if len(used) != tc.clusters || waiting != tc.waiting {
				t.Errorf("%d clusters used, %d without capacity; want %d and %d", len(used), waiting, tc.clusters, tc.waiting)
			}
			// One more instance later joins the pool's cluster.
			if tc.waiting == 0 && tc.clusters == 1 {
				k := f.add(svc)
				f.pass()
				if in := f.instance(k); !used[in.ClusterID] {
					t.Errorf("a later instance went to cluster %q, not the pool's", in.ClusterID)
				}
			}
		})
	}
}
