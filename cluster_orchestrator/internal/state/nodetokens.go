package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The node tokens the root issued for the cluster are one document of the
// meta collection; each use of a single-use token is a document of its
// own, whose _id makes a second use fail to insert.
const (
	nodeTokensDoc  = "node_tokens"
	nodeTokenUseID = "node_token_use/"
)

type nodeTokensRecord struct {
	Tokens []wire.NodeToken `bson:"tokens"`
}

type nodeTokenUseRecord struct {
	ID  string            `bson:"_id"`
	Use wire.NodeTokenUse `bson:"use"`
}

// LoadNodeTokens returns the root's last list of node tokens and the uses
// of single-use ones this cluster recorded.
func (s *Store) LoadNodeTokens(ctx context.Context) ([]wire.NodeToken, []wire.NodeTokenUse, error) {
	var rec nodeTokensRecord
	err := s.meta.FindOne(ctx, bson.M{"_id": nodeTokensDoc}).Decode(&rec)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil, fmt.Errorf("load node tokens: %w", err)
	}
	cur, err := s.meta.Find(ctx, bson.M{"_id": bson.M{"$gte": nodeTokenUseID, "$lt": nodeTokenUseID + "\uffff"}})
	if err != nil {
		return nil, nil, fmt.Errorf("load node token uses: %w", err)
	}
	var uses []nodeTokenUseRecord
	if err := cur.All(ctx, &uses); err != nil {
		return nil, nil, fmt.Errorf("load node token uses: %w", err)
	}
	out := make([]wire.NodeTokenUse, 0, len(uses))
	for _, u := range uses {
		if strings.HasPrefix(u.ID, nodeTokenUseID) {
			out = append(out, u.Use)
		}
	}
	return rec.Tokens, out, nil
}

// SaveNodeTokens stores the root's list of node tokens.
func (s *Store) SaveNodeTokens(ctx context.Context, list []wire.NodeToken) error {
	_, err := s.meta.ReplaceOne(ctx, bson.M{"_id": nodeTokensDoc}, bson.M{"_id": nodeTokensDoc, "tokens": list},
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save node tokens: %w", err)
	}
	return nil
}

// RecordNodeTokenUse records the use of a single-use node token: false if
// it was used already.
func (s *Store) RecordNodeTokenUse(ctx context.Context, u wire.NodeTokenUse) (bool, error) {
	_, err := s.meta.InsertOne(ctx, nodeTokenUseRecord{ID: nodeTokenUseID + u.ID, Use: u})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record node token use: %w", err)
	}
	return true, nil
}

// ForgetNodeTokenUse gives a single-use token back (the registration it
// was spent on failed).
func (s *Store) ForgetNodeTokenUse(ctx context.Context, id string) error {
	if _, err := s.meta.DeleteOne(ctx, bson.M{"_id": nodeTokenUseID + id}); err != nil {
		return fmt.Errorf("forget node token use: %w", err)
	}
	return nil
}
