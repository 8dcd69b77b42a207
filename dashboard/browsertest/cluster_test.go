package browsertest

import (
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// workerNode is an active amd64 container node of 2 cores and 2 GiB, its
// id name + "-id".
func workerNode(name string) wire.NodeInfo {
	return wire.NodeInfo{ID: name + "-id", Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
}

// registerCluster registers a cluster called name with the root, as
// thicket-cluster does, and has it report nodes.
func (s *stack) registerCluster(name string, nodes ...wire.NodeInfo) wire.ClusterRegisterResponse {
	s.t.Helper()
	join := strings.TrimSpace(readFile(s.t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: name}, &reg); code != http.StatusOK {
		s.t.Fatalf("register a cluster: %d", code)
	}
	s.syncCluster(reg, nodes)
	return reg
}

// syncCluster has the cluster report nodes and instance statuses.
func (s *stack) syncCluster(reg wire.ClusterRegisterResponse, nodes []wire.NodeInfo, st ...wire.InstanceStatus) {
	s.t.Helper()
	sync := wire.ClusterSync{Version: wire.Version, Nodes: nodes, Instances: st}
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", sync, nil); code != http.StatusOK {
		s.t.Fatalf("sync: %d", code)
	}
}

// placedNginx deploys the nginx example with n instances and waits until
// the root assigned them to the cluster clusterID; it returns the
// application and its service's id.
func (s *stack) placedNginx(clusterID string, n int) (app, string) {
	s.t.Helper()
	a := s.deployNginx()
	svc := a.Microservices[0]
	for range n {
		s.api("POST", "/api/service/"+svc+"/instance", nil, nil)
	}
	s.waitPlaced(svc, clusterID, n)
	return a, svc
}

// waitPlaced waits until n instances of service svc are assigned to the
// cluster clusterID.
func (s *stack) waitPlaced(svc, clusterID string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got api.Service
		s.api("GET", "/api/service/"+svc, nil, &got)
		placed := 0
		for _, in := range got.InstanceList {
			if in.ClusterID == clusterID {
				placed++
			}
		}
		if placed == n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d instances of %s were not placed on the cluster: %+v", n, svc, got.InstanceList)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
