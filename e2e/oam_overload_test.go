package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// TestOAMOverloadedComponent: a base component with a container and a wasm
// implementation (two ComponentDefinitions, the container one registered
// first and so preferred) runs as wasm on a node that offers no containers
// and as a container on a node that offers both; each instance's status
// names the implementation chosen and why the other was not, and its
// output is the chosen build's. The second node is chosen by its labels
// (thicket-node --label, the placement trait's labels), which the root
// lists.
func TestOAMOverloadedComponent(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("alpha", "")
	// The module is served from the bridge, a private address: allowed
	// there; it is pinned by its digest, so no unpinned code is needed.
	wasmOnly := s.startNodeWith(c, "w1", 57, 1024, "--virtualizations", "wasm", "--code-allow-net", bridgeAddr+"/32")
	both := s.startNodeWith(c, "b1", 58, 1024, "--code-allow-net", bridgeAddr+"/32", "--label", "zone=north", "--label", "camera=yes")
	s.waitNodes(map[string]int{"alpha": 2})
	// Its labels reach the root's node list.
	testharness.WaitFor(t, time.Minute, "b1's labels at the root", func() (bool, string) {
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters/", nil, &cls)
		for _, cl := range cls {
			for _, n := range cl.Nodes {
				if n.Name == both.name {
					return n.Labels["zone"] == "north" && n.Labels["camera"] == "yes", fmt.Sprint(n.Labels)
				}
			}
		}
		return false, "not listed"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mod, err := testimage.WasmModule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := serveFiles(t, map[string][]byte{"va.wasm": mod})

	defs := []string{fmt.Sprintf(`apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: va-container}
spec:
  baseComponent: video-analytics
  workload:
    type: task
    virtualization: container
    image: %s
    cmd: [print, "2"]
    memory: 32Mi
`, s.image), fmt.Sprintf(`apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: va-wasm}
spec:
  baseComponent: video-analytics
  workload:
    type: task
    virtualization: wasm
    image: %s/va.wasm
    sha256: %s
    memory: 32Mi
`, base, fetch.SHA256(mod))}
	cl := s.api.client()
	for _, d := range defs {
		if _, err := cl.ApplyOAMComponentDefinition(ctx, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	app, err := cl.CreateOAMApplication(ctx, []byte(fmt.Sprintf(`apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: overloaded}
spec:
  components:
    - name: on-wasm-node
      type: video-analytics
      properties:
        env: [{name: GREETING, value: overloaded}]
      traits:
        - type: placement
          properties: {clusters: [alpha], nodes: [%s]}
    - name: on-both-node
      type: video-analytics
      properties: {}
      traits:
        - type: placement
          properties: {clusters: [alpha], labels: {zone: north}}
`, wasmOnly.name)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		impl, node, choice0, choice1, logs string
	}{
		{"va-wasm", wasmOnly.name, "va-container (container): no node fits: 1 does not run container, 1 is not in the direct constraint's node list",
			"va-wasm (wasm): chosen (node " + wasmOnly.name + ")", `hello from wasm args=[] GREETING="overloaded"`},
		{"va-container", both.name, "va-container (container): chosen (node " + both.name + ")",
			"va-wasm (wasm): not needed (va-container (container) is preferred)", "line 2"},
	} {
		id := app.Components[i].MicroserviceID
		in := s.api.waitInstance(id, 0, 3*time.Minute, "completed", func(in api.Instance) bool {
			return in.Status == wire.StatusCompleted || in.Status == wire.StatusFailed
		})
		if in.Status != wire.StatusCompleted || in.NodeName != want.node || in.Implementation != want.impl {
			t.Errorf("%s: %s on %s as %q (%s), want COMPLETED on %s as %s", app.Components[i].Name, in.Status, in.NodeName,
				in.Implementation, in.StatusDetail, want.node, want.impl)
		}
		if len(in.ImplementationChoice) != 2 || in.ImplementationChoice[0] != want.choice0 || in.ImplementationChoice[1] != want.choice1 {
			t.Errorf("%s: choice %q, want %q, %q", app.Components[i].Name, in.ImplementationChoice, want.choice0, want.choice1)
		}
		testharness.WaitFor(t, time.Minute, app.Components[i].Name+"'s output", func() (bool, string) {
			var l api.Logs
			s.api.must("GET", "/api/service/"+id+"/instance/0/logs?lines=20", nil, &l)
			return strings.Contains(l.Logs, want.logs), l.Logs
		})
	}
	if err := cl.DeleteOAMApplication(ctx, "overloaded"); err != nil {
		t.Fatal(err)
	}
}
