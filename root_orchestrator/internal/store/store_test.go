package store

import (
	"context"
	"log/slog"
	"testing"

	"github.com/thicket-edge/thicket/mongodb"
)

// openStore returns a store on a fresh embedded database, closed when the
// test ends.
func openStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	conn, err := mongodb.Open(ctx, mongodb.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	db := conn.Client.Database("x")
	s := New(db, slog.New(slog.DiscardHandler))
	if err := conn.Collections(ctx, db, s.Collections()...); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}
