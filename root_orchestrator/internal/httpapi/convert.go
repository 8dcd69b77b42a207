package httpapi

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// The REST documents are made from the state here, at the edge: the
// reference system's field shapes (percentages as strings, a cluster's
// summed figures) exist only on the wire.

// restApp is an application with the status of its instances: as a
// service's, over all of its services (a one-shot service's finished
// instances count as done).
func restApp(sn *state.Snapshot, a *state.Application) api.Application {
	out := api.Application{
		ApplicationID: a.ID, ApplicationName: a.Name, ApplicationNamespace: a.Namespace,
		ApplicationDesc: a.Description, UserID: a.Owner, Isolation: a.Isolation, Microservices: orEmpty(a.Services),
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	var all []api.Instance
	for _, s := range sn.ServicesOfApp(a.ID) {
		var ins []api.Instance
		for _, in := range sn.Instances(s.ID) {
			ins = append(ins, restInstance(s, in))
		}
		running, desired := api.Count(ins, s.Spec.OneShot)
		out.Running, out.Desired = out.Running+running, out.Desired+desired
		if s.Spec.OneShot { // its ends are no failures of the application
			for i := range ins {
				if ins[i].Status == wire.StatusFailed {
					ins[i].Status = wire.StatusCompleted
				}
			}
		}
		all = append(all, ins...)
	}
	out.Status, out.StatusDetail = api.Summarize(all)
	return out
}

func restAppsOf(sn *state.Snapshot, owner string) []api.Application {
	return restApps(sn, sn.Apps(owner))
}

func restApps(sn *state.Snapshot, as []*state.Application) []api.Application {
	out := make([]api.Application, len(as))
	for i, a := range as {
		out[i] = restApp(sn, a)
	}
	return out
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// percent prints a figure as the reference does: a string, "0" for none.
func percent(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func restInstance(svc *state.Service, in *state.Instance) api.Instance {
	mem := 0.0
	if svc.Spec.MemoryMB > 0 {
		mem = float64(in.MemoryMB) * 100 / float64(svc.Spec.MemoryMB)
	}
	status, restartAt := in.Status, time.Time{}
	if in.Status == wire.StatusFailed && !in.RestartAt.IsZero() {
		status, restartAt = api.StatusBackoff, in.RestartAt // not final: its node restarts it
	}
	var choice []string
	if in.Choice != "" {
		choice = strings.Split(in.Choice, "\n")
	}
	return api.Instance{
		Implementation: in.Implementation, ImplementationChoice: choice,
		InstanceNumber: in.Number, Status: status, StatusDetail: in.Detail, RestartAt: restartAt,
		ClusterID: in.ClusterID, ClusterLocation: in.ClusterLocation, WorkerID: in.NodeID,
		HostIP: in.HostIP, HostPort: in.HostPort, PublicIP: in.HostIP, Logs: logText(in.Logs),
		CPUPercent: percent(in.CPUPercent), MemoryPercent: percent(mem), Disk: "0",
		InstanceIP: in.InstanceIP, NodeName: in.NodeName, Restarts: in.Restarts,
		Outdated:  in.Spec != nil,
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
}

// restService is a service with its instances and status summary.
func restService(sn *state.Snapshot, s *state.Service) api.Service {
	cons := make([]api.Constraint, len(s.Spec.Constraints))
	for i, c := range s.Spec.Constraints {
		cons[i] = api.Constraint(c)
	}
	ins := sn.Instances(s.ID)
	list := make([]api.Instance, len(ins))
	updated := s.UpdatedAt // the service or any of its instances
	for i, in := range ins {
		list[i] = restInstance(s, in)
		if in.UpdatedAt.After(updated) {
			updated = in.UpdatedAt
		}
	}
	p := &s.Spec
	out := api.Service{
		MicroserviceID: s.ID, MicroserviceName: s.Name, MicroserviceNamespace: s.Namespace,
		ApplicationID: s.AppID, AppName: s.AppName, AppNamespace: s.AppNamespace, UserID: s.Owner,
		Virtualization: p.Virtualization, Code: p.Code, Arch: orEmpty(p.Arch), Cmd: orEmpty(p.Cmd),
		Environment: orEmpty(p.Environment), Port: p.Port, RRIP: s.RRIP, ClosestIP: s.ClosestIP,
		Memory: p.MemoryMB, VCPUs: p.VCPUs, VGPUs: p.VGPUs, VTPUs: p.VTPUs, BandwidthIn: p.BandwidthIn,
		BandwidthOut: p.BandwidthOut, Storage: p.Storage, AddedFiles: orEmpty(p.AddedFiles), Constraints: cons,
		OneShot: p.OneShot, Disconnect: api.Disconnect{Replace: p.Disconnect.Replace,
			ReplaceAfter: int(p.Disconnect.ReplaceAfter / time.Second), StopAfter: int(p.Disconnect.StopAfter / time.Second),
			Reconcile: p.Disconnect.Reconcile},
		Security: restSecurity(p.Security), Implementations: restImplementations(p.Implementations),
		NodeSelector: p.NodeSelector,
		AllowFrom:    p.AllowFrom,
		InstanceList: list, NextInstance: s.NextInstance, CreatedAt: s.CreatedAt, UpdatedAt: updated,
	}
	out.JobsCount = len(s.Jobs)
	out.Rollout = restRollout(sn, s)
	if n := p.Completions; n > 0 {
		retries := p.Retries
		out.Completions, out.BackoffLimit = n, &retries
		for _, in := range list {
			if in.Status == api.StatusCompleted {
				out.Succeeded++
			}
		}
	}
	out.Status, out.StatusDetail = api.SummarizeService(list, p.OneShot)
	out.Running, out.Desired = api.Count(list, p.OneShot)
	return out
}

func restServices(sn *state.Snapshot, ss []*state.Service) []api.Service {
	out := make([]api.Service, len(ss))
	for i, s := range ss {
		out[i] = restService(sn, s)
	}
	return out
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// restCluster is a cluster with its nodes and the reference's per-cluster
// figures, summed over its active nodes.
func restCluster(sn *state.Snapshot, c *state.Cluster) api.Cluster {
	out := api.Cluster{
		ID: c.ID, ClusterName: c.Name, IP: c.Address, Port: c.Port, ClusterLocation: c.Location,
		Active: c.Active, Virtualization: []string{}, Nodes: []api.Node{}, LastSeen: c.LastSeen,
		Coordinate: restCoordinate(c.Coordinate),
	}
	var cpuPct, memPct float64
	modes := sn.NodeModes(c)
	for _, n := range sn.SchedulingNodes(c.ID) { // reservations as placement counts them
		out.Nodes = append(out.Nodes, api.Node{
			ID: n.ID, Name: n.Name, Arch: n.Arch,
			CPUCores: int(n.Capacity.MilliCPU / 1000), MemoryInMB: int(n.Capacity.MemoryMB), VGPUs: int(n.Capacity.VGPUs),
			CPUPercent: n.CPUPercent, MemoryPercent: n.MemoryPercent,
			Virtualization: orEmpty(n.Virtualizations), Active: n.Active,
			MilliCPU: n.Capacity.MilliCPU, ReservedMilliCPU: n.Reserved.MilliCPU, ReservedMemoryMB: n.Reserved.MemoryMB,
			ReservedVGPUs: n.Reserved.VGPUs, LastSeen: n.LastSeen, Address: n.Address, Labels: n.Labels,
			Location: cmp.Or(n.Location, c.Location), Coordinate: restCoordinate(n.Coordinate), Mode: string(modes[n.ID]),
		})
		if !n.Active || !c.Active {
			continue
		}
		out.ActiveNodes++
		out.MilliCPU += n.Capacity.MilliCPU
		out.ReservedMilliCPU += n.Reserved.MilliCPU
		out.ReservedMemoryMB += n.Reserved.MemoryMB
		out.TotalCPUCores += int(n.Capacity.MilliCPU / 1000)
		out.MemoryInMB += int(n.Capacity.MemoryMB)
		out.VGPUs += int(n.Capacity.VGPUs)
		cpuPct += n.CPUPercent
		memPct += n.MemoryPercent
		for _, v := range n.Virtualizations {
			if !slices.Contains(out.Virtualization, v) {
				out.Virtualization = append(out.Virtualization, v)
			}
		}
	}
	if out.ActiveNodes > 0 {
		out.CPUPercent, out.MemoryPercent = round2(cpuPct/float64(out.ActiveNodes)), round2(memPct/float64(out.ActiveNodes))
	}
	out.VCPUs = out.TotalCPUCores
	slices.Sort(out.Virtualization)
	return out
}

func restImplementations(impls []wire.Implementation) []api.Implementation {
	if len(impls) == 0 {
		return nil
	}
	out := make([]api.Implementation, len(impls))
	for i, im := range impls {
		out[i] = api.Implementation{Name: im.Name, Virtualization: im.Virtualization, Code: im.Code, Arch: im.Arch,
			Cmd: im.Cmd, MilliCPU: im.Resources.MilliCPU, MemoryMB: im.Resources.MemoryMB}
	}
	return out
}
