package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestClusterCertificates: with 20 s cluster certificates, a cluster
// renews its certificate towards the root at least twice while its
// instance runs on untouched and it stays active; a cluster started with
// another cluster's certificate is refused (403, logged by the root) and
// registers again for its own.
func TestClusterCertificates(t *testing.T) {
	s := newSystem(t, "--cluster-cert-ttl", "20s")
	c1 := s.addCluster("cc1", "")
	c2 := s.addCluster("cc2", "")
	n := s.addNode(c1, "k1", 141, 1024, c1.nodeToken)
	s.waitNodes(map[string]int{"cc1": 1})
	certOf := func(c *cluster) *pki.ClientCert {
		file := filepath.Join(c.dir, clusterCertFile)
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", file, fi, err)
		}
		return pki.OpenClientCert(file)
	}
	first := certOf(c1).Current()
	id, err := pki.ClusterOf(first.Leaf)
	if err != nil || first.Leaf.Subject.CommonName != "cc1" {
		t.Fatalf("cc1's certificate: %q %v, CN %q", id, err, first.Leaf.Subject.CommonName)
	}

	ids := s.app("ccerts", map[string]any{"microservice_name": "web", "memory": 16, "constraints": pin("cc1", n.name)})
	s.scaleUp(ids["web"])
	before := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
	tasks := taskPIDs(t, s.ctrNS)

	t.Run("cc1 renews twice; its instance runs on", func(t *testing.T) {
		testharness.WaitFor(t, 90*time.Second, "two renewals", func() (bool, string) {
			return strings.Count(c1.proc.Output(), "renewed the cluster's client certificate towards the root") >= 2, testharness.Tail(c1.proc.Output(), 1000)
		})
		now := certOf(c1).Current()
		if now.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			t.Fatal("cc1's certificate file holds its first certificate")
		}
		if wait := time.Until(first.Leaf.NotAfter); wait > 0 {
			time.Sleep(wait + 2*time.Second) // past the first certificate's end
		}
		if out := c1.proc.Output(); strings.Contains(out, "registering again") || strings.Contains(out, "root unreachable") {
			t.Errorf("cc1 lost the root while renewing:\n%s", testharness.Tail(out, 2000))
		}
		if got := strings.Count(s.root.Output(), `msg="cluster registered" cluster=cc1`); got != 1 {
			t.Errorf("cc1 registered %d times, want once", got)
		}
		in := s.api.waitInstance(ids["web"], 0, 10*time.Second, "running", running)
		if in.NodeName != before.NodeName || in.Restarts != 0 {
			t.Errorf("the instance was disturbed: %+v, was %+v", in, before)
		}
		nowTasks := taskPIDs(t, s.ctrNS)
		for k, pid := range tasks {
			if nowTasks[k] != pid {
				t.Errorf("task %s: pid %s, was %s", k, nowTasks[k], pid)
			}
		}
		code, b := s.api.do("GET", "/api/clusters/active", nil)
		var cls []api.Cluster
		if err := json.Unmarshal(b, &cls); err != nil || code != 200 || !slices.ContainsFunc(cls, func(c api.Cluster) bool { return c.ClusterName == "cc1" }) {
			t.Errorf("cc1 is not active: %d %s", code, b)
		}
	})

	t.Run("another cluster's certificate is refused", func(t *testing.T) {
		// cc1 restarts holding cc2's certificate (and its own credential).
		c1.proc.Stop()
		other, err := os.ReadFile(filepath.Join(c2.dir, clusterCertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c1.dir, clusterCertFile), other, 0o600); err != nil {
			t.Fatal(err)
		}
		c2ID, _ := pki.ClusterOf(pki.OpenClientCert(filepath.Join(c2.dir, clusterCertFile)).Current().Leaf)
		c1.proc.restart()
		testharness.WaitFor(t, 60*time.Second, "the root refuses cc2's certificate for cc1", func() (bool, string) {
			return strings.Contains(s.root.Output(), "the certificate is cluster "+c2ID+"'s, not cluster "+id+"'s"), testharness.Tail(s.root.Output(), 1500)
		})
		// cc1 registers again, for its own certificate, and goes on.
		testharness.WaitFor(t, 60*time.Second, "cc1 has its own certificate again", func() (bool, string) {
			got, err := pki.ClusterOf(certOf(c1).Current().Leaf)
			return err == nil && got == id, got
		})
		s.waitNodes(map[string]int{"cc1": 1})
	})
}

// clusterCertFile is rootsync.ClientCertFile, in a cluster's data dir.
const clusterCertFile = "root-client.pem"
