package commands

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
	"github.com/thicket-edge/thicket/contract/wire"
)

// GetCmd is `thicket get`.
type GetCmd struct {
	Apps      GetAppsCmd      `cmd:"" aliases:"app,applications" help:"List applications."`
	Services  GetServicesCmd  `cmd:"" aliases:"service,svc" help:"List services, of one application or of all."`
	Instances GetInstancesCmd `cmd:"" aliases:"instance,inst" help:"List instances, of one service or of all."`
	Clusters  GetClustersCmd  `cmd:"" aliases:"cluster" help:"List clusters."`
	Nodes     GetNodesCmd     `cmd:"" aliases:"node" help:"List the worker nodes of all clusters."`
	// componentdefinitions: the OAM component types and the caller's
	// ComponentDefinitions (oamdefs.go).
	ComponentDefs GetComponentDefsCmd `cmd:"" name:"componentdefinitions" aliases:"componentdefinition,compdefs,cd" help:"List the OAM component types: built-in ones and your ComponentDefinitions."`
}

// list prints what fetch reads with the session: as JSON, or as a table
// of header and one row per item.
func list[T any](e *Env, fetch func(*api.Client) ([]T, error), header []string, row func(T) []string) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	items, err := fetch(cl)
	if err != nil {
		return err
	}
	if e.json() {
		return writeJSON(e.Out, nonNil(items))
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return writeTable(e.Out, header, rows)
}

// GetAppsCmd is `thicket get apps`.
type GetAppsCmd struct{}

// Run lists applications.
func (c *GetAppsCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.Application, error) { return cl.Applications(e.Ctx) },
		[]string{"ID", "NAME", "NAMESPACE", "OWNER", "SERVICES", "DESCRIPTION"},
		func(a api.Application) []string {
			return []string{a.ApplicationID, a.ApplicationName, a.ApplicationNamespace, a.UserID,
				strconv.Itoa(len(a.Microservices)), oneLine(a.ApplicationDesc)}
		})
}

// GetServicesCmd is `thicket get services [APP]`.
type GetServicesCmd struct {
	App string `arg:"" optional:"" help:"Application id or name (default: all)."`
}

// Run lists services.
func (c *GetServicesCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.Service, error) {
		apps, err := cl.Applications(e.Ctx)
		if err != nil {
			return nil, err
		}
		if c.App != "" {
			app, err := resolve.App(c.App, apps)
			if err != nil {
				return nil, err
			}
			apps = []api.Application{app}
		}
		return servicesOf(e.Ctx, cl, apps)
	}, []string{"ID", "SERVICE", "TYPE", "STATUS", "INSTANCES", "SERVICE_IP", "PORT", "CODE"},
		func(s api.Service) []string {
			return []string{s.MicroserviceID, resolve.Label(s), s.Virtualization, s.Status,
				instancesColumn(s), s.RRIP, s.Port, s.Code}
		})
}

// instancesColumn is a service's INSTANCES: running of all, or for an
// indexed one-shot service its completed indices of its completions.
func instancesColumn(s api.Service) string {
	if s.Completions > 0 {
		return fmt.Sprintf("%d/%d completed", s.Succeeded, s.Completions)
	}
	running := 0
	for _, in := range s.InstanceList {
		if in.Status == wire.StatusRunning {
			running++
		}
	}
	return fmt.Sprintf("%d/%d", running, len(s.InstanceList))
}

// GetInstancesCmd is `thicket get instances [SERVICE]`.
type GetInstancesCmd struct {
	Service string `arg:"" optional:"" help:"Service id, app/service or unique service name (default: all)."`
}

// instanceDoc is an instance with its service, as -o json shows it.
type instanceDoc struct {
	ServiceID string `json:"microserviceID"`
	Service   string `json:"service"`
	api.Instance
	ClusterName string `json:"cluster_name,omitempty"`
}

// Run lists instances.
func (c *GetInstancesCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]instanceDoc, error) {
		var svcs []api.Service
		if c.Service != "" {
			svc, err := findService(e.Ctx, cl, c.Service)
			if err != nil {
				return nil, err
			}
			svcs = []api.Service{*svc}
		} else {
			apps, err := cl.Applications(e.Ctx)
			if err != nil {
				return nil, err
			}
			if svcs, err = servicesOf(e.Ctx, cl, apps); err != nil {
				return nil, err
			}
		}
		return instanceDocs(svcs, clusterNames(e.Ctx, cl)), nil
	}, []string{"SERVICE", "SERVICE_ID", "#", "STATUS", "NODE", "CLUSTER", "ADDRESS", "PUBLISHED", "RESTARTS", "IMPLEMENTATION", "DETAIL"},
		func(d instanceDoc) []string {
			published := ""
			if d.HostPort != 0 {
				published = d.HostIP + ":" + strconv.Itoa(d.HostPort)
			}
			return []string{d.Service, d.ServiceID, strconv.Itoa(d.InstanceNumber), d.Status, d.NodeName,
				cmp.Or(d.ClusterName, d.ClusterID), cmp.Or(d.InstanceIP, d.HostIP), published, strconv.Itoa(d.Restarts),
				d.Implementation, oneLine(d.StatusDetail)}
		})
}

// instanceDocs flattens services into their instances, by service and number.
func instanceDocs(svcs []api.Service, clusters map[string]string) []instanceDoc {
	docs := []instanceDoc{}
	for _, s := range svcs {
		for _, in := range s.InstanceList {
			docs = append(docs, instanceDoc{ServiceID: s.MicroserviceID, Service: resolve.Label(s), Instance: in,
				ClusterName: clusters[in.ClusterID]})
		}
	}
	slices.SortStableFunc(docs, func(a, b instanceDoc) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ServiceID, b.ServiceID), cmp.Compare(a.InstanceNumber, b.InstanceNumber))
	})
	return docs
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// servicesOf lists the services of the applications, one call each; an
// application deleted meanwhile has none.
func servicesOf(ctx context.Context, cl *api.Client, apps []api.Application) ([]api.Service, error) {
	var all []api.Service
	for _, a := range apps {
		svcs, err := cl.Services(ctx, a.ApplicationID)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, svcs...)
	}
	return all, nil
}

// clusterNames maps cluster ids to names; empty when the clusters cannot be
// read (names are a nicety).
func clusterNames(ctx context.Context, cl *api.Client) map[string]string {
	names := map[string]string{}
	cls, err := cl.Clusters(ctx)
	if err != nil {
		return names
	}
	for _, c := range cls {
		names[c.ID] = c.ClusterName
	}
	return names
}

// GetClustersCmd is `thicket get clusters`.
type GetClustersCmd struct{}

// Run lists clusters.
func (c *GetClustersCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.Cluster, error) { return cl.Clusters(e.Ctx) },
		[]string{"ID", "NAME", "LOCATION", "ACTIVE", "NODES", "CPUS", "MEMORY_MB", "VIRTUALIZATION"},
		func(c api.Cluster) []string {
			active := 0
			for _, n := range c.Nodes {
				if n.Active {
					active++
				}
			}
			return []string{c.ID, c.ClusterName, c.ClusterLocation, yesNo(c.Active),
				fmt.Sprintf("%d/%d", active, len(c.Nodes)), strconv.Itoa(c.TotalCPUCores), strconv.Itoa(c.MemoryInMB),
				strings.Join(c.Virtualization, ",")}
		})
}

// GetNodesCmd is `thicket get nodes`.
type GetNodesCmd struct{}

// nodeDoc is a node with its cluster, as -o json shows it.
type nodeDoc struct {
	ClusterID   string `json:"cluster_id"`
	ClusterName string `json:"cluster_name"`
	api.Node
}

// Run lists nodes.
func (c *GetNodesCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]nodeDoc, error) {
		cls, err := cl.Clusters(e.Ctx)
		var docs []nodeDoc
		for _, c := range cls {
			for _, n := range c.Nodes {
				docs = append(docs, nodeDoc{ClusterID: c.ID, ClusterName: c.ClusterName, Node: n})
			}
		}
		return docs, err
	}, []string{"ID", "NAME", "CLUSTER", "ACTIVE", "MODE", "ARCH", "CPUS", "MEMORY_MB", "CPU", "MEMORY", "VIRTUALIZATION"},
		func(d nodeDoc) []string {
			return []string{d.ID, d.Name, d.ClusterName, yesNo(d.Active), cmp.Or(d.Mode, "-"), d.Arch, strconv.Itoa(d.CPUCores),
				strconv.Itoa(d.MemoryInMB), fmt.Sprintf("%.0f%%", d.CPUPercent), fmt.Sprintf("%.0f%%", d.MemoryPercent),
				strings.Join(d.Virtualization, ",")}
		})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// findService reads a service named by id, "app/service" or a unique
// service name.
func findService(ctx context.Context, cl *api.Client, ref string) (*api.Service, error) {
	if ref == "" {
		return nil, usagef("empty service reference")
	}
	if !strings.Contains(ref, "/") {
		svc, err := cl.Service(ctx, ref)
		var ae *api.StatusError
		if err == nil {
			return svc, nil
		}
		if !errors.As(err, &ae) || (ae.Status != 404 && ae.Status != 400) {
			return nil, err
		}
	}
	apps, err := cl.Applications(ctx)
	if err != nil {
		return nil, err
	}
	svcs, err := servicesOf(ctx, cl, apps)
	if err != nil {
		return nil, err
	}
	svc, err := resolve.Service(ref, svcs)
	if err != nil {
		return nil, err
	}
	return &svc, nil
}

// service is the session and the service ref names.
func (e *Env) service(ref string) (*api.Client, *api.Service, error) {
	cl, err := e.session()
	if err != nil {
		return nil, nil, err
	}
	svc, err := findService(e.Ctx, cl, ref)
	return cl, svc, err
}

// findApp reads an application named by id or unique name.
func findApp(ctx context.Context, cl *api.Client, ref string) (*api.Application, error) {
	apps, err := cl.Applications(ctx)
	if err != nil {
		return nil, err
	}
	app, err := resolve.App(ref, apps)
	if err != nil {
		return nil, err
	}
	return &app, nil
}
