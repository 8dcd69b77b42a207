package mongodb

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type saved struct {
	ID string `bson:"_id"`
	V  int    `bson:"v"`
}

// TestSaver: new documents are inserted, known ones replaced, removed ones
// deleted; a Saver that did not know of existing documents (another
// process wrote them) still writes them, ordered or not, and one that
// loaded the ids writes over them directly.
func TestSaver(t *testing.T) {
	ctx := context.Background()
	conn := openEmbedded(t)
	c := conn.Client.Database("t").Collection("docs")
	docs := func(v int, ids ...string) []Doc {
		out := make([]Doc, len(ids))
		for i, id := range ids {
			out[i] = Doc{ID: id, Doc: saved{id, v}}
		}
		return out
	}
	stored := func() map[string]int {
		t.Helper()
		cur, err := c.Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var all []saved
		if err := cur.All(ctx, &all); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, d := range all {
			out[d.ID] = d.V
		}
		return out
	}

	s := NewSaver(c)
	if err := s.Save(ctx, docs(1, "a", "b", "c"), nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, docs(2, "a", "d"), []string{"b"}, true); err != nil {
		t.Fatal(err)
	}
	if got := stored(); len(got) != 3 || got["a"] != 2 || got["c"] != 1 || got["d"] != 2 {
		t.Fatalf("after two saves: %v", got)
	}
	for _, ordered := range []bool{true, false} {
		other := NewSaver(c) // knows nothing: its inserts meet a and c
		if err := other.Save(ctx, docs(3, "e", "a", "c"), nil, ordered); err != nil {
			t.Fatalf("ordered=%v: save over documents it did not know: %v", ordered, err)
		}
		if got := stored(); len(got) != 4 || got["a"] != 3 || got["c"] != 3 || got["e"] != 3 {
			t.Fatalf("ordered=%v: after the other saver: %v", ordered, got)
		}
	}
	loaded := NewSaver(c) // told what its user loaded
	for id := range stored() {
		loaded.Stored(id)
	}
	if err := loaded.Save(ctx, docs(4, "a", "d"), []string{"e"}, true); err != nil {
		t.Fatal(err)
	}
	if got := stored(); len(got) != 3 || got["a"] != 4 || got["d"] != 4 {
		t.Fatalf("after the loaded saver: %v", got)
	}
}

// TestGroup: documents saved by many concurrent callers are all written
// and each caller returns once its own is;
// and a document written by another process is replaced, not refused.
func TestGroup(t *testing.T) {
	ctx := context.Background()
	conn := openEmbedded(t)
	c := conn.Client.Database("t").Collection("docs")
	if _, err := c.InsertOne(ctx, saved{"d7", -1}); err != nil {
		t.Fatal(err)
	}
	g := NewGroup(NewSaver(c))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("d%d", i)
			if err := g.Save(ctx, Doc{ID: id, Doc: saved{id, i}}); err != nil {
				errs <- err
				return
			}
			// Written when Save returns.
			var got saved
			if err := c.FindOne(ctx, bson.M{"_id": id}).Decode(&got); err != nil || got.V != i {
				errs <- fmt.Errorf("%s after Save: %+v, %v", id, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := c.CountDocuments(ctx, bson.M{}); err != nil || n != 64 {
		t.Errorf("%d documents stored (%v), want 64", n, err)
	}

	// A cancelled caller returns at once with its context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.Save(cctx, Doc{ID: "late", Doc: saved{"late", 1}}); err == nil {
		t.Error("Save with a cancelled context returned no error")
	}
}

// openEmbedded starts an embedded store for one test, closed at its end.
func openEmbedded(t *testing.T) *Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := Open(ctx, Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}
