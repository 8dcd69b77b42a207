package commands

import (
	"fmt"

	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// DeleteCmd is `thicket delete`.
type DeleteCmd struct {
	App     DeleteAppCmd     `cmd:"" aliases:"application" help:"Delete an application with its services and instances."`
	Service DeleteServiceCmd `cmd:"" aliases:"svc" help:"Delete a service with its instances."`
	Cluster DeleteClusterCmd `cmd:"" help:"Delete a cluster (admins): its credential is revoked at once, its instances are placed elsewhere."`
	Node    DeleteNodeCmd    `cmd:"" help:"Delete a node of a cluster (admins): its cluster revokes its credential at once and places its instances on other nodes."`
	// componentdefinition: oamdefs.go.
	ComponentDef DeleteComponentDefCmd `cmd:"" name:"componentdefinition" aliases:"componentdefinitions,compdef,cd" help:"Delete one of your OAM ComponentDefinitions (applications made with it keep running as they are)."`
}

// DeleteAppCmd is `thicket delete app`.
type DeleteAppCmd struct {
	App string `arg:"" help:"Application id or unique name."`
}

// Run deletes the application.
func (c *DeleteAppCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	app, err := findApp(e.Ctx, cl, c.App)
	if err != nil {
		return err
	}
	if err := cl.DeleteApplication(e.Ctx, app.ApplicationID); err != nil {
		return fmt.Errorf("delete application %s: %w", app.ApplicationName, err)
	}
	fmt.Fprintf(e.Out, "application %s/%s deleted: %s\n", app.ApplicationNamespace, app.ApplicationName, app.ApplicationID)
	return nil
}

// DeleteServiceCmd is `thicket delete service`.
type DeleteServiceCmd struct {
	Service string `arg:"" help:"Service id, app/service or unique service name."`
}

// Run deletes the service.
func (c *DeleteServiceCmd) Run(e *Env) error {
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	if err := cl.DeleteService(e.Ctx, svc.MicroserviceID); err != nil {
		return fmt.Errorf("delete service %s: %w", resolve.Label(*svc), err)
	}
	fmt.Fprintf(e.Out, "service %s deleted: %s\n", resolve.Label(*svc), svc.MicroserviceID)
	return nil
}

// DeleteClusterCmd is `thicket delete cluster`.
type DeleteClusterCmd struct {
	Cluster string `arg:"" help:"Cluster id or name."`
}

// Run deletes the cluster.
func (c *DeleteClusterCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	if err := cl.DeleteCluster(e.Ctx, c.Cluster); err != nil {
		return fmt.Errorf("delete cluster %s: %w", c.Cluster, err)
	}
	fmt.Fprintf(e.Out, "cluster %s deleted: its credential is revoked and its instances are placed elsewhere\n", c.Cluster)
	return nil
}

// DeleteNodeCmd is `thicket delete node`.
type DeleteNodeCmd struct {
	Cluster string `arg:"" help:"Cluster id or name."`
	Node    string `arg:"" help:"Node id or name."`
}

// Run deletes the node.
func (c *DeleteNodeCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	if err := cl.DeleteNode(e.Ctx, c.Cluster, c.Node); err != nil {
		return fmt.Errorf("delete node %s of cluster %s: %w", c.Node, c.Cluster, err)
	}
	fmt.Fprintf(e.Out, "node %s of cluster %s deleted: its credential is revoked and its instances are placed on other nodes\n", c.Node, c.Cluster)
	return nil
}
