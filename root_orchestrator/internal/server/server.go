// Package server assembles thicket-root: store, first-start bootstrap,
// token signer, leadership among replicas, the state, the scheduler and the
// REST API.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/dashboard"
	"github.com/thicket-edge/thicket/internal/metricsauth"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/mongodb"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/dispatch"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/httpapi"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/install"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// AdminUser is the account created on first start.
const AdminUser = "Admin"

// AdminPasswordFile is the file, in the data dir, that receives the first
// admin password.
const AdminPasswordFile = "admin-password"

// AdminPasswordEnv, when set on first start, is the admin password.
const AdminPasswordEnv = "THICKET_ADMIN_PASSWORD"

// JoinTokenFile is the file, in the data dir, that receives the default
// cluster join token on first start.
const JoinTokenFile = "cluster-join-token"

// Config is thicket-root's configuration.
type Config struct {
	Listen        string
	DataDir       string
	MongoURL      string
	MongoDatabase string
	AccessTTL     time.Duration
	RefreshTTL    time.Duration
	// ClusterGrace is how long a cluster may stay silent before its
	// instances are placed on other clusters.
	ClusterGrace time.Duration
	// AddressPlan splits the instance network among clusters.
	AddressPlan state.AddressPlan
	// AdminPassword, if set, is the first admin's password.
	AdminPassword string
	// ResetAdminPassword gives the Admin account a new password at start
	// (AdminPassword, or a random one written to the password file) and
	// makes it an admin again, for an operator who lost access.
	ResetAdminPassword bool
	// DownloadsDir holds the binaries served at /download/ (empty: the
	// executable's directory); ExternalURL is the root's URL baked into
	// /install/*.sh (empty: from the request's Host).
	DownloadsDir string
	ExternalURL  string
	// MetricsTokenFile holds the bearer token /metrics requires; empty:
	// <DataDir>/metrics-token, generated on first start.
	MetricsTokenFile string
	// RotateSigningKey makes a new current token signing key at start.
	RotateSigningKey bool
	// TrustedProxies may name the client in X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// JobsAllowNet are the non-public networks job list URLs may be
	// fetched from.
	JobsAllowNet []netip.Prefix
	// TLS says how the root serves HTTPS (by default, with its own CA).
	TLS TLSConfig
	// ClusterCertTTL is the validity of the client certificates the root's
	// CA issues clusters (0: httpapi.DefaultClusterCertTTL).
	ClusterCertTTL time.Duration
}

// Run starts the root and serves until ctx ends. ready, if not nil, receives
// the listening address once the API accepts requests.
//
// Root replicas on one database elect a leader with a lease document: the
// leader holds the state in memory, schedules and writes it behind; the
// others forward every request to it and take over when its lease runs out
// (at once when it stops cleanly).
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(addr string)) error {
	if cfg.AccessTTL <= 0 || cfg.RefreshTTL <= 0 || cfg.ClusterGrace <= 0 {
		return fmt.Errorf("access TTL, refresh TTL and cluster grace must be positive (got %s, %s, %s)", cfg.AccessTTL, cfg.RefreshTTL, cfg.ClusterGrace)
	}
	if cfg.ClusterCertTTL == 0 {
		cfg.ClusterCertTTL = httpapi.DefaultClusterCertTTL
	}
	if cfg.ClusterCertTTL < httpapi.MinClusterCertTTL {
		return fmt.Errorf("--cluster-cert-ttl %s is shorter than %s", cfg.ClusterCertTTL, httpapi.MinClusterCertTTL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	conn, err := mongodb.Open(ctx, mongodb.Options{URL: cfg.MongoURL, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	st := store.New(conn.Client.Database(cfg.MongoDatabase), log)
	db := conn.Client.Database(cfg.MongoDatabase)
	if err := conn.Collections(ctx, db, st.Collections()...); err != nil {
		return err
	}
	if err := st.EnsureIndexes(ctx); err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, st, cfg, log); err != nil {
		return err
	}
	ping := func(ctx context.Context) error { return conn.Client.Ping(ctx, readpref.Primary()) }
	inst, err := install.New(install.Config{DownloadsDir: cfg.DownloadsDir, ExternalURL: cfg.ExternalURL, Logger: log})
	if err != nil {
		return err
	}
	metricsToken, err := metricsauth.Token(cfg.MetricsTokenFile, cfg.DataDir)
	if err != nil {
		return err
	}
	holder, err := replicaID(cfg.DataDir)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	var shared *store.Store
	if !conn.Embedded {
		shared = st
	}
	tlsc, err := setupTLS(ctx, cfg.TLS, cfg.DataDir, cfg.ExternalURL, ln.Addr(), shared, log)
	if err != nil {
		return errors.Join(fmt.Errorf("TLS: %w", err), ln.Close())
	}
	pin := ""
	if tlsc == nil {
		log.Warn("INSECURE: --insecure-plaintext serves plain HTTP: passwords, tokens and desired sets cross the network readable and changeable by anyone on the path; for development only")
	} else {
		pin = tlsc.pin
		ln = tls.NewListener(ln, tlsc.config)
		inst.SetSigner(tlsc.signer)
	}
	if err := bootstrapJoinToken(ctx, st, cfg, pin, log); err != nil {
		return errors.Join(err, ln.Close())
	}
	// Requests wait in the listen backlog until this replica knows whether
	// it leads (then it serves) or follows (then it forwards).
	front := &frontDoor{}
	hs := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		// Failed handshakes (scanners, clients without the CA) at debug.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 2)
	serving := false
	serve := func() {
		if !serving {
			serving = true
			go func() { errc <- hs.Serve(ln) }()
			log.Info("thicket-root listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "embedded_store", conn.Embedded)
			if ready != nil {
				ready(ln.Addr().String())
			}
		}
	}
	stop := func() error {
		if !serving {
			return ln.Close()
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}

	// Follow until this replica holds the lease.
	advertise := advertisedURL(ln.Addr(), tlsc != nil)
	// The embedded store is this process's alone: no other replica can
	// share it, so there is no lease to hold.
	l := &leadership{st: st, holder: holder, addr: advertise, log: log, front: front, following: serve, alone: conn.Embedded}
	if tlsc != nil {
		l.trust = tlsc.pool
		if tlsc.ca != nil {
			l.replica = pki.ReplicaCert(tlsc.ca)
		}
	}
	if err := l.acquire(ctx); err != nil {
		return errors.Join(err, stop())
	}

	// The signing keys are read as leader: another leader may have rotated
	// them since this replica started.
	signer, err := signingKeys(ctx, st, cfg, log)
	if err != nil {
		return errors.Join(err, stop())
	}
	sta, err := state.Open(ctx, st, state.Options{Log: log, Plan: cfg.AddressPlan})
	if err != nil {
		return errors.Join(err, stop())
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	persisted := make(chan struct{})
	go func() { sta.Run(runCtx); close(persisted) }()
	disp := dispatch.New(sta, cfg.ClusterGrace, log)
	srv := httpapi.New(sta, st, signer, ping, log)
	hs.RegisterOnShutdown(srv.CloseStreams)
	if err := srv.LoadIdempotencyKeys(ctx); err != nil {
		log.Warn("idempotency keys are looked up in the store at each request", "err", err)
	}
	srv.ServeMetrics(metricsauth.Handler(metricsToken))
	srv.SetTrustedProxies(cfg.TrustedProxies)
	srv.SetJobListNetworks(cfg.JobsAllowNet)
	srv.Mount("/", dashboard.Handler())
	srv.Mount("/install/", inst.Scripts())
	srv.Mount("/download/", inst.Downloads())
	if tlsc != nil {
		srv.Mount("/ca.crt", caHandler(tlsc.caPEM))
		srv.SetJoinTokenPin(pin)
		if tlsc.ca != nil {
			srv.IssueClusterCerts(tlsc.ca, cfg.ClusterCertTTL)
		}
	}
	front.set(srv.Handler())
	log.Info("this root replica leads", "addr", advertise)
	serve()
	dispCtx, stopDisp := context.WithCancel(ctx)
	go disp.Run(dispCtx)
	go func() { errc <- l.keep(dispCtx) }()
	go srv.CollectSessions(dispCtx, 10*time.Minute)
	eventsKept := make(chan struct{})
	go func() { srv.KeepEvents(dispCtx, 2*time.Second); close(eventsKept) }()

	var runErr error
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			runErr = err
		}
	case <-ctx.Done():
	}
	// The API first (no new writes), then the scheduler, then what is
	// still to be written, then the lease.
	runErr = errors.Join(runErr, stop())
	stopDisp()
	<-eventsKept
	cancelRun()
	<-persisted
	release, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if runErr == nil && !l.alone {
		if err := st.ReleaseLease(release, holder); err != nil {
			log.Warn("release the leader lease", "err", err)
		}
	}
	if runErr != nil {
		return runErr
	}
	log.Info("thicket-root stopped")
	return nil
}

// bootstrapAdmin creates the Admin account on first start (or resets it
// when asked), with the password from the environment or a random one
// written to a 0600 file in the data dir. The password is never logged.
func bootstrapAdmin(ctx context.Context, st *store.Store, cfg Config, log *slog.Logger) error {
	_, err := st.GetUser(ctx, AdminUser)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if exists && !cfg.ResetAdminPassword {
		return nil
	}
	pw, fromEnv := cfg.AdminPassword, cfg.AdminPassword != ""
	if !fromEnv {
		if pw, err = auth.RandomPassword(); err != nil {
			return err
		}
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("%s: %w", AdminPasswordEnv, err)
	}
	file := filepath.Join(cfg.DataDir, AdminPasswordFile)
	if exists {
		// Reset: the file first, so that a failure leaves the old password.
		if !fromEnv {
			if err := writeSecret(file, pw+"\n"); err != nil {
				return err
			}
		}
		if err := st.UpdateUser(ctx, AdminUser, hash, api.RoleAdmin); err != nil {
			return err
		}
		log.Warn("reset the admin account's password", "user", AdminUser, "password_file", file, "from_env", fromEnv)
		return nil
	}
	err = st.CreateUser(ctx, store.UserRecord{Username: AdminUser, PasswordHash: hash, Role: api.RoleAdmin})
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		return nil // another replica created it first
	} else if err != nil {
		return err
	}
	if fromEnv {
		log.Info("created admin account", "user", AdminUser, "password_from", AdminPasswordEnv)
		return nil
	}
	if err := writeSecret(file, pw+"\n"); err != nil {
		// Without the file nobody could log in: undo, so the next start retries.
		_ = st.DeleteUser(context.Background(), AdminUser)
		return err
	}
	log.Info("created admin account", "user", AdminUser, "password_file", file)
	return nil
}

// bootstrapJoinToken creates a default cluster join token on first start
// and writes it to a 0600 file in the data dir. Unlike the tokens admins
// create (24 h unless asked otherwise), it never expires: the quick start
// and the attach commands it prints read it from that file, however much
// later. It is listed like any other; revoke it (thicket token revoke) once
// the clusters have joined.
//
// The token in the file carries the pin of the root's CA (thk1 form); a
// file written without it, or with another CA's, is rewritten at start.
func bootstrapJoinToken(ctx context.Context, st *store.Store, cfg Config, pin string, log *slog.Logger) error {
	file := filepath.Join(cfg.DataDir, JoinTokenFile)
	if n, err := st.CountJoinTokens(ctx); err != nil || n > 0 {
		if err != nil || pin == "" {
			return err
		}
		return repinJoinToken(file, pin, log)
	}
	tok, jt, err := st.CreateJoinToken(ctx, store.JoinTokenSpec{Name: "default"}) // TTL 0: never
	if err != nil {
		return err
	}
	if pin != "" {
		if tok, err = pki.JoinToken(pin, tok); err != nil {
			return err
		}
	}
	if err := writeSecret(file, tok+"\n"); err != nil {
		_ = st.DeleteJoinToken(context.Background(), jt.ID)
		return err
	}
	log.Info("created the default cluster join token", "file", file)
	return nil
}

// repinJoinToken rewrites the default token file when the token in it does
// not carry pin.
func repinJoinToken(file, pin string, log *slog.Logger) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	had, secret, err := pki.ParseJoinToken(string(b))
	if err != nil || had == pin {
		return nil // not ours to fix, or already right
	}
	tok, err := pki.JoinToken(pin, secret)
	if err != nil {
		return nil
	}
	if err := writeSecret(file, tok+"\n"); err != nil {
		return err
	}
	log.Info("the default cluster join token now carries the root CA's pin", "file", file)
	return nil
}

// writeSecret writes a file readable by its owner only, atomically.
func writeSecret(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// signingKeys loads the token signing keys (rotated first if the
// configuration asks) into a signer. A retired key verifies for the longest
// token lifetime.
func signingKeys(ctx context.Context, st *store.Store, cfg Config, log *slog.Logger) (*auth.Signer, error) {
	keep := max(cfg.AccessTTL, cfg.RefreshTTL)
	var ks *store.SigningKeySet
	var err error
	if cfg.RotateSigningKey {
		if ks, err = st.RotateSigningKey(ctx, keep); err == nil {
			log.Info("rotated the token signing key", "kid", ks.Current)
		}
	} else {
		ks, err = st.SigningKeys(ctx, keep)
	}
	if err != nil {
		return nil, err
	}
	return auth.NewKeySigner(ks.Current, ks.AuthKeys(), cfg.AccessTTL, cfg.RefreshTTL)
}
