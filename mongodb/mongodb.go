// Package mongodb connects to a MongoDB-compatible server: an external one
// given by URL, or an embedded FerretDB (SQLite backend) running in-process
// under a data directory. Both are used through the official driver, so the
// rest of the program has one code path.
package mongodb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	_ "modernc.org/sqlite" // the embedded engine's own driver, for IndexIDs
)

// Conn is an open connection; Close releases it and stops the embedded
// engine, if any.
type Conn struct {
	Client   *mongo.Client
	Embedded bool
	// URI is the server's connection string (for the embedded engine, its
	// private unix socket).
	URI string

	stop    context.CancelFunc
	done    chan struct{}
	sockDir string
	dbDir   string // the embedded engine's SQLite files
	// closing silences the embedded engine's log while the driver
	// disconnects: FerretDB answers the driver's endSessions with "no such
	// command" and logs that exchange as a warning on every stop.
	closing atomic.Bool
}

// Options say where the data lives.
type Options struct {
	// URL of an external server. Empty starts the embedded engine.
	URL string
	// DataDir holds the embedded engine's files (in DataDir/db).
	DataDir string
	Logger  *slog.Logger
}

// Open connects and waits until the server answers a ping.
func Open(ctx context.Context, o Options) (*Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{}
	uri := o.URL
	if uri == "" {
		var err error
		if uri, err = c.startEmbedded(o.DataDir, log); err != nil {
			return nil, err
		}
	}
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(10 * time.Second).
		SetTimeout(30 * time.Second)
	if c.Embedded {
		// FerretDB 1.x's SQLite backend does not make a filtered update
		// atomic against other connections: two concurrent compare-and-set
		// updates of one document can both match, and one is lost. The
		// embedded engine is private to this process, so one connection
		// serialises its commands and restores single-document atomicity
		// (SQLite has a single writer anyway). See TestEmbeddedUpdatesAreAtomic.
		opts.SetMaxPoolSize(1)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	c.Client = client
	c.URI = uri
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("ping mongodb: %w", err)
	}
	if !c.Embedded && isFerretDB(pingCtx, client) {
		// The same caveat as for the embedded engine applies: serialise.
		log.Warn("the MongoDB URL points to FerretDB, whose SQLite backend does not make updates atomic across connections: " +
			"using one connection; do not share this database between processes (use MongoDB for replicas)")
		_ = client.Disconnect(context.Background())
		if c.Client, err = mongo.Connect(opts.SetMaxPoolSize(1)); err != nil {
			return nil, fmt.Errorf("connect to mongodb: %w", err)
		}
	}
	return c, nil
}

// isFerretDB reports whether the server is FerretDB (its buildInfo says so).
func isFerretDB(ctx context.Context, client *mongo.Client) bool {
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

// startEmbedded runs FerretDB in-process on a private unix socket. The socket
// lives in its own 0700 temporary directory: data dirs may be long paths and
// unix socket paths are limited to about 100 bytes.
func (c *Conn) startEmbedded(dataDir string, log *slog.Logger) (string, error) {
	if dataDir == "" {
		return "", errors.New("embedded store needs a data directory")
	}
	dbDir := filepath.Join(dataDir, "db")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return "", fmt.Errorf("create store directory: %w", err)
	}
	sockDir, err := os.MkdirTemp("", "thicket-db-")
	if err != nil {
		return "", fmt.Errorf("create socket directory: %w", err)
	}
	c.sockDir = sockDir
	// FerretDB logs every connection at INFO; keep only its warnings.
	fdbLog := slog.New(&levelFilter{Handler: log.Handler(), min: slog.LevelWarn, off: &c.closing}).With("component", "ferretdb")
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: filepath.Join(sockDir, "mongo.sock")},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dbDir + "/?_pragma=" + strings.Join(sqlitePragmas, "&_pragma="),
		Logger:    fdbLog,
	})
	if err != nil {
		os.RemoveAll(sockDir)
		return "", fmt.Errorf("start embedded store: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if err := f.Run(runCtx); err != nil && runCtx.Err() == nil {
			log.Error("embedded store stopped", "err", err)
		}
	}()
	c.Embedded = true
	c.dbDir = dbDir
	log.Info("embedded store started", "dir", dbDir)
	return f.MongoDBURI(), nil
}

// sqlitePragmas are the embedded engine's SQLite settings.
//
// WAL (FerretDB's default) with synchronous=NORMAL: a commit is in the WAL
// file when it returns, so a crash of this process (even SIGKILL) loses
// nothing; the WAL is fsynced at checkpoints, so a power cut may lose the
// last moments, as MongoDB's default write concern (journal synced every
// 100 ms) may. FULL would fsync at every document write.
//
// temp_store=MEMORY keeps statement journals in memory, in small chunks.
// FerretDB runs every update in a transaction of its own, so each update
// statement opens a statement journal (for its own rollback, never read
// for crash recovery: the WAL is). With the default, SQLite gives it a
// 64 KiB in-memory buffer before it would spill to a temporary file, and
// the engine's C allocator (modernc.org/memory) maps and unmaps a fresh
// 1 MiB region for that buffer at every statement: system calls and page
// faults that were about a third of the CPU of a replaced document
// (BenchmarkSaverReplace). Temporary tables and sort indexes also stay in
// memory; FerretDB sorts in Go, so SQLite makes few.
var sqlitePragmas = []string{"synchronous(normal)", "temp_store(memory)"}

// Close disconnects and stops the embedded engine.
func (c *Conn) Close(ctx context.Context) {
	c.closing.Store(true)
	if c.Client != nil {
		_ = c.Client.Disconnect(ctx)
	}
	if c.stop != nil {
		c.stop()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
		}
	}
	if c.sockDir != "" {
		os.RemoveAll(c.sockDir)
	}
}

// Collections creates the named collections of db that do not exist yet
// and indexes them as the embedded engine's lookups by _id need (see
// IndexIDs). Each tier calls it once at start with all its collections.
func (c *Conn) Collections(ctx context.Context, db *mongo.Database, names ...string) error {
	// Only the missing ones: the embedded engine logs a refused creation
	// with the whole exchange.
	have, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, n := range names {
		if slices.Contains(have, n) {
			continue
		}
		var ce mongo.CommandError
		if err := db.CreateCollection(ctx, n); err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // NamespaceExists
			return fmt.Errorf("create collection %s: %w", n, err)
		}
	}
	return c.IndexIDs(ctx, db.Name())
}

// IndexIDs works around the embedded engine (FerretDB 1.24, SQLite
// backend): it looks documents up by the expression
// _ferretdb_sjson->'$._id' while its _id index is on _ferretdb_sjson->"_id",
// which SQLite does not match, so every find, update or delete by _id scans
// the whole collection (EXPLAIN QUERY PLAN says SCAN). IndexIDs adds an
// index on the expression the lookups use to every collection database db
// has now: call it after the collections exist. It does nothing for an
// external MongoDB. FerretDB does not know these indexes; they go with their
// tables.
func (c *Conn) IndexIDs(ctx context.Context, db string) error {
	if !c.Embedded {
		return nil
	}
	path := filepath.Join(c.dbDir, db+".sqlite")
	if _, err := os.Stat(path); err != nil {
		return nil // nothing stored yet
	}
	sdb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("index ids: %w", err)
	}
	defer sdb.Close()
	rows, err := sdb.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return fmt.Errorf("index ids: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("index ids: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_thicket_id", t)
		if _, err := sdb.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index ids of %s: %w", t, err)
		}
	}
	return nil
}

// BulkStatements bounds the statements of one bulk write (see BulkWrite).
const BulkStatements = 32

// BulkWrite writes models in commands of at most BulkStatements statements,
// in order. The embedded engine (FerretDB 1.24) keeps each update
// statement's query open until the whole command ends: one command of about
// 100 updates of existing documents exhausts its SQLite connections and
// hangs it for good (every later call times out).
func BulkWrite(ctx context.Context, c *mongo.Collection, models []mongo.WriteModel, ordered bool) error {
	for len(models) > 0 {
		n := min(len(models), BulkStatements)
		if _, err := c.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(ordered)); err != nil {
			return err
		}
		models = models[n:]
	}
	return nil
}
