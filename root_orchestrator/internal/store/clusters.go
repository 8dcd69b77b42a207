package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrBadCredential is returned for an unknown join token or cluster
// credential.
var ErrBadCredential = errors.New("unknown or revoked credential")

// ClusterRecord is a stored cluster: the API document plus what only the
// root needs. The node lists (Nodes, NodeInfo) live in the cluster_nodes
// collection: at 2,000 nodes they weigh about a megabyte, and the cluster
// document is read and written on every sync (credential check, last
// seen), which with the embedded store rewrote that megabyte each time.
type ClusterRecord struct {
	api.Cluster    `bson:",inline"`
	CredentialHash string          `bson:"credential_hash"`
	NodeInfo       []wire.NodeInfo `bson:"-"`
	RegisteredAt   time.Time       `bson:"registered_at"`
}

// clusterNodes is a cluster's node list as last reported: what the
// schedulers and the overlay need, and the API's view of it.
type clusterNodes struct {
	ID       string          `bson:"_id"`
	NodeInfo []wire.NodeInfo `bson:"node_info"`
	Nodes    []api.Node      `bson:"nodes"`
}

// nodeLists returns the stored node lists by cluster id; projection limits
// the fields read (nil: all).
func (s *Store) nodeLists(ctx context.Context, projection bson.M) (map[string]clusterNodes, error) {
	opts := options.Find()
	if projection != nil {
		opts.SetProjection(projection)
	}
	cur, err := s.clusterNodes.Find(ctx, bson.M{}, opts)
	if err != nil {
		return nil, fmt.Errorf("list cluster nodes: %w", err)
	}
	var docs []clusterNodes
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list cluster nodes: %w", err)
	}
	out := make(map[string]clusterNodes, len(docs))
	for _, d := range docs {
		out[d.ID] = d
	}
	return out, nil
}

// moveNodeLists moves node lists that an earlier version kept in the
// cluster documents out of them; the next sync of each cluster stores them
// anew.
func (s *Store) moveNodeLists(ctx context.Context) error {
	_, err := s.clusters.UpdateMany(ctx, bson.M{"node_info": bson.M{"$exists": true}},
		bson.M{"$unset": bson.M{"node_info": ""}, "$set": bson.M{"nodes": []api.Node{}}})
	if err != nil {
		return fmt.Errorf("move node lists out of cluster documents: %w", err)
	}
	return nil
}

// JoinToken is a stored cluster join token (only its hash is kept).
type JoinToken struct {
	ID        string    `json:"id" bson:"_id"` // first 8 hex digits of the hash, to name it
	Hash      string    `json:"-" bson:"hash"`
	Name      string    `json:"name" bson:"name"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
}

func secretHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func randomSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// CreateJoinToken makes a new cluster join token and returns it; only its
// hash is stored, so it is shown this once.
func (s *Store) CreateJoinToken(ctx context.Context, name string) (string, *JoinToken, error) {
	tok, err := randomSecret()
	if err != nil {
		return "", nil, err
	}
	tok = "thj_" + tok
	h := secretHash(tok)
	jt := &JoinToken{ID: h[:8], Hash: h, Name: name, CreatedAt: s.now()}
	if _, err := s.joinTokens.InsertOne(ctx, jt); err != nil {
		return "", nil, fmt.Errorf("store join token: %w", err)
	}
	return tok, jt, nil
}

// ListJoinTokens lists the join tokens (without secrets).
func (s *Store) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	cur, err := s.joinTokens.Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	out := []JoinToken{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	return out, nil
}

// DeleteJoinToken revokes a join token. Clusters that joined with it keep
// their own credentials.
func (s *Store) DeleteJoinToken(ctx context.Context, id string) error {
	r, err := s.joinTokens.DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return fmt.Errorf("delete join token: %w", err)
	}
	if r.DeletedCount == 0 {
		return fmt.Errorf("join token %s: %w", id, ErrNotFound)
	}
	return nil
}

// CountJoinTokens says how many join tokens exist.
func (s *Store) CountJoinTokens(ctx context.Context) (int64, error) {
	return s.joinTokens.CountDocuments(ctx, bson.M{})
}

func (s *Store) checkJoinToken(ctx context.Context, tok string) error {
	if tok == "" {
		return ErrBadCredential
	}
	n, err := s.joinTokens.CountDocuments(ctx, bson.M{"hash": secretHash(tok)})
	if err != nil {
		return fmt.Errorf("check join token: %w", err)
	}
	if n == 0 {
		return ErrBadCredential
	}
	return nil
}

// RegisterCluster admits a cluster that shows a valid join token and
// returns its id and a new credential. A cluster registering again under
// its name keeps its id and gets a new credential (the old one stops
// working): that is how a cluster that lost its data dir rejoins.
func (s *Store) RegisterCluster(ctx context.Context, joinToken string, req wire.ClusterRegisterRequest) (string, string, error) {
	if err := s.checkJoinToken(ctx, joinToken); err != nil {
		return "", "", err
	}
	secret, err := randomSecret()
	if err != nil {
		return "", "", err
	}
	now := s.now()
	var existing ClusterRecord
	err = s.clusters.FindOne(ctx, bson.M{"cluster_name": req.Name}).Decode(&existing)
	id := existing.ID
	switch {
	case err == nil:
		_, err = s.clusters.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": bson.M{
			"credential_hash": secretHash(secret), "cluster_location": req.Location,
			"ip": req.Address, "port": req.Port, "registered_at": now,
		}})
	case errors.Is(err, mongo.ErrNoDocuments):
		id = NewID()
		rec := ClusterRecord{
			Cluster: api.Cluster{
				ID: id, ClusterName: req.Name, IP: req.Address, Port: req.Port,
				ClusterLocation: req.Location, Virtualization: []string{}, Nodes: []api.Node{},
			},
			CredentialHash: secretHash(secret),
			NodeInfo:       []wire.NodeInfo{},
			RegisteredAt:   now,
		}
		_, err = s.clusters.InsertOne(ctx, rec)
		if mongo.IsDuplicateKeyError(err) {
			return "", "", &ConflictError{Field: "cluster_name", Message: "cluster " + req.Name + " registered meanwhile; retry"}
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("register cluster %s: %w", req.Name, err)
	}
	return id, id + "." + secret, nil
}

// AuthenticateCluster returns the cluster a credential belongs to.
func (s *Store) AuthenticateCluster(ctx context.Context, credential string) (*ClusterRecord, error) {
	id, secret, ok := strings.Cut(credential, ".")
	if !ok || id == "" || secret == "" {
		return nil, ErrBadCredential
	}
	var c ClusterRecord
	if err := s.clusters.FindOne(ctx, bson.M{"_id": id}).Decode(&c); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, ErrBadCredential
		}
		return nil, fmt.Errorf("authenticate cluster: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(c.CredentialHash), []byte(secretHash(secret))) != 1 {
		return nil, ErrBadCredential
	}
	return &c, nil
}

// RecordClusterSync stores what a cluster reported of its nodes and marks it
// active. The reference's aggregate fields are derived from the nodes.
func (s *Store) RecordClusterSync(ctx context.Context, id string, nodes []wire.NodeInfo) error {
	if nodes == nil {
		nodes = []wire.NodeInfo{}
	}
	set, apiNodes := aggregate(nodes)
	doc := clusterNodes{ID: id, NodeInfo: nodes, Nodes: apiNodes}
	if _, err := s.clusterNodes.ReplaceOne(ctx, bson.M{"_id": id}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("record nodes of cluster %s: %w", id, err)
	}
	set["active"], set["last_seen"] = true, s.now()
	defer s.peers.drop()
	if _, err := s.clusters.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": set}); err != nil {
		return fmt.Errorf("record sync of cluster %s: %w", id, err)
	}
	return nil
}

// TouchCluster records a sync of an active cluster whose node list the
// root already holds (see RecordClusterSync).
func (s *Store) TouchCluster(ctx context.Context, id string) error {
	if _, err := s.clusters.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": bson.M{"active": true, "last_seen": s.now()}}); err != nil {
		return fmt.Errorf("record sync of cluster %s: %w", id, err)
	}
	return nil
}

// aggregate derives the API's per-cluster fields and node list.
func aggregate(nodes []wire.NodeInfo) (bson.M, []api.Node) {
	var cores, mem, gpus, active int
	var cpuPct, memPct float64
	virt := []string{}
	apiNodes := make([]api.Node, 0, len(nodes))
	for _, n := range nodes {
		apiNodes = append(apiNodes, api.Node{
			ID: n.ID, Name: n.Name, Arch: n.Arch,
			CPUCores: int(n.Capacity.MilliCPU / 1000), MemoryInMB: int(n.Capacity.MemoryMB), VGPUs: int(n.Capacity.VGPUs),
			CPUPercent: n.CPUPercent, MemoryPercent: n.MemoryPercent,
			Virtualization: n.Virtualizations, Active: n.Active,
		})
		if !n.Active {
			continue
		}
		active++
		cores += int(n.Capacity.MilliCPU / 1000)
		mem += int(n.Capacity.MemoryMB)
		gpus += int(n.Capacity.VGPUs)
		cpuPct += n.CPUPercent
		memPct += n.MemoryPercent
		for _, v := range n.Virtualizations {
			if !slices.Contains(virt, v) {
				virt = append(virt, v)
			}
		}
	}
	if active > 0 {
		cpuPct, memPct = cpuPct/float64(active), memPct/float64(active)
	}
	slices.Sort(virt)
	return bson.M{
		"active_nodes": active, "total_cpu_cores": cores, "vcpus": cores,
		"memory_in_mb": mem, "vgpus": gpus, "cpu_percent": round2(cpuPct), "memory_percent": round2(memPct),
		"virtualization": virt,
	}, apiNodes
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// ClusterRecords returns all clusters with their node details.
func (s *Store) ClusterRecords(ctx context.Context) ([]ClusterRecord, error) {
	cur, err := s.clusters.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	var out []ClusterRecord
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	lists, err := s.nodeLists(ctx, bson.M{"nodes": 0})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].NodeInfo = lists[out[i].ID].NodeInfo
	}
	return out, nil
}

// MarkClusterInactive marks a cluster inactive, unless a sync moved its
// last-seen time past lastSeen meanwhile (the judgement was on stale
// evidence); it reports whether it did.
func (s *Store) MarkClusterInactive(ctx context.Context, id string, lastSeen time.Time) (bool, error) {
	r, err := s.clusters.UpdateOne(ctx, bson.M{"_id": id, "active": true, "last_seen": lastSeen},
		bson.M{"$set": bson.M{"active": false, "active_nodes": 0}})
	if err != nil {
		return false, fmt.Errorf("mark cluster %s inactive: %w", id, err)
	}
	if r.ModifiedCount != 1 {
		return false, nil
	}
	s.peers.drop()
	return true, nil
}

// ListClusters returns the registered clusters, or only the active ones.
func (s *Store) ListClusters(ctx context.Context, activeOnly bool) ([]api.Cluster, error) {
	filter := bson.M{}
	if activeOnly {
		filter["active"] = true
	}
	cur, err := s.clusters.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "cluster_name", Value: 1}}).
		SetProjection(bson.M{"credential_hash": 0}))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	out := []api.Cluster{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	lists, err := s.nodeLists(ctx, bson.M{"node_info": 0})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if l, ok := lists[out[i].ID]; ok && l.Nodes != nil {
			out[i].Nodes = l.Nodes
		}
	}
	return out, nil
}
