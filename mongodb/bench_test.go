package mongodb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSaverReplace replaces known documents of the embedded engine in
// batches of BulkStatements, as the tiers write changed instances: with
// the engine's settings, and with SQLite's default temp_store (statement
// journals in 64 KiB buffers) for comparison. cpu-us/doc is this process's
// CPU (driver, engine and SQLite) per document.
func BenchmarkSaverReplace(b *testing.B) {
	for _, bc := range []struct {
		name    string
		pragmas []string
	}{
		{"engine", sqlitePragmas},
		{"temp_store=default", slices.DeleteFunc(slices.Clone(sqlitePragmas), func(p string) bool { return p == "temp_store(memory)" })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer func(p []string) { sqlitePragmas = p }(sqlitePragmas)
			sqlitePragmas = bc.pragmas
			benchmarkReplace(b)
		})
	}
}

type benchDoc struct {
	ID      string `bson:"_id"`
	Service string `bson:"service_id"`
	Number  int    `bson:"number"`
	Status  string `bson:"status"`
	Detail  string `bson:"detail"`
	Node    string `bson:"node_name"`
	V       int    `bson:"v"`
}

func benchmarkReplace(b *testing.B) {
	ctx := context.Background()
	conn, err := Open(ctx, Options{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	db := conn.Client.Database("t")
	if err := conn.Collections(ctx, db, "docs"); err != nil {
		b.Fatal(err)
	}
	s := NewSaver(db.Collection("docs"))
	const n = 1024
	docs := make([]Doc, n)
	version := func(v int) {
		for i := range docs {
			id := fmt.Sprintf("service%d/%d", i%10, i)
			docs[i] = Doc{ID: id, Doc: benchDoc{id, fmt.Sprintf("service%d", i%10), i, "RUNNING", "placed on node sim123", "sim123", v}}
		}
	}
	version(0)
	if err := s.Save(ctx, docs, nil, true); err != nil {
		b.Fatal(err)
	}
	if err := conn.IndexIDs(ctx, "t"); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		version(i + 1)
		k := (i * BulkStatements) % n
		if err := s.Save(ctx, docs[k:k+BulkStatements], nil, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	docsDone := float64(b.N * BulkStatements)
	b.ReportMetric(docsDone/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/docsDone, "cpu-us/doc")
}

// cpuTime is the CPU this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
