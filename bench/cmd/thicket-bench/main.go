// Command thicket-bench measures Thicket against the targets of BRIEF §5
// on this machine — deploy latency against the ctr run floor, failover,
// footprint, control-plane scale with simulated nodes, scheduler and
// overlay benchmarks — and writes a Markdown report.
//
//	go run ./bench/cmd/thicket-bench [-short] [-out docs/benchmarks.md] [-only deploy,scale]
//
// Run it as root from the workspace, with containerd running.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/thicket-edge/thicket/bench/internal/run"
)

func main() {
	var cfg run.Config
	flag.BoolVar(&cfg.Short, "short", false, "quick variant of every measurement (CI smoke runs, a few minutes)")
	flag.StringVar(&cfg.Out, "out", "docs/benchmarks.md", "where to write the Markdown report (relative to the workspace root; empty: print only)")
	only := flag.String("only", "", "comma-separated measurements to run: "+strings.Join(run.Names(), ","))
	flag.StringVar(&cfg.Repo, "repo", "", "workspace root (default: the directory holding go.work, from the current one upwards)")
	flag.Parse()
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	cfg.Command = "thicket-bench " + strings.Join(os.Args[1:], " ")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	md, err := run.Run(ctx, cfg, log)
	if md != "" {
		fmt.Print(md)
	}
	if err != nil {
		log.Error("thicket-bench", "err", err)
		os.Exit(1)
	}
}
