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
// its next sync; an unchanged set is answered when the wait ends.
func TestClusterWatchGetsChangesAtOnce(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=watch-admin-password"})
	admin := r.login("Admin", "watch-admin-password").Token
	join := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	r.must("POST", "/api/cluster/register", join, wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge"}, &reg)
	var d wire.ClusterDesired
	r.must("POST", "/api/cluster/sync", reg.Credential, wire.ClusterSync{Version: wire.Version, Nodes: []wire.NodeInfo{{
		ID: "n1", Name: "n1", Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 4096}}}}, &d)
	if len(d.Instances) != 0 || d.Block == "" {
		t.Fatalf("first desired set = %+v", d)
	}

	// Unchanged: answered when the wait ends, with the same generation.
	start := time.Now()
	var same wire.ClusterDesired
	r.must("GET", "/api/cluster/desired?after="+itoa64(d.Generation)+"&wait=1s", reg.Credential, nil, &same)
	if el := time.Since(start); el < 900*time.Millisecond || same.Generation != d.Generation {
		t.Errorf("unchanged watch answered after %s with generation %d (want ~1s, %d)", el, same.Generation, d.Generation)
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
		resp := r.do("GET", "/api/cluster/desired?after="+itoa64(d.Generation)+"&wait=30s", reg.Credential, nil)
		var a answer
		a.at = time.Now()
		a.err = json.Unmarshal(resp.Body, &a.d)
		got <- a
	}()
	time.Sleep(300 * time.Millisecond) // the watch is waiting
	app := r.createApp(admin, testSLA("watched"), "watched")
	asked := time.Now()
	r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", admin, nil, nil)
	select {
	case a := <-got:
		if a.err != nil || len(a.d.Instances) != 1 || a.d.Instances[0].ServiceID != app.Microservices[0] {
			t.Fatalf("watch answered %+v (%v)", a.d, a.err)
		}
		t.Logf("the watching cluster got the instance %s after the API call", a.at.Sub(asked).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not answer within 10 s of the change")
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
