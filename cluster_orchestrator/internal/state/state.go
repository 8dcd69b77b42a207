// Package state persists the cluster manager's state in MongoDB (embedded
// FerretDB by default): registered nodes, the instances the cluster should
// run with their placement and last status, and the cluster's own identity
// at the root. A restarted cluster manager resumes from it without the root.
package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/mongodb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Node is a registered worker node.
type Node struct {
	ID           string        `bson:"_id"`
	Name         string        `bson:"name"`
	PasswordHash string        `bson:"password_hash"` // sha256 of its random MQTT password
	Info         wire.NodeInfo `bson:"info"`
	RegisteredAt time.Time     `bson:"registered_at"`
	// Subnet is the node's instance subnet, from the cluster's block.
	Subnet string `bson:"subnet"`
	// CertBound: the node registered with a certificate request; it must
	// present its client certificate (MQTT, node API) from then on.
	CertBound bool `bson:"cert_bound,omitempty"`
}

// Instance is an instance the cluster should run: the root's spec, the node
// it is placed on ("" when unplaced) and its last known status.
type Instance struct {
	Key    string              `bson:"_id"`
	Spec   wire.InstanceSpec   `bson:"spec"`
	NodeID string              `bson:"node_id"`
	Status wire.InstanceStatus `bson:"status"`
	// UnknownSince is when the instance's node was declared lost (its
	// status UNKNOWN since).
	UnknownSince time.Time `bson:"unknown_since,omitempty"`
	// LostFrom is the lost node whose copy may still run while a
	// replacement is sought; which copy survives is decided when it
	// reports again.
	LostFrom string `bson:"lost_from,omitempty"`
	// DrainFrom is the drained node whose copy keeps running while the
	// instance moves to NodeID, until the new copy runs (its status,
	// until then, is the old copy's).
	DrainFrom string `bson:"drain_from,omitempty"`
	// Impl names the implementation chosen for the instance when its spec
	// has several (wire.InstanceSpec.Implementations); the node runs that
	// one.
	Impl string `bson:"impl,omitempty"`
}

// Running is the spec the instance's node runs: the chosen implementation
// alone when the spec has several.
func (in *Instance) Running() wire.InstanceSpec {
	if len(in.Spec.Implementations) == 0 {
		return in.Spec
	}
	return in.Spec.Implement(in.Spec.ImplementationIndex(in.Impl))
}

// Identity is the cluster's registration at the root.
type Identity struct {
	ClusterID  string `bson:"cluster_id"`
	Credential string `bson:"credential"`
	RootURL    string `bson:"root_url"`
	// RootPin is the pin of the root's CA the cluster registered with
	// (empty over plain HTTP): later starts verify the root against it.
	RootPin string `bson:"root_pin,omitempty"`
	// Block is the cluster's first share of the instance network, Blocks
	// all of them.
	Block  string   `bson:"block"`
	Blocks []string `bson:"blocks,omitempty"`
}

// AllBlocks returns the identity's blocks (identities saved by earlier
// versions name one).
func (id *Identity) AllBlocks() []string {
	if len(id.Blocks) > 0 {
		return id.Blocks
	}
	if id.Block != "" {
		return []string{id.Block}
	}
	return nil
}

// Store is the persistent state.
type Store struct {
	nodes     *mongo.Collection
	instances *mongo.Collection
	meta      *mongo.Collection
	saver     *mongodb.Saver // of instances
}

// Collections names the store's collections.
var Collections = []string{"nodes", "instances", "meta"}

// New returns a store over a database and creates its indexes.
func New(ctx context.Context, db *mongo.Database) (*Store, error) {
	s := &Store{nodes: db.Collection(Collections[0]), instances: db.Collection(Collections[1]), meta: db.Collection(Collections[2])}
	s.saver = mongodb.NewSaver(s.instances)
	if _, err := s.nodes.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "name", Value: 1}}, Options: options.Index().SetUnique(true).SetName("name"),
	}); err != nil {
		return nil, fmt.Errorf("create node index: %w", err)
	}
	return s, nil
}

// Nodes loads every registered node.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	cur, err := s.nodes.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	var out []Node
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	return out, nil
}

// SaveNode writes a node.
func (s *Store) SaveNode(ctx context.Context, n Node) error {
	_, err := s.nodes.ReplaceOne(ctx, bson.M{"_id": n.ID}, n, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save node %s: %w", n.Name, err)
	}
	return nil
}

// DeleteNode forgets a node (an admin deleted it).
func (s *Store) DeleteNode(ctx context.Context, id string) error {
	if _, err := s.nodes.DeleteOne(ctx, bson.M{"_id": id}); err != nil {
		return fmt.Errorf("delete node %s: %w", id, err)
	}
	return nil
}

// Instances loads every instance.
func (s *Store) Instances(ctx context.Context) ([]Instance, error) {
	cur, err := s.instances.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	var out []Instance
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	for _, in := range out {
		s.saver.Stored(in.Key) // written over, not inserted
	}
	return out, nil
}

// WriteInstances saves changed instances and deletes removed ones in one
// round trip.
func (s *Store) WriteInstances(ctx context.Context, save []Instance, remove []string) error {
	docs := make([]mongodb.Doc, len(save))
	for i, in := range save {
		docs[i] = mongodb.Doc{ID: in.Key, Doc: in}
	}
	if err := s.saver.Save(ctx, docs, remove, false); err != nil {
		return fmt.Errorf("write instances: %w", err)
	}
	return nil
}

// Identity returns the cluster's registration, or nil if it has none.
func (s *Store) Identity(ctx context.Context) (*Identity, error) {
	var id Identity
	err := s.meta.FindOne(ctx, bson.M{"_id": "identity"}).Decode(&id)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	return &id, nil
}

// SaveIdentity stores the cluster's registration.
func (s *Store) SaveIdentity(ctx context.Context, id Identity) error {
	_, err := s.meta.ReplaceOne(ctx, bson.M{"_id": "identity"}, bson.M{
		"_id": "identity", "cluster_id": id.ClusterID, "credential": id.Credential, "root_url": id.RootURL, "root_pin": id.RootPin, "block": id.Block, "blocks": id.Blocks,
	}, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}
