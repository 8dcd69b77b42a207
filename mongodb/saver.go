package mongodb

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Doc is a document to save under its _id.
type Doc struct {
	ID  string
	Doc any
}

// Saver writes whole documents by _id to one collection. It remembers
// which documents the collection holds, so that a new one is inserted
// rather than upserted: the embedded engine looks an upsert's document up
// first, which made upserts most of a busy cluster manager's CPU. Its user
// tells it (Stored) what it loaded. A document it did not know of (written
// by another process) makes the insert fail; the write is then done again
// with upserts, and it learns.
type Saver struct {
	c     *mongo.Collection
	mu    sync.Mutex
	known map[string]bool
}

// NewSaver returns a Saver for c that knows no document yet.
func NewSaver(c *mongo.Collection) *Saver {
	return &Saver{c: c, known: map[string]bool{}}
}

// Stored tells the Saver that these documents exist (loaded at start).
func (s *Saver) Stored(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.known[id] = true
	}
}

// Save writes docs and deletes the documents remove names, with BulkWrite.
func (s *Saver) Save(ctx context.Context, docs []Doc, remove []string, ordered bool) error {
	if len(docs)+len(remove) == 0 {
		return nil
	}
	s.mu.Lock()
	models := s.models(docs, remove, false)
	s.mu.Unlock()
	err := BulkWrite(ctx, s.c, models, ordered)
	if mongo.IsDuplicateKeyError(err) {
		err = BulkWrite(ctx, s.c, s.models(docs, remove, true), ordered)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		clear(s.known) // some landed, some not: upserts until they are learnt again
		return err
	}
	for _, d := range docs {
		s.known[d.ID] = true
	}
	for _, id := range remove {
		delete(s.known, id)
	}
	return nil
}

// models are the statements of a Save: inserts for unknown documents
// (unless upsert is set), replacements with upsert for the others.
// Caller holds mu unless upsert is set.
func (s *Saver) models(docs []Doc, remove []string, upsert bool) []mongo.WriteModel {
	out := make([]mongo.WriteModel, 0, len(docs)+len(remove))
	for _, d := range docs {
		if !upsert && !s.known[d.ID] {
			out = append(out, mongo.NewInsertOneModel().SetDocument(d.Doc))
		} else {
			out = append(out, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": d.ID}).SetReplacement(d.Doc).SetUpsert(true))
		}
	}
	for _, id := range remove {
		out = append(out, mongo.NewDeleteOneModel().SetFilter(bson.M{"_id": id}))
	}
	return out
}

// Group saves documents given one at a time by concurrent callers in
// batches: while one batch is written, the next gathers, and each caller
// returns when its document is written. Many small writes then cost the
// store few round trips (group commit).
type Group struct {
	s       *Saver
	mu      sync.Mutex
	pending []Doc
	waiters []chan error
	writing bool
}

// NewGroup returns a Group writing through s.
func NewGroup(s *Saver) *Group { return &Group{s: s} }

// Save writes d with the next batch and waits for it (or ctx).
func (g *Group) Save(ctx context.Context, d Doc) error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.pending = append(g.pending, d)
	g.waiters = append(g.waiters, done)
	if !g.writing {
		g.writing = true
		go g.write()
	}
	g.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// groupTimeout bounds one batch's write.
const groupTimeout = 30 * time.Second

func (g *Group) write() {
	for {
		g.mu.Lock()
		docs, waiters := g.pending, g.waiters
		g.pending, g.waiters = nil, nil
		if len(docs) == 0 {
			g.writing = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		err := g.s.Save(ctx, docs, nil, false)
		cancel()
		for _, w := range waiters {
			w <- err
		}
	}
}
