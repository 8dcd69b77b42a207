package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("not found")

// ErrBadCredential is returned for an unknown cluster credential.
var ErrBadCredential = errors.New("unknown or revoked credential")

// ConflictError says that a write would break a uniqueness rule. Field is
// the JSON path of the input field at fault, if known.
type ConflictError struct {
	Field   string
	Message string
}

func (e *ConflictError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Tables.
const (
	tApps      = "apps"
	tServices  = "services"
	tInstances = "instances"
	tClusters  = "clusters"
	tNodes     = "nodes"
	tIPs       = "ips"
	tBlocks    = "blocks"
	tTombs     = "tombstones"
)

func str(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }

func schema() *memdb.DBSchema {
	id := func(field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: str(field)}
	}
	by := func(name, field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: str(field)}
	}
	table := func(name string, idx ...*memdb.IndexSchema) *memdb.TableSchema {
		t := &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{}}
		for _, i := range idx {
			t.Indexes[i.Name] = i
		}
		return t
	}
	waiting := &memdb.IndexSchema{Name: "waiting", Indexer: &memdb.ConditionalIndex{
		Conditional: func(o any) (bool, error) { return o.(*Instance).Waiting(), nil },
	}}
	fresh := &memdb.IndexSchema{Name: "fresh", Indexer: &memdb.ConditionalIndex{
		Conditional: func(o any) (bool, error) { return o.(*Instance).fresh(), nil },
	}}
	tables := []*memdb.TableSchema{
		table(tApps, id("ID"), by("owner", "Owner")),
		table(tServices, id("ID"), by("app", "AppID"), by("owner", "Owner")),
		table(tInstances, id("Key"), by("service", "ServiceID"), by("cluster", "ClusterID"), by("owner", "Owner"), by("lostfrom", "LostFrom"), waiting, fresh),
		table(tClusters, id("ID"), &memdb.IndexSchema{Name: "name", Unique: true, Indexer: str("Name")}),
		table(tNodes, &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{
			Indexes: []memdb.Indexer{str("ClusterID"), str("ID")}}}, by("cluster", "ClusterID")),
		table(tIPs, id("IP"), by("service", "ServiceID")),
		table(tBlocks, id("Prefix"), by("cluster", "ClusterID")),
		table(tTombs, id("ID"), by("cluster", "ClusterID")),
	}
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, t := range tables {
		s.Tables[t.Name] = t
	}
	return s
}

// Kind names what a Change is about.
type Kind string

// Kinds of persisted objects.
const (
	KindApp      Kind = "application"
	KindService  Kind = "service"
	KindInstance Kind = "instance"
	KindCluster  Kind = "cluster"
	KindNode     Kind = "node"
	KindIP       Kind = "service_ip"
	KindBlock    Kind = "address_block"
	// KindAnswer is an idempotent request's kept answer, which the model
	// does not hold: written along with the state (WriteAfter).
	KindAnswer Kind = "idempotent_answer"
)

// Change is one object to write to the durable store: Object is the new
// version (a *Application, *Service, …), nil to delete the object with ID.
type Change struct {
	Kind   Kind
	ID     string
	Object any
	// lazy: a background change (see queued.lazy).
	lazy bool
	// after: written only with or after the waited-for changes queued
	// before it (WriteAfter).
	after bool
}

// Data is everything the durable store holds, loaded at start.
type Data struct {
	Apps      []*Application
	Services  []*Service
	Instances []*Instance
	Clusters  []*Cluster
	Nodes     []*Node
	IPs       []*IPReservation
	Blocks    []*Block
}

// Backend is the durable store under the state: MongoDB in thicket-root,
// memory in tests.
type Backend interface {
	// Load reads everything.
	Load(ctx context.Context) (*Data, error)
	// Write applies changes (the latest version of each object).
	Write(ctx context.Context, changes []Change) error
}

// Store is the root's state: in memory, consistent, indexed, and written
// behind to a Backend.
type Store struct {
	db    *memdb.MemDB
	be    Backend
	log   *slog.Logger
	now   func() time.Time
	plan  AddressPlan
	epoch string

	wmu   sync.Mutex // serialises writers
	index uint64     // of the last committed write (under wmu; read via Index)
	imu   sync.Mutex
	ich   chan struct{} // closed and replaced at every commit
	cur   uint64        // index as readers see it (under imu)
	// netIndex is the index of the last write that changed the overlay
	// (peers or service table); under imu.
	netIndex uint64
	// tombFloor is the lowest index from which deltas can be computed (older
	// tombstones were pruned); under imu.
	tombFloor uint64

	p persister
	// exhausted: clusters told that the instance network is full (under
	// wmu).
	exhausted map[string]bool
	// rejected: "cluster id/reason" of refused report parts logged (under
	// wmu).
	rejected map[string]bool
	// feed: what each commit changed, for live streams (feed.go).
	feed *changefeed.Feed
}

// Options of a store.
type Options struct {
	Log  *slog.Logger
	Plan AddressPlan // zero: DefaultAddressPlan
	// Now gives the wall-clock time of writes (tests).
	Now func() time.Time
}

// Open loads the state from the backend. Call Run to write changes behind.
func Open(ctx context.Context, be Backend, o Options) (*Store, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("state schema: %w", err)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	}
	if !o.Plan.Network.IsValid() {
		o.Plan = DefaultAddressPlan
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &Store{db: db, be: be, log: o.Log, now: o.Now, plan: o.Plan, epoch: hex.EncodeToString(b[:]),
		ich: make(chan struct{}), exhausted: map[string]bool{}, rejected: map[string]bool{},
		feed: changefeed.New(feedSize)}
	s.p.init()
	data, err := be.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if err := s.load(data); err != nil {
		return nil, err
	}
	return s, nil
}

// repair drops what a batch interrupted by a crash can leave behind:
// services that no application lists, and instances and service IPs of
// services that do not exist. It returns the deletions for the backend.
func repair(d *Data) []Change {
	var drop []Change
	listed := map[string]bool{}
	for _, a := range d.Apps {
		for _, id := range a.Services {
			listed[id] = true
		}
	}
	svcs := map[string]bool{}
	d.Services = slices.DeleteFunc(d.Services, func(s *Service) bool {
		if !listed[s.ID] {
			drop = append(drop, Change{Kind: KindService, ID: s.ID})
			return true
		}
		svcs[s.ID] = true
		return false
	})
	for _, a := range d.Apps {
		a.Services = slices.DeleteFunc(a.Services, func(id string) bool { return !svcs[id] })
	}
	d.Instances = slices.DeleteFunc(d.Instances, func(in *Instance) bool {
		if !svcs[in.ServiceID] {
			drop = append(drop, Change{Kind: KindInstance, ID: in.Key})
			return true
		}
		return false
	})
	d.IPs = slices.DeleteFunc(d.IPs, func(r *IPReservation) bool {
		if !svcs[r.ServiceID] {
			drop = append(drop, Change{Kind: KindIP, ID: r.IP})
			return true
		}
		return false
	})
	return drop
}

func (s *Store) load(d *Data) error {
	if drop := repair(d); len(drop) > 0 {
		s.log.Info("dropping the leftovers of an interrupted write", "objects", len(drop))
		for i := range drop {
			drop[i].lazy = true
		}
		s.p.queue(drop)
	}
	tx := s.db.Txn(true)
	defer tx.Abort()
	ins := func(table string, objs ...any) error {
		for _, o := range objs {
			if err := tx.Insert(table, o); err != nil {
				return fmt.Errorf("load %s: %w", table, err)
			}
		}
		return nil
	}
	var err error
	next := map[string]int{} // a service's instance counter, as its stored instances carry it
	for _, o := range d.Instances {
		next[o.ServiceID] = max(next[o.ServiceID], o.Number+1)
	}
	for _, o := range d.Apps {
		err = errors.Join(err, ins(tApps, o))
	}
	for _, o := range d.Services {
		o.NextInstance = max(o.NextInstance, next[o.ID])
		o.Spec.Ports = portsOf(o.Spec.Port)
		err = errors.Join(err, ins(tServices, o))
	}
	for _, o := range d.Instances {
		o.DesiredIndex = 1
		if o.Spec != nil {
			o.Spec.Ports = portsOf(o.Spec.Port)
		}
		err = errors.Join(err, ins(tInstances, o))
	}
	for _, o := range d.Clusters {
		err = errors.Join(err, ins(tClusters, o))
	}
	for _, o := range d.Nodes {
		err = errors.Join(err, ins(tNodes, o))
	}
	for _, o := range d.IPs {
		err = errors.Join(err, ins(tIPs, o))
	}
	for _, o := range d.Blocks {
		err = errors.Join(err, ins(tBlocks, o))
	}
	if err != nil {
		return err
	}
	tx.Commit()
	s.index, s.cur, s.netIndex, s.tombFloor = 1, 1, 1, 1
	return nil
}

// Epoch names this process's index sequence: generations handed out by
// another process (an earlier run) are not comparable with ours.
func (s *Store) Epoch() string { return s.epoch }

// Index is the index of the last committed write.
func (s *Store) Index() uint64 {
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.cur
}

// Changed returns the current index and a channel closed at the next commit.
func (s *Store) Changed() (uint64, <-chan struct{}) {
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.cur, s.ich
}

// Snapshot is a consistent read-only view of the state.
type Snapshot struct {
	tx       *memdb.Txn
	index    uint64
	netIndex uint64
	floor    uint64
}

// Snapshot returns a view of the state as of now; it never changes.
func (s *Store) Snapshot() *Snapshot {
	s.imu.Lock()
	defer s.imu.Unlock()
	return &Snapshot{tx: s.db.Txn(false), index: s.cur, netIndex: s.netIndex, floor: s.tombFloor}
}

// Index of the last write the snapshot includes.
func (sn *Snapshot) Index() uint64 { return sn.index }

// Txn is a write in progress: reads see its own changes.
type Txn struct {
	s       *Store
	tx      *memdb.Txn
	index   uint64
	now     time.Time
	changes []Change
	net     bool // the overlay (peers, service table) changed
	mem     bool // something changed in memory
	// lazy: nobody waits for this write to be stored (see queued.lazy).
	lazy  bool
	floor uint64
	// touched: what this write changed, for the feed (feed.go).
	touched []changefeed.Change
}

// Write runs fn in a write transaction: all of it commits or none. It
// returns a ticket that Durable waits on. Writers are serialised.
func (s *Store) Write(fn func(*Txn) error) (Ticket, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := &Txn{s: s, tx: s.db.Txn(true), index: s.index + 1, now: s.now()}
	if err := fn(t); err != nil {
		t.tx.Abort()
		return Ticket{}, err
	}
	if !t.mem {
		t.tx.Abort()
		return Ticket{}, nil
	}
	t.tx.Commit()
	s.index = t.index
	ticket := s.p.queue(t.changes)
	s.imu.Lock()
	s.cur = t.index
	if t.net {
		s.netIndex = t.index
	}
	s.tombFloor = max(s.tombFloor, t.floor)
	close(s.ich)
	s.ich = make(chan struct{})
	s.imu.Unlock()
	s.feed.Publish(t.index, t.touched...)
	return ticket, nil
}

// Now is the wall-clock time of this write.
func (t *Txn) Now() time.Time { return t.now }

// Index this write commits at.
func (t *Txn) Index() uint64 { return t.index }

// reader is what snapshots and writes share for reading.
type reader interface {
	First(table, index string, args ...any) (any, error)
	Get(table, index string, args ...any) (memdb.ResultIterator, error)
}

func (sn *Snapshot) r() reader { return sn.tx }
func (t *Txn) r() reader       { return t.tx }

func first[T any](r reader, table, index string, args ...any) *T {
	o, err := r.First(table, index, args...)
	if err != nil || o == nil {
		return nil
	}
	return o.(*T)
}

func all[T any](r reader, table, index string, args ...any) []*T {
	it, err := r.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []*T
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, o.(*T))
	}
	return out
}

// put stores an object in memory and, when persist is set, queues it for
// the backend.
func (t *Txn) put(table string, kind Kind, id string, o any, persist bool) {
	if err := t.tx.Insert(table, o); err != nil {
		panic(fmt.Sprintf("state: insert into %s: %v", table, err)) // a schema bug
	}
	t.mem = true
	t.touch(kind, id, o, !persist)
	if persist {
		t.changes = append(t.changes, Change{Kind: kind, ID: id, Object: o, lazy: t.lazy})
	}
}

// putNow is put of a change that is written as soon as possible even in a
// background write: where an instance runs must survive a restart of the
// root, or the restarted root shows it where it ran before.
func (t *Txn) putNow(table string, kind Kind, id string, o any) {
	t.put(table, kind, id, o, true)
	t.changes[len(t.changes)-1].lazy = false
}

func (t *Txn) del(table string, kind Kind, id string, o any) {
	if err := t.tx.Delete(table, o); err != nil && !errors.Is(err, memdb.ErrNotFound) {
		panic(fmt.Sprintf("state: delete from %s: %v", table, err))
	}
	t.mem = true
	t.touch(kind, id, o, false)
	if kind != "" {
		t.changes = append(t.changes, Change{Kind: kind, ID: id, lazy: t.lazy})
	}
}
