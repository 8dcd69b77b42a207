package store

import (
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// nodeTokenRecord is a node join token as stored with its cluster (only
// the hash of its secret).
type nodeTokenRecord struct {
	ID        string     `bson:"id"`
	Hash      string     `bson:"hash"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
	SingleUse bool       `bson:"single_use,omitempty"`
	NodeName  string     `bson:"node_name,omitempty"`
	UsedAt    *time.Time `bson:"used_at,omitempty"`
	UsedBy    string     `bson:"used_by,omitempty"`
}

func toNodeTokenRecords(ts []state.NodeToken) []nodeTokenRecord {
	if len(ts) == 0 {
		return nil
	}
	out := make([]nodeTokenRecord, len(ts))
	for i, t := range ts {
		out[i] = nodeTokenRecord(t)
	}
	return out
}

func nodeTokenModels(rs []nodeTokenRecord) []state.NodeToken {
	if len(rs) == 0 {
		return nil
	}
	out := make([]state.NodeToken, len(rs))
	for i, r := range rs {
		out[i] = state.NodeToken(r)
	}
	return out
}
