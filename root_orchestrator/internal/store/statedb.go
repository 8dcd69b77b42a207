package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/mongodb"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The storage schema of the root's state. Applications, services, service
// IPs and address blocks keep the field names earlier versions stored, so
// their documents load as they are; instances are documents of their own
// (collection instances), no longer a list inside the service.

type appRecord struct {
	ID          string     `bson:"_id"`
	Name        string     `bson:"application_name"`
	Namespace   string     `bson:"application_namespace"`
	Description string     `bson:"application_desc"`
	Owner       string     `bson:"userId"`
	Services    []string   `bson:"microservices"`
	Isolation   string     `bson:"isolation,omitempty"`
	OAM         *oamRecord `bson:"oam,omitempty"`
	CreatedAt   time.Time  `bson:"created_at"`
	UpdatedAt   time.Time  `bson:"updated_at"`
}

// oamRecord is the OAM manifest an application was made from, as the user
// wrote it, and the service each of its components became; absent in
// applications made from an SLA.
type oamRecord struct {
	Name       string               `bson:"name"`
	Manifest   string               `bson:"manifest"`
	Components []oamComponentRecord `bson:"components"`
	Steps      []oamStepRecord      `bson:"steps"`
	Step       int                  `bson:"step"`
	Phase      string               `bson:"phase"`
	Message    string               `bson:"message,omitempty"`
	Revision   int                  `bson:"revision"`
	Revisions  []oamRevisionRecord  `bson:"revisions"`
}

type oamRevisionRecord struct {
	Number    int       `bson:"number"`
	Manifest  string    `bson:"manifest"`
	CreatedAt time.Time `bson:"created_at"`
}

type oamComponentRecord struct {
	Name        string `bson:"name"`
	ServiceID   string `bson:"service_id"`
	Replicas    int    `bson:"replicas"`
	Replacing   string `bson:"replacing,omitempty"`
	TakeRR      bool   `bson:"take_rr,omitempty"`
	TakeClosest bool   `bson:"take_closest,omitempty"`
	NoSurge     bool   `bson:"no_surge,omitempty"`
}

type oamStepRecord struct {
	Name       string   `bson:"name"`
	Components []string `bson:"components"`
}

type constraintRecord struct {
	Type            string   `bson:"type"`
	Node            string   `bson:"node,omitempty"`
	Cluster         string   `bson:"cluster,omitempty"`
	Allowed         []string `bson:"allowed,omitempty"`
	Area            string   `bson:"area,omitempty"`
	Location        string   `bson:"location,omitempty"`
	Threshold       float64  `bson:"threshold,omitempty"`
	Rigidness       float64  `bson:"rigidness,omitempty"`
	ConvergenceTime int      `bson:"convergence_time,omitempty"`
	Service         string   `bson:"service,omitempty"`
}

type serviceRecord struct {
	ID             string             `bson:"_id"`
	Name           string             `bson:"microservice_name"`
	Namespace      string             `bson:"microservice_namespace"`
	AppID          string             `bson:"applicationID"`
	AppName        string             `bson:"app_name"`
	AppNamespace   string             `bson:"app_ns"`
	Owner          string             `bson:"userId"`
	Virtualization string             `bson:"virtualization"`
	Code           string             `bson:"code"`
	Arch           []string           `bson:"arch"`
	Cmd            []string           `bson:"cmd"`
	Environment    []string           `bson:"environment"`
	Port           string             `bson:"port"`
	RRIP           string             `bson:"RR_ip"`
	ClosestIP      string             `bson:"closest_ip,omitempty"`
	MemoryMB       int                `bson:"memory"`
	VCPUs          int                `bson:"vcpus"`
	VGPUs          int                `bson:"vgpus"`
	VTPUs          int                `bson:"vtpus"`
	BandwidthIn    int                `bson:"bandwidth_in"`
	BandwidthOut   int                `bson:"bandwidth_out"`
	Storage        int                `bson:"storage"`
	AddedFiles     []string           `bson:"added_files"`
	Constraints    []constraintRecord `bson:"constraints"`
	OneShot        bool               `bson:"one_shot"`
	Completions    int                `bson:"completions,omitempty"`
	Retries        int                `bson:"retries,omitempty"`
	Disconnect     *disconnectRecord  `bson:"disconnect,omitempty"`
	Security       *securityRecord    `bson:"security,omitempty"`
	AllowFrom      []string           `bson:"allow_from,omitempty"`
	NextInstance   int                `bson:"next_instance"`
	CreatedAt      time.Time          `bson:"created_at"`
	UpdatedAt      time.Time          `bson:"updated_at"`
	// The job list (collaborative workloads); absent in services without
	// one and in those stored before job lists existed.
	Jobs        []string `bson:"jobs,omitempty"`
	JobsVersion int64    `bson:"jobs_version,omitempty"`
	JobsLease   int64    `bson:"jobs_lease_s,omitempty"`
	// The implementations of an overloaded service, in preference order;
	// absent in the others.
	Implementations []implementationRecord `bson:"implementations,omitempty"`
	NodeSelector    map[string]string      `bson:"node_selector,omitempty"`
	// The edit being rolled out (absent: none).
	Rollout *rolloutRecord `bson:"rollout,omitempty"`
}

type rolloutRecord struct {
	Replicas int    `bson:"replicas"`
	Message  string `bson:"message,omitempty"`
}

type implementationRecord struct {
	Name           string          `bson:"name"`
	Virtualization string          `bson:"virtualization"`
	Code           string          `bson:"code"`
	Arch           []string        `bson:"arch,omitempty"`
	Cmd            []string        `bson:"cmd,omitempty"`
	Resources      resourcesRecord `bson:"resources"`
}

// disconnectRecord is a service's disconnect policy; absent in services
// stored before policies existed (they get the defaults).
type disconnectRecord struct {
	Replace      bool   `bson:"replace"`
	ReplaceAfter int64  `bson:"replace_after_s,omitempty"`
	StopAfter    int64  `bson:"stop_after_s,omitempty"`
	Reconcile    string `bson:"reconcile"`
}

// securityRecord is a service's security field; absent when it asks for
// the default sandbox.
type securityRecord struct {
	Privileged bool     `bson:"privileged,omitempty"`
	CapAdd     []string `bson:"cap_add,omitempty"`
	PidsLimit  int64    `bson:"pids_limit,omitempty"`
	Compat32   bool     `bson:"compat32,omitempty"`
}

func toSecurityRecord(s *wire.Security) *securityRecord {
	if s == nil {
		return nil
	}
	return &securityRecord{s.Privileged, s.CapAdd, s.PidsLimit, s.Compat32}
}

func (r *securityRecord) model() *wire.Security {
	if r == nil {
		return nil
	}
	return &wire.Security{Privileged: r.Privileged, CapAdd: r.CapAdd, PidsLimit: r.PidsLimit, Compat32: r.Compat32}
}

type instanceRecord struct {
	Key             string    `bson:"_id"`
	ServiceID       string    `bson:"service_id"`
	Number          int       `bson:"number"`
	Owner           string    `bson:"owner"`
	Status          string    `bson:"status"`
	Detail          string    `bson:"detail,omitempty"`
	ClusterID       string    `bson:"cluster_id,omitempty"`
	ClusterLocation string    `bson:"cluster_location,omitempty"`
	PlannedNode     string    `bson:"planned_node,omitempty"`
	LostFrom        string    `bson:"lost_from,omitempty"`
	LostAt          time.Time `bson:"lost_at,omitempty"`
	NodeID          string    `bson:"node_id,omitempty"`
	NodeName        string    `bson:"node_name,omitempty"`
	HostIP          string    `bson:"host_ip,omitempty"`
	HostPort        int       `bson:"host_port,omitempty"`
	InstanceIP      string    `bson:"instance_ip,omitempty"`
	Restarts        int       `bson:"restarts,omitempty"`
	CreatedAt       time.Time `bson:"created_at"`
	UpdatedAt       time.Time `bson:"updated_at"`
	// The spec of an edited service's instance that runs it until a
	// rollout replaces it (absent: its service's).
	Spec *serviceRecord `bson:"spec,omitempty"`
}

type clusterRecord struct {
	ID             string            `bson:"_id"`
	Name           string            `bson:"cluster_name"`
	Address        string            `bson:"ip"`
	Port           int               `bson:"port"`
	Location       string            `bson:"cluster_location"`
	CredentialHash string            `bson:"credential_hash"`
	Active         bool              `bson:"active"`
	LastSeen       time.Time         `bson:"last_seen"`
	RegisteredAt   time.Time         `bson:"registered_at"`
	DeletedNodes   []string          `bson:"deleted_nodes,omitempty"`
	NodeTokens     []nodeTokenRecord `bson:"node_tokens,omitempty"`
	CAPin          string            `bson:"ca_pin,omitempty"`
	CordonedNodes  []string          `bson:"cordoned_nodes,omitempty"`
	DrainedNodes   []string          `bson:"drained_nodes,omitempty"`
	CertBound      bool              `bson:"cert_bound,omitempty"`
}

type resourcesRecord struct {
	MilliCPU int64 `bson:"milli_cpu"`
	MemoryMB int64 `bson:"memory_mb"`
	VGPUs    int64 `bson:"vgpus"`
}

type nodeNetworkRecord struct {
	Subnet     string `bson:"subnet"`
	VTEPMAC    string `bson:"vtep_mac"`
	PublicIP   string `bson:"public_ip"`
	PublicPort int    `bson:"public_port"`
	ProbePort  int    `bson:"probe_port,omitempty"`
}

type nodeRecord struct {
	ID              string             `bson:"_id"` // cluster id / node id
	ClusterID       string             `bson:"cluster_id"`
	NodeID          string             `bson:"node_id"`
	Name            string             `bson:"name"`
	Arch            string             `bson:"arch"`
	Virtualizations []string           `bson:"virtualizations"`
	Capacity        resourcesRecord    `bson:"capacity"`
	Reserved        resourcesRecord    `bson:"reserved"`
	UsedPorts       []string           `bson:"used_ports,omitempty"`
	Address         string             `bson:"address,omitempty"`
	Active          bool               `bson:"active"`
	Network         *nodeNetworkRecord `bson:"network,omitempty"`
	Capabilities    []string           `bson:"capabilities,omitempty"`
	NotReady        string             `bson:"not_ready,omitempty"`
	Labels          map[string]string  `bson:"labels,omitempty"`
	Location        string             `bson:"location,omitempty"`
}

type ipRecord struct {
	IP        string    `bson:"_id"`
	ServiceID string    `bson:"service_id"`
	Kind      string    `bson:"kind"`
	CreatedAt time.Time `bson:"created_at"`
}

type blockRecord struct {
	Block     string    `bson:"_id"`
	ClusterID string    `bson:"cluster_id"`
	CreatedAt time.Time `bson:"created_at"`
}

func toAppRecord(a *state.Application) appRecord {
	r := appRecord{ID: a.ID, Name: a.Name, Namespace: a.Namespace, Description: a.Description, Owner: a.Owner,
		Services: a.Services, Isolation: a.Isolation, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if o := a.OAM; o != nil {
		r.OAM = &oamRecord{Name: o.Name, Manifest: o.Manifest, Components: make([]oamComponentRecord, len(o.Components)),
			Steps: make([]oamStepRecord, len(o.Steps)), Step: o.Step, Phase: o.Phase, Message: o.Message}
		for i, c := range o.Components {
			r.OAM.Components[i] = oamComponentRecord(c)
		}
		for i, st := range o.Steps {
			r.OAM.Steps[i] = oamStepRecord{Name: st.Name, Components: nonNil(st.Components)}
		}
		r.OAM.Revision, r.OAM.Revisions = o.Revision, make([]oamRevisionRecord, len(o.Revisions))
		for i, rev := range o.Revisions {
			r.OAM.Revisions[i] = oamRevisionRecord(rev)
		}
	}
	return r
}

func (r appRecord) model() *state.Application {
	if r.Services == nil {
		r.Services = []string{}
	}
	a := &state.Application{ID: r.ID, Name: r.Name, Namespace: r.Namespace, Description: r.Description,
		Owner: r.Owner, Services: r.Services, Isolation: r.Isolation, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if o := r.OAM; o != nil {
		a.OAM = &state.OAMSource{Name: o.Name, Manifest: o.Manifest, Components: make([]state.OAMComponent, len(o.Components)),
			Steps: make([]state.OAMStep, len(o.Steps)), Step: o.Step, Phase: o.Phase, Message: o.Message}
		for i, c := range o.Components {
			a.OAM.Components[i] = state.OAMComponent(c)
		}
		for i, st := range o.Steps {
			a.OAM.Steps[i] = state.OAMStep{Name: st.Name, Components: nonNil(st.Components)}
		}
		a.OAM.Revision, a.OAM.Revisions = o.Revision, make([]state.OAMRevision, len(o.Revisions))
		for i, rev := range o.Revisions {
			a.OAM.Revisions[i] = state.OAMRevision(rev)
		}
	}
	return a
}

func toServiceRecord(s *state.Service) serviceRecord {
	cons := make([]constraintRecord, len(s.Spec.Constraints))
	for i, c := range s.Spec.Constraints {
		cons[i] = constraintRecord(c)
	}
	p := &s.Spec
	return serviceRecord{
		ID: s.ID, Name: s.Name, Namespace: s.Namespace, AppID: s.AppID, AppName: s.AppName, AppNamespace: s.AppNamespace,
		Owner: s.Owner, Virtualization: p.Virtualization, Code: p.Code, Arch: p.Arch, Cmd: p.Cmd, Environment: p.Environment,
		Port: p.Port, RRIP: s.RRIP, ClosestIP: s.ClosestIP, MemoryMB: p.MemoryMB, VCPUs: p.VCPUs, VGPUs: p.VGPUs,
		VTPUs: p.VTPUs, BandwidthIn: p.BandwidthIn, BandwidthOut: p.BandwidthOut, Storage: p.Storage,
		AddedFiles: p.AddedFiles, Constraints: cons, OneShot: p.OneShot, NextInstance: s.NextInstance,
		Completions: p.Completions, Retries: p.Retries,
		Disconnect: &disconnectRecord{Replace: p.Disconnect.Replace, ReplaceAfter: int64(p.Disconnect.ReplaceAfter / time.Second),
			StopAfter: int64(p.Disconnect.StopAfter / time.Second), Reconcile: p.Disconnect.Reconcile},
		Security: toSecurityRecord(p.Security), AllowFrom: p.AllowFrom,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Jobs: s.Jobs, JobsVersion: s.JobsVersion, JobsLease: int64(s.JobsLease / time.Second),
		Implementations: toImplementationRecords(p.Implementations), NodeSelector: p.NodeSelector,
		Rollout: (*rolloutRecord)(s.Rollout),
	}
}

func toImplementationRecords(impls []wire.Implementation) []implementationRecord {
	if len(impls) == 0 {
		return nil
	}
	out := make([]implementationRecord, len(impls))
	for i, im := range impls {
		out[i] = implementationRecord{Name: im.Name, Virtualization: im.Virtualization, Code: im.Code, Arch: im.Arch,
			Cmd: im.Cmd, Resources: resourcesRecord(im.Resources)}
	}
	return out
}

func implementationsModel(rs []implementationRecord) []wire.Implementation {
	if len(rs) == 0 {
		return nil
	}
	out := make([]wire.Implementation, len(rs))
	for i, r := range rs {
		out[i] = wire.Implementation{Name: r.Name, Virtualization: r.Virtualization, Code: r.Code, Arch: r.Arch,
			Cmd: r.Cmd, Resources: wire.Resources(r.Resources)}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r serviceRecord) model() *state.Service {
	cons := make([]state.Constraint, len(r.Constraints))
	for i, c := range r.Constraints {
		cons[i] = state.Constraint(c)
	}
	pol := state.DefaultDisconnect(r.OneShot)
	if d := r.Disconnect; d != nil {
		pol = state.Disconnect{Replace: d.Replace, ReplaceAfter: time.Duration(d.ReplaceAfter) * time.Second,
			StopAfter: time.Duration(d.StopAfter) * time.Second, Reconcile: d.Reconcile}
	}
	return &state.Service{
		ID: r.ID, Name: r.Name, Namespace: r.Namespace, AppID: r.AppID, AppName: r.AppName, AppNamespace: r.AppNamespace,
		Owner: r.Owner, RRIP: r.RRIP, ClosestIP: r.ClosestIP, NextInstance: r.NextInstance,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Jobs: r.Jobs, JobsVersion: r.JobsVersion, JobsLease: time.Duration(r.JobsLease) * time.Second,
		Rollout: (*state.Rollout)(r.Rollout),
		Spec: state.ServiceSpec{
			Virtualization: r.Virtualization, Code: r.Code, Arch: nonNil(r.Arch), Cmd: nonNil(r.Cmd),
			Environment: nonNil(r.Environment), Port: r.Port, MemoryMB: r.MemoryMB, VCPUs: r.VCPUs, VGPUs: r.VGPUs,
			VTPUs: r.VTPUs, BandwidthIn: r.BandwidthIn, BandwidthOut: r.BandwidthOut, Storage: r.Storage,
			AddedFiles: nonNil(r.AddedFiles), Constraints: cons, OneShot: r.OneShot, Disconnect: pol,
			Completions: r.Completions, Retries: r.Retries,
			Security: r.Security.model(), Implementations: implementationsModel(r.Implementations),
			NodeSelector: r.NodeSelector,
			AllowFrom:    r.AllowFrom,
		},
	}
}

func toInstanceRecord(i *state.Instance) instanceRecord {
	var spec *serviceRecord
	if i.Spec != nil {
		r := toServiceRecord(&state.Service{Spec: *i.Spec})
		spec = &r
	}
	return instanceRecord{Spec: spec,
		Key: i.Key, ServiceID: i.ServiceID, Number: i.Number, Owner: i.Owner, Status: i.Status, Detail: i.Detail,
		ClusterID: i.ClusterID, ClusterLocation: i.ClusterLocation, PlannedNode: i.PlannedNode, LostFrom: i.LostFrom, LostAt: i.LostAt, NodeID: i.NodeID,
		NodeName: i.NodeName, HostIP: i.HostIP, HostPort: i.HostPort, InstanceIP: i.InstanceIP, Restarts: i.Restarts,
		CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
	}
}

func (r instanceRecord) model() *state.Instance {
	var spec *state.ServiceSpec
	if r.Spec != nil {
		spec = &r.Spec.model().Spec
	}
	return &state.Instance{Spec: spec,
		Key: r.Key, ServiceID: r.ServiceID, Number: r.Number, Owner: r.Owner, Status: r.Status, Detail: r.Detail,
		ClusterID: r.ClusterID, ClusterLocation: r.ClusterLocation, PlannedNode: r.PlannedNode, LostFrom: r.LostFrom, LostAt: r.LostAt, NodeID: r.NodeID,
		NodeName: r.NodeName, HostIP: r.HostIP, HostPort: r.HostPort, InstanceIP: r.InstanceIP, Restarts: r.Restarts,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func toClusterRecord(c *state.Cluster) clusterRecord {
	return clusterRecord{c.ID, c.Name, c.Address, c.Port, c.Location, c.CredentialHash, c.Active, c.LastSeen, c.RegisteredAt, c.DeletedNodes,
		toNodeTokenRecords(c.NodeTokens), c.CAPin, c.CordonedNodes, c.DrainedNodes, c.CertBound}
}

func (r clusterRecord) model() *state.Cluster {
	return &state.Cluster{ID: r.ID, Name: r.Name, Address: r.Address, Port: r.Port, Location: r.Location,
		CredentialHash: r.CredentialHash, Active: r.Active, LastSeen: r.LastSeen, RegisteredAt: r.RegisteredAt,
		DeletedNodes: r.DeletedNodes, NodeTokens: nodeTokenModels(r.NodeTokens), CAPin: r.CAPin,
		CordonedNodes: r.CordonedNodes, DrainedNodes: r.DrainedNodes, CertBound: r.CertBound}
}

func toNodeRecord(id string, n *state.Node) nodeRecord {
	r := nodeRecord{
		ID: id, ClusterID: n.ClusterID, NodeID: n.ID, Name: n.Name, Arch: n.Arch, Virtualizations: n.Virtualizations,
		Capacity: resourcesRecord(n.Capacity), Reserved: resourcesRecord(n.Reserved), UsedPorts: n.UsedPorts,
		Address: n.Address, Active: n.Active, Capabilities: n.Capabilities, NotReady: n.NotReady, Labels: n.Labels, Location: n.Location,
	}
	if n.Network != nil {
		r.Network = &nodeNetworkRecord{Subnet: n.Network.Subnet, VTEPMAC: n.Network.VTEPMAC, PublicIP: n.Network.PublicIP,
			PublicPort: n.Network.PublicPort, ProbePort: n.Network.ProbePort}
	}
	return r
}

func (r nodeRecord) model() *state.Node {
	n := &state.Node{ClusterID: r.ClusterID, NodeInfo: wire.NodeInfo{
		ID: r.NodeID, Name: r.Name, Arch: r.Arch, Virtualizations: r.Virtualizations,
		Capacity: wire.Resources(r.Capacity), Reserved: wire.Resources(r.Reserved), UsedPorts: r.UsedPorts,
		Address: r.Address, Active: r.Active, Capabilities: r.Capabilities, NotReady: r.NotReady, Labels: r.Labels, Location: r.Location,
	}}
	if r.Network != nil {
		n.Network = &wire.NodeNetwork{NodeID: r.NodeID, Subnet: r.Network.Subnet, VTEPMAC: r.Network.VTEPMAC,
			PublicIP: r.Network.PublicIP, PublicPort: r.Network.PublicPort, ProbePort: r.Network.ProbePort}
	}
	return n
}

// record turns a changed state object into its stored document.
func record(c state.Change) (any, error) {
	switch o := c.Object.(type) {
	case *state.Application:
		return toAppRecord(o), nil
	case *state.Service:
		return toServiceRecord(o), nil
	case *state.Instance:
		return toInstanceRecord(o), nil
	case *state.Cluster:
		return toClusterRecord(o), nil
	case *state.Node:
		return toNodeRecord(c.ID, o), nil
	case *state.IPReservation:
		return ipRecord{o.IP, o.ServiceID, o.Kind, o.CreatedAt}, nil
	case *state.Block:
		return blockRecord{o.Prefix, o.ClusterID, o.CreatedAt}, nil
	case *IdempotencyRecord:
		return o, nil
	}
	return nil, fmt.Errorf("store: no record for %T", c.Object)
}

// collection returns where objects of a kind are stored.
func (s *Store) collection(k state.Kind) *mongo.Collection {
	switch k {
	case state.KindApp:
		return s.apps
	case state.KindService:
		return s.services
	case state.KindInstance:
		return s.instances
	case state.KindCluster:
		return s.clusters
	case state.KindNode:
		return s.nodes
	case state.KindIP:
		return s.ips
	case state.KindBlock:
		return s.blocks
	case state.KindAnswer:
		return s.idem
	}
	return nil
}

// writeOrder: applications last of the model (their list is the commit
// point of new services; deleted ones go first, see Write), clusters before
// the nodes and blocks that name them; then the kept answers of the
// requests that made the changes (state.WriteAfter).
var writeOrder = []state.Kind{state.KindCluster, state.KindBlock, state.KindNode, state.KindService,
	state.KindIP, state.KindInstance, state.KindApp, state.KindAnswer}

// Write implements state.Backend: one bulk write per collection.
func (s *Store) Write(ctx context.Context, changes []state.Change) error {
	docs := map[state.Kind][]mongodb.Doc{}
	removed := map[state.Kind][]string{}
	for _, c := range changes {
		if c.Object == nil {
			removed[c.Kind] = append(removed[c.Kind], c.ID)
			continue
		}
		doc, err := record(c)
		if err != nil {
			return err
		}
		docs[c.Kind] = append(docs[c.Kind], mongodb.Doc{ID: c.ID, Doc: doc})
	}
	// Deleted applications go first: a crash before their services are
	// deleted leaves services no application lists, which the next load
	// drops; the other way round it left applications without services.
	if err := s.saver(state.KindApp).Save(ctx, nil, removed[state.KindApp], true); err != nil {
		return fmt.Errorf("write %ss: %w", state.KindApp, err)
	}
	delete(removed, state.KindApp)
	for _, k := range writeOrder {
		if err := s.saver(k).Save(ctx, docs[k], removed[k], true); err != nil {
			return fmt.Errorf("write %ss: %w", k, err)
		}
	}
	return nil
}

// saver returns the Saver of a kind's collection.
func (s *Store) saver(k state.Kind) *mongodb.Saver {
	s.saversMu.Lock()
	defer s.saversMu.Unlock()
	if s.savers == nil {
		s.savers = map[state.Kind]*mongodb.Saver{}
	}
	if s.savers[k] == nil {
		s.savers[k] = mongodb.NewSaver(s.collection(k))
	}
	return s.savers[k]
}

func loadAll[R interface{ model() *M }, M any](ctx context.Context, c *mongo.Collection, saver *mongodb.Saver) ([]*M, error) {
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", c.Name(), err)
	}
	defer cur.Close(ctx)
	var out []*M
	for cur.Next(ctx) {
		var r R
		if err := cur.Decode(&r); err != nil {
			return nil, fmt.Errorf("load %s: %w", c.Name(), err)
		}
		if id, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			saver.Stored(id) // written over, not inserted (see mongodb.Saver)
		}
		out = append(out, r.model())
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", c.Name(), err)
	}
	return out, nil
}

func (r ipRecord) model() *state.IPReservation {
	return &state.IPReservation{IP: r.IP, ServiceID: r.ServiceID, Kind: r.Kind, CreatedAt: r.CreatedAt}
}

func (r blockRecord) model() *state.Block {
	return &state.Block{Prefix: r.Block, ClusterID: r.ClusterID, CreatedAt: r.CreatedAt}
}

// Load implements state.Backend.
func (s *Store) Load(ctx context.Context) (*state.Data, error) {
	d := &state.Data{}
	var errs [7]error
	d.Apps, errs[0] = loadAll[appRecord](ctx, s.apps, s.saver(state.KindApp))
	d.Services, errs[1] = loadAll[serviceRecord](ctx, s.services, s.saver(state.KindService))
	d.Instances, errs[2] = loadAll[instanceRecord](ctx, s.instances, s.saver(state.KindInstance))
	d.Clusters, errs[3] = loadAll[clusterRecord](ctx, s.clusters, s.saver(state.KindCluster))
	d.Nodes, errs[4] = loadAll[nodeRecord](ctx, s.nodes, s.saver(state.KindNode))
	d.IPs, errs[5] = loadAll[ipRecord](ctx, s.ips, s.saver(state.KindIP))
	d.Blocks, errs[6] = loadAll[blockRecord](ctx, s.blocks, s.saver(state.KindBlock))
	return d, errors.Join(errs[:]...)
}

// legacyService is a service document of an earlier version, which held its
// instances.
type legacyService struct {
	ID           string `bson:"_id"`
	Owner        string `bson:"userId"`
	InstanceList []struct {
		Number          int       `bson:"instance_number"`
		Status          string    `bson:"status"`
		Detail          string    `bson:"status_detail"`
		ClusterID       string    `bson:"cluster_id"`
		ClusterLocation string    `bson:"cluster_location"`
		WorkerID        string    `bson:"worker_id"`
		HostIP          string    `bson:"host_ip"`
		HostPort        int       `bson:"host_port"`
		InstanceIP      string    `bson:"instance_ip"`
		NodeName        string    `bson:"node_name"`
		Restarts        int       `bson:"restarts"`
		CreatedAt       time.Time `bson:"created_at"`
		UpdatedAt       time.Time `bson:"updated_at"`
	} `bson:"instance_list"`
}

// migrate moves instances that earlier versions kept inside service
// documents into documents of their own, and drops the earlier node lists
// (clusters report their nodes again at their next sync).
func (s *Store) migrate(ctx context.Context) error {
	cur, err := s.services.Find(ctx, bson.M{"instance_list": bson.M{"$exists": true}})
	if err != nil {
		return fmt.Errorf("migrate instances: %w", err)
	}
	var old []legacyService
	if err := cur.All(ctx, &old); err != nil {
		return fmt.Errorf("migrate instances: %w", err)
	}
	for _, svc := range old {
		var models []mongo.WriteModel
		for _, in := range svc.InstanceList {
			r := instanceRecord{
				Key: wire.InstanceKey(svc.ID, in.Number), ServiceID: svc.ID, Number: in.Number, Owner: svc.Owner,
				Status: in.Status, Detail: in.Detail, ClusterID: in.ClusterID, ClusterLocation: in.ClusterLocation,
				NodeID: in.WorkerID, NodeName: in.NodeName, HostIP: in.HostIP, HostPort: in.HostPort,
				InstanceIP: in.InstanceIP, Restarts: in.Restarts, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
			}
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": r.Key}).SetReplacement(r).SetUpsert(true))
		}
		if err := mongodb.BulkWrite(ctx, s.instances, models, false); err != nil {
			return fmt.Errorf("migrate instances of service %s: %w", svc.ID, err)
		}
		if _, err := s.services.UpdateOne(ctx, bson.M{"_id": svc.ID},
			bson.M{"$unset": bson.M{"instance_list": "", "rev": "", "status": "", "status_detail": ""}}); err != nil {
			return fmt.Errorf("migrate service %s: %w", svc.ID, err)
		}
	}
	if len(old) > 0 {
		s.log.Info("moved instances into documents of their own", "services", len(old))
	}
	if err := s.db.Collection("cluster_nodes").Drop(ctx); err != nil {
		return fmt.Errorf("drop earlier node lists: %w", err)
	}
	return nil
}
