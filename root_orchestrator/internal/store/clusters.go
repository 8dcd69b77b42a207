package store

import (
	"context"
	"fmt"

	"github.com/thicket-edge/thicket/contract/api"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ListClusters returns the registered clusters, or only the active ones.
// Clusters register themselves (cluster issue); until then the list is empty.
func (s *Store) ListClusters(ctx context.Context, activeOnly bool) ([]api.Cluster, error) {
	filter := bson.M{}
	if activeOnly {
		filter["active"] = true
	}
	cur, err := s.clusters.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "cluster_name", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	out := []api.Cluster{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out, nil
}
