package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/mongodb"
)

// eventsRecord is the kept events of one instance (collection events):
// bounded by the root's events log (events.PerInstance each), and removed
// with the instance.
type eventsRecord struct {
	Key    string        `bson:"_id"`
	Events []eventRecord `bson:"events"`
}

type eventRecord struct {
	Time    time.Time `bson:"time"`
	Source  string    `bson:"source"`
	Message string    `bson:"message"`
}

// SaveEvents replaces the kept events of each instance of m, in bulk
// writes: a new instance's are inserted (the embedded engine looks an
// upsert's document up first), in commands of mongodb.BulkStatements (one
// command replacing about 100 kept documents hangs the embedded engine).
func (s *Store) SaveEvents(ctx context.Context, m map[string][]wire.Event) error {
	if len(m) == 0 {
		return nil
	}
	docs := make([]mongodb.Doc, 0, len(m))
	for key, evs := range m {
		r := eventsRecord{Key: key, Events: make([]eventRecord, len(evs))}
		for i, ev := range evs {
			r.Events[i] = eventRecord{Time: ev.Time.UTC(), Source: ev.Source, Message: ev.Message}
		}
		docs = append(docs, mongodb.Doc{ID: key, Doc: r})
	}
	if err := s.eventsSave.Save(ctx, docs, nil, false); err != nil {
		return fmt.Errorf("save events of %d instances: %w", len(m), err)
	}
	return nil
}

// DeleteEvents forgets the events of instances that are gone.
func (s *Store) DeleteEvents(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.events.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": keys}}); err != nil {
		return fmt.Errorf("delete events: %w", err)
	}
	return nil
}

// LoadEvents reads every instance's kept events, oldest first.
func (s *Store) LoadEvents(ctx context.Context) (map[string][]wire.Event, error) {
	cur, err := s.events.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	var rs []eventsRecord
	if err := cur.All(ctx, &rs); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	out := make(map[string][]wire.Event, len(rs))
	for _, r := range rs {
		s.eventsSave.Stored(r.Key) // replaced, not inserted, when saved again
		evs := make([]wire.Event, len(r.Events))
		for i, e := range r.Events {
			evs[i] = wire.Event{Key: r.Key, Time: e.Time.UTC(), Source: e.Source, Message: e.Message}
		}
		out[r.Key] = evs
	}
	return out, nil
}
