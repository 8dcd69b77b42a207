package commands

import (
	"fmt"

	"github.com/thicket-edge/thicket/api"
)

// NodeCmd is `thicket node`: an admin's cordon, drain and uncordon.
type NodeCmd struct {
	Cordon   NodeModeCmd `cmd:"" help:"Cordon a node (admins): nothing new is placed on it; its instances stay."`
	Drain    NodeModeCmd `cmd:"" help:"Drain a node (admins): cordon it and move its instances to the cluster's other nodes, one at a time."`
	Uncordon NodeModeCmd `cmd:"" help:"Uncordon a node (admins): it takes placements again."`
}

// NodeModeCmd is one of `thicket node cordon|drain|uncordon CLUSTER NODE`.
type NodeModeCmd struct {
	Cluster string `arg:"" help:"Cluster id or name."`
	Node    string `arg:"" help:"Node id or name."`
}

// Run sets the node's mode: the action is the command's name.
func (c *NodeModeCmd) Run(e *Env, n *NodeCmd) error {
	action := api.Uncordon
	switch c {
	case &n.Cordon:
		action = api.Cordon
	case &n.Drain:
		action = api.Drain
	}
	cl, err := e.session()
	if err != nil {
		return err
	}
	msg, err := cl.SetNodeMode(e.Ctx, c.Cluster, c.Node, action)
	if err != nil {
		return fmt.Errorf("%s node %s of cluster %s: %w", action, c.Node, c.Cluster, err)
	}
	fmt.Fprintln(e.Out, msg)
	return nil
}
