package mongodb

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestEmbeddedUpdatesAreAtomic runs concurrent compare-and-set updates on
// one document of the embedded store: every update that reports a match
// must be persisted. Thicket's stores build their multi-step writes on this.
func TestEmbeddedUpdatesAreAtomic(t *testing.T) {
	ctx := context.Background()
	conn := openEmbedded(t)
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

// TestLookupsByIDUseAnIndex: after Collections, the embedded engine finds a
// document by _id through an index, not by scanning the collection (which
// made every update of the root's and the cluster's state cost as much as
// the whole collection).
func TestLookupsByIDUseAnIndex(t *testing.T) {
	ctx := context.Background()
	conn := openEmbedded(t)
	db := conn.Client.Database("plan")
	if err := conn.Collections(ctx, db, "things"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Collections(ctx, db, "things"); err != nil {
		t.Fatalf("Collections again (they exist): %v", err)
	}
	if _, err := db.Collection("things").InsertOne(ctx, bson.M{"_id": "a", "v": 1}); err != nil {
		t.Fatal(err)
	}
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(conn.dbDir, "plan.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var table string
	if err := sdb.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'things'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	// The query FerretDB runs for a filter {_id: "a"}.
	rows, err := sdb.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"a"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX") {
		t.Errorf("lookup by _id: plan %q, want an index search", plan)
	}
	var got bson.M
	if err := db.Collection("things").FindOne(ctx, bson.M{"_id": "a"}).Decode(&got); err != nil || got["v"] != int32(1) {
		t.Errorf("find by _id: %v %v", got, err)
	}
}

// TestBulkWriteOfManyUpdates: a bulk write of hundreds of updates of
// existing documents completes on the embedded engine (one command of about
// 100 hangs FerretDB 1.24 for good; BulkWrite splits them).
func TestBulkWriteOfManyUpdates(t *testing.T) {
	ctx := context.Background()
	conn := openEmbedded(t)
	db := conn.Client.Database("bulk")
	if err := conn.Collections(ctx, db, "docs"); err != nil {
		t.Fatal(err)
	}
	c := db.Collection("docs")
	for v := range 3 {
		var models []mongo.WriteModel
		for i := range 300 {
			id := fmt.Sprintf("d%d", i)
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": id}).
				SetReplacement(bson.M{"_id": id, "v": v}).SetUpsert(true))
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := BulkWrite(wctx, c, models, false)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", v, err)
		}
	}
	if n, err := c.CountDocuments(ctx, bson.M{"v": 2}); err != nil || n != 300 {
		t.Errorf("%d documents of the last round (%v), want 300", n, err)
	}
}
