// Command thicket-bench measures Thicket against the targets in docs/targets.md
// on this machine — deploy latency against the ctr run floor, failover,
// footprint, control-plane scale with simulated nodes (one cluster of up
// to 2,000 nodes; several clusters at one root), scheduler and overlay
// benchmarks — and writes a Markdown report.
//
//	go run ./bench/cmd/thicket-bench [-short] [-out docs/benchmarks.md] [-only deploy,scale]
//	    [-clusters 5] [-cluster-nodes 1000]
//
// -clusters and -cluster-nodes size the several-clusters scenario
// ("clusters"); a quick run of it alone:
//
//	go run ./bench/cmd/thicket-bench -only clusters -cluster-nodes 50 -out /tmp/clusters.md
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
	flag.IntVar(&cfg.Clusters, "clusters", 0, "clusters at the root in the several-clusters scenario (default 5)")
	flag.IntVar(&cfg.ClusterNodes, "cluster-nodes", 0, "simulated nodes per cluster in the several-clusters scenario (default 1000; with -short 50)")
	flag.StringVar(&cfg.Out, "out", "docs/benchmarks.md", "where to write the Markdown report (relative to the workspace root; empty: print only)")
	only := flag.String("only", "", "comma-separated measurements to run: "+strings.Join(run.Names(), ","))
	flag.StringVar(&cfg.Repo, "repo", "", "repository root (default: the nearest Thicket checkout from the current directory upwards)")
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
