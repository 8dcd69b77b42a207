// Package store keeps the root's state in MongoDB: users, the token signing
// key, applications, services with their instances, and the service IPs in
// use.
//
// MongoDB and the embedded FerretDB share only single-document atomicity, so
// multi-document writes are ordered around a commit point: services and their
// service-IP reservations are written first, and the application document
// that lists them is written (or updated) last. A failure before the commit
// point is rolled back at once; a crash before it leaves only orphans that
// no application lists, which the collector removes. Deletions run the other
// way round: the application's reference goes first.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("not found")

// ConflictError says that a write would break a uniqueness rule. Field is the
// JSON path of the input field at fault, if known.
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

// Store is the root's persistent state.
type Store struct {
	apps         *mongo.Collection
	services     *mongo.Collection
	ips          *mongo.Collection
	users        *mongo.Collection
	secrets      *mongo.Collection
	clusters     *mongo.Collection
	clusterNodes *mongo.Collection // per cluster its node list (kept out of the small, often-read cluster document)
	joinTokens   *mongo.Collection
	blocks       *mongo.Collection
	plan         AddressPlan
	// Read by every cluster sync and watch: the service table (for 300 ms)
	// and the overlay peers (for 1 s, dropped when a node list is written).
	serviceTable brief[[]wire.ServiceRoute]
	peers        brief[[]wire.NodeNetwork]
	log          *slog.Logger
	now          func() time.Time
}

// New returns a store over a database. Call EnsureIndexes once before use.
func New(db *mongo.Database, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{
		apps:         db.Collection("applications"),
		services:     db.Collection("services"),
		ips:          db.Collection("service_ips"),
		users:        db.Collection("users"),
		secrets:      db.Collection("secrets"),
		clusters:     db.Collection("clusters"),
		clusterNodes: db.Collection("cluster_nodes"),
		joinTokens:   db.Collection("join_tokens"),
		blocks:       db.Collection("address_blocks"),
		plan:         DefaultAddressPlan,
		log:          log,
		now:          func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
	}
}

// SetAddressPlan changes how the instance network is split among clusters
// (before any cluster registered).
func (s *Store) SetAddressPlan(p AddressPlan) { s.plan = p }

// EnsureIndexes creates the indexes the store relies on and brings data
// stored by earlier versions into the current layout.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	idx := []struct {
		c *mongo.Collection
		m mongo.IndexModel
	}{
		{s.apps, mongo.IndexModel{
			Keys:    bson.D{{Key: "userId", Value: 1}, {Key: "application_name", Value: 1}, {Key: "application_namespace", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("owner_name_ns"),
		}},
		{s.services, mongo.IndexModel{Keys: bson.D{{Key: "applicationID", Value: 1}}, Options: options.Index().SetName("app")}},
		{s.services, mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}}, Options: options.Index().SetName("owner")}},
		{s.ips, mongo.IndexModel{Keys: bson.D{{Key: "service_id", Value: 1}}, Options: options.Index().SetName("service")}},
		{s.clusters, mongo.IndexModel{Keys: bson.D{{Key: "cluster_name", Value: 1}}, Options: options.Index().SetUnique(true).SetName("name")}},
		{s.blocks, mongo.IndexModel{Keys: bson.D{{Key: "cluster_id", Value: 1}}, Options: options.Index().SetName("cluster")}},
		{s.joinTokens, mongo.IndexModel{Keys: bson.D{{Key: "hash", Value: 1}}, Options: options.Index().SetUnique(true).SetName("hash")}},
		{s.services, mongo.IndexModel{Keys: bson.D{{Key: "instance_list.cluster_id", Value: 1}}, Options: options.Index().SetName("instance_cluster")}},
	}
	for _, i := range idx {
		if _, err := i.c.Indexes().CreateOne(ctx, i.m); err != nil {
			return fmt.Errorf("create index on %s: %w", i.c.Name(), err)
		}
	}
	return s.moveNodeLists(ctx)
}

func notFound(err error) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	return err
}
