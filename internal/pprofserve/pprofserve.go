// Package pprofserve serves the Go runtime's profiles (net/http/pprof) on a
// listener of their own, apart from a daemon's public API: the --pprof flag
// of every Thicket daemon.
//
// The profiles tell about the process's internals (its command line, heap,
// goroutines and their stacks) and a CPU profile or trace costs CPU while
// it runs: bind the address to 127.0.0.1 (or another address only
// operators reach), never to a public one.
package pprofserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"time"
)

// Flag is the --pprof flag, for embedding in a daemon's kong command line.
type Flag struct {
	Pprof string `name:"pprof" placeholder:"ADDR" env:"THICKET_PPROF" help:"Address to serve Go profiles at (net/http/pprof under /debug/pprof/, on a listener of its own), e.g. 127.0.0.1:6060; empty: off. It exposes the process's internals: bind it to 127.0.0.1."`
}

// Memory profiling (the heap and allocs profiles) samples allocations
// only in a daemon started with --pprof or $THICKET_PPROF: each sample keeps
// a record and its stack, memory an idle worker should not spend on a
// profile nobody can read. It is decided at package initialisation, from
// the command line and the environment, because the flags are parsed only
// after it: a daemon started with --pprof samples from its start, so that
// its heap profile also holds what initialisation allocated.
func init() {
	if !requested(os.Args[1:], os.Getenv("THICKET_PPROF")) {
		runtime.MemProfileRate = 0
	}
}

// requested tells whether a command line or the environment sets --pprof.
func requested(args []string, env string) bool {
	if env != "" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--pprof" || strings.HasPrefix(a, "--pprof=") {
			return true
		}
	}
	return false
}

// Handler serves net/http/pprof's handlers under /debug/pprof/ and nothing
// else. It is a mux of its own: net/http/pprof also registers them on
// http.DefaultServeMux, which no Thicket API serves.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Start listens on addr and serves Handler there for the rest of the
// process's life, logging the address it listens on. An empty addr listens
// on nothing and returns nil, nil.
func Start(addr string, log *slog.Logger) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	// No write timeout: /debug/pprof/profile and /trace answer after the
	// seconds they are asked to record.
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener stopped", "address", l.Addr().String(), "err", err)
		}
	}()
	level := slog.LevelInfo
	if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		level = slog.LevelWarn // reachable from elsewhere
	}
	log.Log(context.Background(), level, "serving Go profiles (pprof): they expose this process's internals, bind --pprof to 127.0.0.1",
		"address", "http://"+l.Addr().String()+"/debug/pprof/")
	return l.Addr(), nil
}
