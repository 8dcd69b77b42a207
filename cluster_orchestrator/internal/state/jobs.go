package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/thicket-edge/thicket/scheduler/jobs"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The job ledgers of the services with jobs (collaborative workloads): who
// may be running each job. A restarted manager that forgot them could give
// a job to a second instance while the first still runs it, so a ledger is
// written before the grants made from it are published.

// ledgerPrefix marks a ledger's document in the meta collection; it is
// stored as JSON (job names may hold '.' and '$', which MongoDB keys may
// not).
const ledgerPrefix = "jobs/"

type ledgerDoc struct {
	ID     string `bson:"_id"`
	Ledger []byte `bson:"ledger"`
}

// JobLedgers loads every service's ledger, by service id.
func (s *Store) JobLedgers(ctx context.Context) (map[string]jobs.Ledger, error) {
	cur, err := s.meta.Find(ctx, bson.M{"_id": bson.M{"$regex": "^" + ledgerPrefix}})
	if err != nil {
		return nil, fmt.Errorf("load job ledgers: %w", err)
	}
	var docs []ledgerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("load job ledgers: %w", err)
	}
	out := make(map[string]jobs.Ledger, len(docs))
	for _, d := range docs {
		var l jobs.Ledger
		if err := json.Unmarshal(d.Ledger, &l); err != nil {
			return nil, fmt.Errorf("load job ledger %s: %w", d.ID, err)
		}
		out[strings.TrimPrefix(d.ID, ledgerPrefix)] = l
	}
	return out, nil
}

// SaveJobLedger writes a service's ledger; nil deletes it.
func (s *Store) SaveJobLedger(ctx context.Context, serviceID string, l *jobs.Ledger) error {
	id := ledgerPrefix + serviceID
	if l == nil {
		if _, err := s.meta.DeleteOne(ctx, bson.M{"_id": id}); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("delete job ledger of %s: %w", serviceID, err)
		}
		return nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := s.meta.ReplaceOne(ctx, bson.M{"_id": id}, ledgerDoc{ID: id, Ledger: b}, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("save job ledger of %s: %w", serviceID, err)
	}
	return nil
}

// JobLedgers returns every stored ledger.
func (m *Memory) JobLedgers(context.Context) (map[string]jobs.Ledger, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]jobs.Ledger, len(m.ledgers))
	for k, b := range m.ledgers {
		var l jobs.Ledger
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, err
		}
		out[k] = l
	}
	return out, nil
}

// SaveJobLedger stores a ledger (as JSON, as Store does); nil deletes it.
func (m *Memory) SaveJobLedger(_ context.Context, serviceID string, l *jobs.Ledger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.SaveErr != nil {
		return m.SaveErr
	}
	if l == nil {
		delete(m.ledgers, serviceID)
		return nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if m.ledgers == nil {
		m.ledgers = map[string][]byte{}
	}
	m.ledgers[serviceID] = b
	return nil
}
