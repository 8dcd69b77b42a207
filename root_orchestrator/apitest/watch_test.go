package apitest

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestClusterWatchGetsChangesAtOnce: a cluster holding the desired-set
// watch open learns of a new instance as soon as the root places it, not at
// its next sync, and gets only what changed; an unchanged set is answered
// when the wait ends. Clusters of earlier versions (no delta) get full sets.
func TestClusterWatchGetsChangesAtOnce(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=watch-admin-password"})
	admin := r.login("Admin", "watch-admin-password").Token
	reg, ack := r.clusterWithNode(t, "edge", wire.Resources{MilliCPU: 4000, MemoryMB: 4096})
	if ack.Epoch == "" || ack.Resync {
		t.Fatalf("first delta sync answered %+v", ack)
	}
	app := r.createApp(admin, testSLA("watched"), "watched")

	// The first watch of a cluster gets everything.
	var d wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&wait=1s", reg.Credential, nil, &d)
	if d.Delta || len(d.Instances) != 0 || d.Block == "" || len(d.Network.Services) != 2 || d.Epoch != ack.Epoch {
		t.Fatalf("first desired set = %+v", d)
	}
	watch := func(gen int64, wait string) string {
		return "/api/cluster/desired?delta=1&epoch=" + d.Epoch + "&after=" + itoa64(gen) + "&wait=" + wait
	}

	// Unchanged: answered when the wait ends, with no change.
	start := time.Now()
	var same wire.ClusterDesired
	r.must("GET", watch(d.Generation, "1s"), reg.Credential, nil, &same)
	if el := time.Since(start); el < 900*time.Millisecond || !same.Delta || len(same.Instances) != 0 || !same.NetworkUnchanged {
		t.Errorf("unchanged watch answered after %s with %+v (want ~1s, an empty delta)", el, same)
	}
	if resp := r.do("GET", "/api/cluster/desired?wait=1s", "wrong", nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("watch with a wrong credential: %s", resp)
	}

	type answer struct {
		d   wire.ClusterDesired
		err error
		at  time.Time
	}
	got := make(chan answer, 1)
	go func() {
		resp := r.do("GET", watch(same.Generation, "30s"), reg.Credential, nil)
		var a answer
		a.at = time.Now()
		a.err = json.Unmarshal(resp.Body, &a.d)
		got <- a
	}()
	time.Sleep(300 * time.Millisecond) // the watch is waiting
	asked := time.Now()
	r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", admin, nil, nil)
	var placed wire.ClusterDesired
	select {
	case a := <-got:
		if a.err != nil || !a.d.Delta || len(a.d.Instances) != 1 || a.d.Instances[0].ServiceID != app.Microservices[0] {
			t.Fatalf("watch answered %+v (%v)", a.d, a.err)
		}
		placed = a.d
		t.Logf("the watching cluster got the instance %s after the API call", a.at.Sub(asked).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not answer within 10 s of the change")
	}

	// A removal comes as a removed key, not as a full set.
	r.must("DELETE", "/api/service/"+app.Microservices[0]+"/instance/0", admin, nil, nil)
	var removed wire.ClusterDesired
	r.must("GET", watch(placed.Generation, "10s"), reg.Credential, nil, &removed)
	if !removed.Delta || len(removed.Instances) != 0 || len(removed.Removed) != 1 || removed.Removed[0] != placed.Instances[0].Key {
		t.Errorf("after deleting the instance the watch answered %+v", removed)
	}
	// A generation of another epoch (an earlier root process) gets everything.
	var other wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?delta=1&epoch=other&after="+itoa64(removed.Generation)+"&wait=1s", reg.Credential, nil, &other)
	if other.Delta || other.NetworkUnchanged || len(other.Network.Services) != 2 {
		t.Errorf("a watch from another epoch got %+v, want the full set", other)
	}

	// A cluster of an earlier version: full sets, a fingerprint as generation.
	var full wire.ClusterDesired
	r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{}}, &full)
	if full.Delta || full.Block == "" || len(full.Network.Services) != 2 {
		t.Errorf("a sync without delta answered %+v, want the full desired set", full)
	}
	var legacy wire.ClusterDesired
	start = time.Now()
	r.must("GET", "/api/cluster/desired?after="+itoa64(full.Generation)+"&wait=1s", reg.Credential, nil, &legacy)
	if time.Since(start) < 900*time.Millisecond || legacy.Generation != full.Generation {
		t.Errorf("an unchanged legacy watch answered %+v after %s", legacy, time.Since(start))
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// clusterWithNode registers a cluster with the root's join token and
// syncs one container node of capacity capa ("n1").
func (r *root) clusterWithNode(t *testing.T, name string, capa wire.Resources) (wire.ClusterRegisterResponse, wire.ClusterSyncAck) {
	t.Helper()
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: name}, &reg)
	var ack wire.ClusterSyncAck
	r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: []wire.NodeInfo{{
		ID: "n1", Name: "n1", Arch: "amd64", Virtualizations: []string{"container"}, Active: true, Capacity: capa}}}, &ack)
	return reg, ack
}
