// Package store is the root's MongoDB: users, login sessions, the token
// signing keys and join tokens directly, and the durable copy of the root's
// state (package state) as the state's Backend. The storage schema (the record types here) is the
// store's own: neither the REST documents nor the tier protocol.
//
// MongoDB and the embedded FerretDB share only single-document atomicity.
// The state writes changes in batches (see state.Store.Run); a batch is
// written collection by collection, applications last, so a crash in the
// middle of one leaves at most services, instances or service IPs that no
// application lists: the state drops those when it loads (state.Open).
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/mongodb"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = state.ErrNotFound

// ConflictError says that a write would break a uniqueness rule.
type ConflictError = state.ConflictError

// Store is the root's MongoDB.
type Store struct {
	apps       *mongo.Collection
	services   *mongo.Collection
	instances  *mongo.Collection
	ips        *mongo.Collection
	users      *mongo.Collection
	secrets    *mongo.Collection
	clusters   *mongo.Collection
	nodes      *mongo.Collection
	joinTokens *mongo.Collection
	blocks     *mongo.Collection
	leases     *mongo.Collection
	sessions   *mongo.Collection
	idem       *mongo.Collection // idempotency keys (idempotency.go)
	idemSave   *mongodb.Group    // their writes, batched
	events     *mongo.Collection // instances' events (events.go)
	eventsSave *mongodb.Saver    // their writes
	// savers write the state layer's objects, one per kind (statedb.go).
	saversMu sync.Mutex
	savers   map[state.Kind]*mongodb.Saver
	db       *mongo.Database
	log      *slog.Logger
	now      func() time.Time
}

// New returns a store over a database. Call EnsureIndexes once before use.
func New(db *mongo.Database, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	idem := db.Collection("idempotency_keys")
	return &Store{
		apps:       db.Collection("applications"),
		services:   db.Collection("services"),
		instances:  db.Collection("instances"),
		ips:        db.Collection("service_ips"),
		users:      db.Collection("users"),
		secrets:    db.Collection("secrets"),
		clusters:   db.Collection("clusters"),
		nodes:      db.Collection("nodes"),
		joinTokens: db.Collection("join_tokens"),
		blocks:     db.Collection("address_blocks"),
		leases:     db.Collection("leases"),
		sessions:   db.Collection("sessions"),
		idem:       idem,
		idemSave:   mongodb.NewGroup(mongodb.NewSaver(idem)),
		events:     db.Collection("events"),
		eventsSave: mongodb.NewSaver(db.Collection("events")),
		db:         db,
		log:        log,
		now:        func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
	}
}

// EnsureIndexes creates the indexes the store relies on and brings data
// stored by earlier versions into the current layout.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	idx := []struct {
		c *mongo.Collection
		m mongo.IndexModel
	}{
		{s.joinTokens, mongo.IndexModel{Keys: bson.D{{Key: "hash", Value: 1}}, Options: options.Index().SetUnique(true).SetName("hash")}},
		{s.sessions, mongo.IndexModel{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetName("expires_at")}},
		{s.idem, mongo.IndexModel{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetName("expires_at")}},
	}
	for _, i := range idx {
		if _, err := i.c.Indexes().CreateOne(ctx, i.m); err != nil {
			return fmt.Errorf("create index on %s: %w", i.c.Name(), err)
		}
	}
	return s.migrate(ctx)
}

// Collections names every collection of the store.
func (s *Store) Collections() []string {
	var out []string
	for _, c := range []*mongo.Collection{s.apps, s.services, s.instances, s.ips, s.users, s.secrets,
		s.clusters, s.nodes, s.joinTokens, s.blocks, s.leases, s.sessions, s.idem, s.events} {
		out = append(out, c.Name())
	}
	out = append(out, componentDefsCollection)
	return out
}

func notFound(err error) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	return err
}
