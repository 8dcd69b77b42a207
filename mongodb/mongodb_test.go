package mongodb

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestEmbeddedUpdatesAreAtomic runs concurrent compare-and-set updates on
// one document of the embedded store: every update that reports a match
// must be persisted. Thicket's stores build their multi-step writes on this.
func TestEmbeddedUpdatesAreAtomic(t *testing.T) {
	ctx := context.Background()
	conn, err := Open(ctx, Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if !conn.Embedded {
		t.Fatal("expected the embedded engine")
	}
	col := conn.Client.Database("test").Collection("cas")
	if _, err := col.InsertOne(ctx, bson.M{"_id": "doc", "rev": int64(0), "list": bson.A{}}); err != nil {
		t.Fatal(err)
	}
	var matched atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var d struct {
					Rev int64 `bson:"rev"`
				}
				if err := col.FindOne(ctx, bson.M{"_id": "doc"}).Decode(&d); err != nil {
					t.Error(err)
					return
				}
				r, err := col.UpdateOne(ctx, bson.M{"_id": "doc", "rev": d.Rev},
					bson.M{"$inc": bson.M{"rev": 1}, "$push": bson.M{"list": g*1000 + i}})
				if err != nil {
					t.Error(err)
					return
				}
				matched.Add(r.MatchedCount)
			}
		}()
	}
	wg.Wait()
	var d struct {
		Rev  int64 `bson:"rev"`
		List []int `bson:"list"`
	}
	if err := col.FindOne(ctx, bson.M{"_id": "doc"}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Rev != matched.Load() || int64(len(d.List)) != matched.Load() {
		t.Errorf("%d updates matched but rev is %d and the list holds %d: updates were lost", matched.Load(), d.Rev, len(d.List))
	}
}

// TestEmbeddedStopIsQuiet: stopping a daemon with the embedded store logs
// no warnings (FerretDB does not know the driver's endSessions and used to
// log the exchange on every stop).
func TestEmbeddedStopIsQuiet(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn, err := Open(ctx, Options{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	col := conn.Client.Database("test").Collection("quiet")
	if _, err := col.InsertOne(ctx, bson.M{"_id": "doc"}); err != nil {
		t.Fatal(err)
	}
	if err := col.FindOne(ctx, bson.M{"_id": "doc"}).Err(); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if strings.Contains(buf.String(), "level=WARN") || strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("warnings or errors while using and stopping the embedded store:\n%s", buf.String())
	}
}
