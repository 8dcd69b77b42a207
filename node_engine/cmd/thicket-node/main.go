// Command thicket-node is Thicket's worker node engine: it registers with a
// cluster, receives the node's desired instances over MQTT and runs them
// with the node's runtimes (containerd containers, WebAssembly modules,
// qemu unikernels).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
	"github.com/thicket-edge/thicket/internal/memtrim"
	"github.com/thicket-edge/thicket/internal/netaddr"
	"github.com/thicket-edge/thicket/internal/pprofserve"
	"github.com/thicket-edge/thicket/internal/secretfile"
	"github.com/thicket-edge/thicket/node_engine/internal/engine"
	"github.com/thicket-edge/thicket/node_engine/internal/probe"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/unikernel"
	"github.com/thicket-edge/thicket/node_engine/runtimes/wasm"
)

type cli struct {
	ClusterURL       string        `required:"" env:"THICKET_CLUSTER_URL" help:"URL of the cluster's node API, e.g. https://cluster:10100 (http:// only with --insecure-plaintext)."`
	Token            string        `env:"THICKET_NODE_TOKEN" help:"Node join token (<cluster data-dir>/node-join-token, which carries the pin of the cluster's CA); prefer --token-file."`
	TokenFile        string        `name:"token-file" env:"THICKET_NODE_TOKEN_FILE" help:"File holding the node join token (keeps it out of the process list)."`
	Name             string        `env:"THICKET_NODE_NAME" help:"Node name, unique in the cluster (default: the host name)."`
	Address          string        `env:"THICKET_NODE_ADDRESS" help:"Address at which others reach this node (default: the first non-loopback IPv4 address)."`
	DataDir          string        `default:"/var/lib/thicket/node" env:"THICKET_DATA_DIR" help:"Directory for the node's credentials and instance logs."`
	Containerd       string        `default:"/run/containerd/containerd.sock" env:"THICKET_CONTAINERD" help:"containerd socket."`
	Namespace        string        `default:"thicket" env:"THICKET_CONTAINERD_NAMESPACE" help:"containerd namespace of Thicket's containers."`
	InsecureRegistry []string      `name:"insecure-registry" env:"THICKET_INSECURE_REGISTRIES" help:"Registry host[:port] to pull from over plain HTTP (repeatable)."`
	NetSocket        string        `name:"net-socket" env:"THICKET_NET_SOCKET" help:"Socket of thicket-net (default /run/thicket/net.sock when it exists, else containers get loopback only); \"none\": no overlay, instances share the node's network."`
	AcceptShrink     bool          `name:"accept-shrinking-sets" env:"THICKET_ACCEPT_SHRINKING_SETS" help:"Apply a desired set even when it drops most of what this node runs without listing it as removed (by default those instances are held running: a cluster that lost its store cannot wipe the node)."`
	NetNS            string        `name:"netns" env:"THICKET_NETNS" help:"Network namespace path containers join (e.g. /run/netns/node1); empty: the host's network."`
	Virtualizations  []string      `name:"virtualizations" env:"THICKET_VIRTUALIZATIONS" help:"Offer only these of the detected virtualizations (container, wasm); default: all that work here."`
	UnikernelAccel   string        `name:"unikernel-accel" default:"" enum:",kvm,tcg" env:"THICKET_UNIKERNEL_ACCEL" help:"qemu acceleration for unikernels: kvm, tcg (software), or empty to use KVM when it works here."`
	MilliCPU         int64         `name:"cpu-millis" env:"THICKET_CPU_MILLIS" help:"CPU offered to instances in thousandths of a core (default: all cores)."`
	MemoryMB         int64         `name:"memory-mb" env:"THICKET_MEMORY_MB" help:"Memory offered to instances in MB (default: all memory)."`
	VGPUs            int64         `name:"vgpus" env:"THICKET_VGPUS" help:"GPUs offered to instances."`
	LogMaxBytes      int64         `name:"log-max-bytes" default:"4194304" env:"THICKET_LOG_MAX_BYTES" help:"Bound of each instance's log file on this node (container output, wasm output, unikernel console): larger, it is rotated (one previous part is kept, so an instance's log takes at most about twice this)."`
	JobsPort         int           `name:"jobs-port" default:"10180" env:"THICKET_JOBS_PORT" help:"Port of the job endpoint (GET /v1/jobs) on the instances' gateway, the overlay's bridge address: each instance with a job grant long-polls its own jobs there (0: off)."`
	LogLevel         slog.Level    `default:"info" env:"THICKET_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	Location         string        `env:"THICKET_NODE_LOCATION" help:"Where this node is: \"lat,long\" in degrees or a site name (for geo and latency constraints)."`
	ProbePort        int           `name:"probe-port" default:"51822" env:"THICKET_PROBE_PORT" help:"UDP port on which this node answers and sends round-trip probes to its peers (network coordinates); 0: do not measure."`
	ProbeInterval    time.Duration `name:"probe-interval" default:"3s" env:"THICKET_PROBE_INTERVAL" help:"Time between two probes (each to one of at most 8 peers)."`
	Insecure         bool          `name:"insecure-plaintext" env:"THICKET_INSECURE_PLAINTEXT" help:"Allow an http:// cluster URL and a plain MQTT broker. Development only: the join token, the MQTT password and desired sets cross the network in clear, and the cluster is not verified."`
	pprofserve.Flag
	memtrim.Trimming
	sandboxFlags
	labelFlags
	diskFlags
}

// gcPercent is the node engine's GOGC unless the environment sets one. An
// idle engine holds about 1.3 MB of live heap, and Go's default (100) lets
// the heap grow to 4 MB before it collects: 50 keeps an idle worker about
// 1.5 MB smaller, for a collection of that small heap every 10 s or so.
const gcPercent = 50

func main() {
	// A wasm sandbox: this binary run again by the wasm runtime, with the
	// module's config on a pipe (hidden; not a user command).
	if len(os.Args) > 1 && os.Args[1] == wasm.ChildCommand {
		os.Exit(wasm.RunChild())
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if len(os.Args) == 3 && os.Args[1] == logwriter.Arg {
		// Started to write an instance's output when thicket-log-writer
		// is not installed beside this program (logwriter.Program).
		if err := logwriter.Run(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var c cli
	kong.Parse(&c, kong.Description("Thicket node engine: runs a cluster's instances on this machine. "+
		"Its GOGC is 50 unless $GOGC says otherwise."))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	token, err := secretfile.Flag{Name: "token", Env: "THICKET_NODE_TOKEN", Value: c.Token, File: c.TokenFile}.Resolve(log)
	if err == nil && token == "" {
		err = errors.New("a node join token is required: --token-file (or --token, $THICKET_NODE_TOKEN, $THICKET_NODE_TOKEN_FILE)")
	}
	if err != nil {
		log.Error("thicket-node: the join token", "err", err)
		os.Exit(2)
	}
	if c.LogMaxBytes < 4096 {
		log.Error("thicket-node: --log-max-bytes must be at least 4096", "log_max_bytes", c.LogMaxBytes)
		os.Exit(2)
	}
	userns, err := c.usernsRemap()
	if err != nil {
		log.Error("thicket-node: " + err.Error())
		os.Exit(2)
	}
	if c.JobsPort < 0 || c.JobsPort > 65535 {
		log.Error("thicket-node: --jobs-port must be a port number, or 0 for none", "jobs_port", c.JobsPort)
		os.Exit(2)
	}
	if err := c.diskFlags.check(); err != nil {
		log.Error("thicket-node: the disk budget", "err", err)
		os.Exit(2)
	}
	if c.BenchNoSandbox {
		log.Warn("INSECURE: --bench-no-sandbox: containers start without seccomp, pids limit or dropped capabilities (benchmark only)")
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Insecure {
		log.Warn("INSECURE: --insecure-plaintext: this node may register over plain HTTP and use a plain MQTT broker; " +
			"its join token, MQTT password and desired sets (with their environment variables) may cross the network in clear. For development only.")
	}
	if c.Address == "" {
		c.Address = netaddr.FirstIPv4()
	}
	if _, err := geo.Parse(c.Location); err != nil {
		log.Error("thicket-node: --location", "err", err)
		os.Exit(2)
	}
	if c.ProbePort < 0 || c.ProbePort > 65535 || c.ProbeInterval < 100*time.Millisecond {
		log.Error("thicket-node: --probe-port must be 0..65535 and --probe-interval at least 100ms", "probe_port", c.ProbePort, "probe_interval", c.ProbeInterval)
		os.Exit(2)
	}
	if _, err := pprofserve.Start(c.Pprof, log); err != nil {
		log.Error("thicket-node failed to start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Trimming.Start(ctx, log)
	ctr, err := containerd.New(ctx, containerd.Config{
		Address: c.Containerd, Namespace: c.Namespace, NodeName: c.Name,
		StateDir: filepath.Join(c.DataDir, "containerd"), InsecureRegistries: c.InsecureRegistry, NetNS: c.NetNS,
		PidsLimit: c.PidsLimit, PullTimeout: c.PullTimeout, IsolateNetwork: c.isolateContainers(log),
		LogMaxBytes: c.LogMaxBytes, UsernsRemap: userns, ImageGCAfter: c.ImageGCAfter, NoSandbox: c.BenchNoSandbox,
	}, log)
	if err != nil {
		log.Error("containerd runtime", "err", err)
		os.Exit(1)
	}
	switch c.NetSocket {
	case "none":
		c.NetSocket = ""
	case "":
		if _, err := os.Stat(netapi.DefaultSocket); err == nil {
			c.NetSocket = netapi.DefaultSocket
		}
	}
	policy, err := c.codePolicy()
	if err != nil {
		log.Error("thicket-node: the code policy", "err", err)
		os.Exit(2)
	}
	wcfg := wasm.Config{NodeName: c.Name, StateDir: c.DataDir, Policy: policy, LogMaxBytes: c.LogMaxBytes}
	if f := strings.Fields(c.WasmSandboxExec); len(f) > 0 {
		wcfg.Exec, wcfg.ExecArgs = f[0], f[1:]
	}
	wasmRT, err := wasm.New(ctx, wcfg, log)
	if err != nil {
		log.Error("wasm runtime", "err", err)
		os.Exit(1)
	}
	ukRT, err := unikernel.New(ctx, unikernel.Config{NodeName: c.Name, StateDir: c.DataDir, Accel: c.UnikernelAccel, Policy: policy, LogMaxBytes: c.LogMaxBytes}, log)
	if err != nil {
		log.Error("unikernel runtime", "err", err)
		os.Exit(1)
	}
	labels, err := c.labels()
	if err != nil {
		log.Error("thicket-node", "err", err)
		os.Exit(2)
	}
	c.collectDisk(ctx, log, wasmRT.Cache(), ukRT.Cache(), ctr.Images())
	var prober engine.Probe
	if c.ProbePort > 0 {
		p, err := probe.New(probe.Config{Listen: ":" + strconv.Itoa(c.ProbePort), Interval: c.ProbeInterval}, log)
		if err != nil {
			log.Error("thicket-node: round-trip probes", "err", err)
			os.Exit(1)
		}
		go func() { _ = p.Run(ctx) }()
		prober = p
	}
	eng := engine.New(engine.Config{
		Labels: labels, Location: c.Location, Probe: prober,
		ClusterURL: c.ClusterURL, JoinToken: token, Name: c.Name, DataDir: c.DataDir, Address: c.Address, NetSocket: c.NetSocket,
		AcceptShrinkingSets: c.AcceptShrink, InsecurePlaintext: c.Insecure, JobsPort: c.JobsPort,
		Capacity: wire.Resources{MilliCPU: c.MilliCPU, MemoryMB: c.MemoryMB, VGPUs: c.VGPUs},
	}, runtimes.NewRegistry(offered(c.Virtualizations, ctr, wasmRT, ukRT)...), log)
	if err := eng.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("thicket-node failed", "err", err)
		os.Exit(1)
	}
}

// offered keeps the runtimes whose virtualization is in allow (all when
// allow is empty).
func offered(allow []string, rs ...runtimes.Runtime) []runtimes.Runtime {
	if len(allow) == 0 {
		return rs
	}
	var out []runtimes.Runtime
	for _, r := range rs {
		if slices.Contains(allow, r.Virtualization()) {
			out = append(out, r)
		}
	}
	return out
}
