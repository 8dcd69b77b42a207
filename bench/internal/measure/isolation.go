package measure

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/bench/internal/stats"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
	"github.com/thicket-edge/thicket/node_engine/runtimes/wasm"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// Isolation measures what the workload sandbox costs: the deploy latency
// of a container with the sandbox's defaults (seccomp profile, dropped
// capabilities, no_new_privs, pids limit) against the same node type
// without them (thicket-node's hidden --bench-no-sandbox), and the start
// of a WebAssembly module in a sandbox process (the wasm runtime) against
// running it inside the calling process (as the runtime did before).
// isolationPoll is how often the sandbox's cost polls an instance: finer
// than apiPoll, whose 20 ms steps are as large as the few percent of a
// 110 ms deploy this section compares (a median moves by a whole step when
// one side crosses it).
const isolationPoll = 5 * time.Millisecond

func Isolation(ctx context.Context, e *Env) (out Outcome) {
	// 40 pairs: with 20 a median of about 230 ms moved by ±2 % between runs
	// of the same commit, as much as the cost measured.
	runs := 40
	if e.Short {
		runs = 6
	}
	s := &out.Section
	s.Title = "8. Cost of the workload sandbox"
	s.Method = []string{
		fmt.Sprintf("**Containers:** two workers in one cluster, one as shipped and one started with the hidden `--bench-no-sandbox` "+
			"(containerd's bare defaults: no seccomp profile, every default capability, no pids limit). One service pinned to each; "+
			"`POST /api/service/{id}/instance` until `RUNNING` (polled every %s), the instance deleted untimed before the next run; "+
			"the two alternate, %d runs each after an untimed warm-up. "+
			"The paired difference is the median of run i's with-minus-without, which a drift of the machine's speed during the section moves less.", report.Ms(ms(isolationPoll)), runs),
		fmt.Sprintf("**WebAssembly:** the wasm test module (Go, `GOOS=wasip1`), cached and compiled. *Sandbox process:* the wasm runtime's "+
			"`Start` with thicket-node as the sandbox program — a cgroup made, the process started, placed, sent its config, "+
			"and the module's machine code loaded until `_start` runs (Start returns then). *In process:* the same module run by "+
			"`wasm.RunModule` in the benchmark's own process (wazero runtime, compilation cache, instantiation) until `_start` runs. "+
			"%d runs each, alternating, no CPU limit.", runs),
	}
	target := report.Target{What: "what the sandbox costs: deploy latency", Anchor: "the same without it",
		Target: "within a few percent", Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target) }()

	withD, withoutD, err := e.sandboxDeploys(ctx, runs)
	if err != nil {
		s.Err = err
		return
	}
	ws, wos := stats.Durations(withD), stats.Durations(withoutD)
	extra := stats.Ratio(ws.Median(), wos.Median())
	paired := make(stats.Samples, min(len(ws), len(wos)))
	for i := range paired {
		paired[i] = ws[i] - wos[i]
	}
	s.Tables = append(s.Tables, report.Table{
		Header: []string{"container deploy, API → RUNNING", "runs", "median", "p95"},
		Rows: [][]string{
			{"without the sandbox (`--bench-no-sandbox`)", fmt.Sprint(len(withoutD)), report.Ms(wos.Median()), report.Ms(wos.P95())},
			{"with the sandbox (default)", fmt.Sprint(len(withD)), report.Ms(ws.Median()), report.Ms(ws.P95())},
			{"paired difference, with − without", fmt.Sprint(len(paired)), report.Ms(paired.Median()), report.Ms(paired.P95())},
		},
	})
	target.Measured = fmt.Sprintf("%s vs %s without (median, %+.1f %%; paired difference %s)",
		report.Ms(ws.Median()), report.Ms(wos.Median()), (extra-1)*100, report.Ms(paired.Median()))
	// "A few percent", or a few milliseconds of a fast deploy.
	target.Verdict = report.Verdict(extra <= 1.05 || ws.Median()-wos.Median() <= 10)

	child, inproc, err := e.wasmStarts(ctx, runs)
	if err != nil {
		s.Err = err
		return
	}
	cs, is := stats.Durations(child), stats.Durations(inproc)
	s.Tables = append(s.Tables, report.Table{
		Header: []string{"wasm start, cached module → `_start` runs", "runs", "median", "p95"},
		Rows: [][]string{
			{"in the calling process (`wasm.RunModule`)", fmt.Sprint(len(inproc)), report.Ms(is.Median()), report.Ms(is.P95())},
			{"sandbox process in its cgroup (`Runtime.Start`)", fmt.Sprint(len(child)), report.Ms(cs.Median()), report.Ms(cs.P95())},
		},
	})
	return
}

// sandboxDeploys times container deploys on a sandboxed and an
// unsandboxed worker, alternating.
func (e *Env) sandboxDeploys(ctx context.Context, runs int) (with, without []time.Duration, err error) {
	st, err := e.startStack(ctx, "isolation", system.ClusterOptions{})
	if err != nil {
		return nil, nil, err
	}
	defer st.stop()
	if err := e.addNodes(ctx, st, system.NodeOptions{MemoryMB: 4096}, 11); err != nil {
		return nil, nil, err
	}
	if err := e.addNodes(ctx, st, system.NodeOptions{MemoryMB: 4096, Args: []string{"--bench-no-sandbox"}}, 12); err != nil {
		return nil, nil, err
	}
	api := st.root.API
	appID, ids, err := api.CreateApp(ctx, "isolation", []rootapi.ServiceSpec{
		{Name: "sbx", Image: e.Sys.Image, MemoryMB: 16, Environment: []string{"PORT=18091"}, Cluster: st.cluster.Name, Node: st.nodes[0].Name},
		{Name: "raw", Image: e.Sys.Image, MemoryMB: 16, Environment: []string{"PORT=18092"}, Cluster: st.cluster.Name, Node: st.nodes[1].Name},
	})
	if err != nil {
		return nil, nil, err
	}
	defer api.DeleteApplication(context.WithoutCancel(ctx), appID)
	deploy := func(svc string) (time.Duration, error) {
		return e.deployOnce(ctx, api, svc, 2*time.Minute, isolationPoll)
	}
	for _, svc := range []string{ids["sbx"], ids["raw"]} { // warm-up: the pull
		if _, err := deploy(svc); err != nil {
			return nil, nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range runs {
		order := []string{"sbx", "raw"}
		if i%2 == 1 {
			order = []string{"raw", "sbx"}
		}
		for _, name := range order {
			d, err := deploy(ids[name])
			if err != nil {
				return with, without, fmt.Errorf("%s run %d: %w", name, i, err)
			}
			if name == "sbx" {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
		}
	}
	return with, without, nil
}

// wasmStarts times a module's start in a sandbox process (the runtime,
// with thicket-node as the sandbox program) and in this process.
func (e *Env) wasmStarts(ctx context.Context, runs int) (child, inproc []time.Duration, err error) {
	mod, err := testimage.WasmModule(ctx)
	if err != nil {
		return nil, nil, err
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(mod) }))
	defer srv.Close()
	dir, err := os.MkdirTemp("", "thicket-bench-wasm-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	if err := e.Sys.Bin.Build(ctx, testharness.NodeProgram); err != nil {
		return nil, nil, err
	}
	exe := e.Sys.Bin.Path(testharness.NodeProgram)
	rt, err := wasm.New(ctx, wasm.Config{NodeName: "bench", StateDir: dir, Exec: exe,
		Policy: &fetch.Policy{AllowUnpinned: true, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, nil, err
	}
	defer rt.Close()
	spec := wire.InstanceSpec{Key: "bench.0", ServiceID: "bench", Virtualization: wasm.Virtualization,
		Code: srv.URL + "/" + testimage.WasmAppName, Cmd: []string{"sleep", "60"}, Resources: wire.Resources{MemoryMB: 64}}
	inSandbox := func() (time.Duration, error) {
		t0 := time.Now()
		if err := rt.Start(ctx, spec); err != nil {
			return 0, err
		}
		took := time.Since(t0)
		return took, rt.Remove(ctx, spec.Key)
	}
	// The warm-up downloads and compiles the module into the cache that
	// the in-process runs use too.
	if _, err := inSandbox(); err != nil {
		return nil, nil, fmt.Errorf("warm-up: %w", err)
	}
	modFile, err := filepath.Glob(filepath.Join(dir, "wasm", "cache", "modules", "*.wasm"))
	if err != nil || len(modFile) != 1 {
		return nil, nil, fmt.Errorf("cached module: %v %v", modFile, err)
	}
	inProcess := func() (time.Duration, error) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		t0 := time.Now()
		var took time.Duration
		done := make(chan error, 1)
		go func() {
			_, err := wasm.RunModule(rctx, wasm.ChildConfig{Module: modFile[0], CompileCache: filepath.Join(dir, "wasm", "cache", "compiled"),
				Name: testimage.WasmAppName, Args: []string{"sleep", "60"}, MemoryLimit: 64 << 20}, io.Discard, io.Discard, func() {
				took = time.Since(t0)
				cancel() // stop the module once it runs
			})
			done <- err
		}()
		err := <-done
		return took, err
	}
	for i := range runs {
		for j := range 2 {
			if (i+j)%2 == 0 {
				d, err := inSandbox()
				if err != nil {
					return child, inproc, fmt.Errorf("sandbox run %d: %w", i, err)
				}
				child = append(child, d)
			} else {
				d, err := inProcess()
				if err != nil {
					return child, inproc, fmt.Errorf("in-process run %d: %w", i, err)
				}
				inproc = append(inproc, d)
			}
		}
	}
	return child, inproc, nil
}
