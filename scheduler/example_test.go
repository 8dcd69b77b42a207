package scheduler_test

import (
	"fmt"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/scheduler"
)

func ExamplePickNode() {
	node := func(name string, freeMB int64) scheduler.Node {
		return scheduler.Node{NodeInfo: wire.NodeInfo{
			ID: "id-" + name, Name: name, Arch: "x86_64", Active: true,
			Virtualizations: []string{"container"},
			Capacity:        wire.Resources{MilliCPU: 4000, MemoryMB: 4096},
			Reserved:        wire.Resources{MemoryMB: 4096 - freeMB},
		}}
	}
	nodes := []scheduler.Node{node("roomy", 4096), node("snug", 1024), node("full", 256)}
	spec := wire.InstanceSpec{
		Key: "svc.0", Virtualization: "container", Arch: []string{"amd64"},
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 512},
	}

	p, err := scheduler.PickNode("edge", nodes, spec)
	fmt.Println(p.NodeName, err)

	spec.Resources.MemoryMB = 2048
	spec.Constraints = []wire.Constraint{{Type: "direct", Cluster: "edge", Node: "snug;full"}}
	_, err = scheduler.PickNode("edge", nodes, spec)
	fmt.Println(err)
	// Output:
	// snug <nil>
	// no node fits: 2 lack memory (need 2048 MB, at most 1024 MB free), 1 is not in the direct constraint's node list
}
