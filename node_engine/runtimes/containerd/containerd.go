// Package containerd runs "container" instances through containerd's Go
// client and a real containerd with runc.
//
// Every instance is one containerd container in Config.Namespace, labelled
// with the node that owns it, so several node engines may share one
// containerd. The container carries the instance's full spec (a container
// extension), its output goes to a log file written by containerd's shim, and
// its task belongs to the shim rather than to this process: killing the node
// engine never stops a workload, and a restarted engine adopts what it finds
// (List).
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/thicket-edge/thicket/node_engine/internal/cgroup"
	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
	"github.com/thicket-edge/thicket/node_engine/internal/keyed"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Virtualization is the SLA virtualization this runtime runs.
const Virtualization = "container"

// Defaults of Config.
const (
	DefaultAddress   = "/run/containerd/containerd.sock"
	DefaultNamespace = "thicket"
	DefaultStateDir  = runtimes.DefaultStateDir
	DefaultStopGrace = 10 * time.Second
	// DefaultPullTimeout is Config.PullTimeout when zero.
	DefaultPullTimeout = 10 * time.Minute
	// runcRuntime is the containerd runtime (shim) every container uses.
	runcRuntime = "io.containerd.runc.v2"
)

// Container labels.
const (
	LabelNode     = "thicket.node"
	LabelInstance = "thicket.instance"
	LabelService  = "thicket.service"
	// labelStarted is when the current task was started (RFC 3339).
	labelStarted = "thicket.started"
	// labelError is why the container has no task: its last start failed.
	labelError = "thicket.error"
	// specExtension names the container extension holding the spec (JSON).
	specExtension = "thicket.spec"
	specTypeURL   = "thicket.dev/wire.InstanceSpec"
)

// Config configures the containerd runtime.
type Config struct {
	// Address is containerd's socket (DefaultAddress if empty).
	Address string
	// Namespace is the containerd namespace (DefaultNamespace if empty).
	Namespace string
	// NodeName names this node; containers are labelled thicket.node=NodeName
	// and List and adoption see only this node's containers. The host name
	// if empty.
	NodeName string
	// StateDir holds the log files: <StateDir>/logs/<container id>.log
	// (DefaultStateDir if empty).
	StateDir string
	// InsecureRegistries are registries (host[:port], e.g. "127.0.0.1:5000")
	// pulled from over plain HTTP.
	InsecureRegistries []string
	// NetNS is the path of the network namespace containers join; empty for
	// the host's network (with the host's /etc/hosts and /etc/resolv.conf),
	// unless IsolateNetwork.
	NetNS string
	// IsolateNetwork gives a container that has no namespace of its own
	// (no overlay) and no NetNS a new network namespace with loopback only,
	// instead of the host's network.
	IsolateNetwork bool
	// StopGrace is how long Remove waits after SIGTERM before SIGKILL
	// (DefaultStopGrace if zero).
	StopGrace time.Duration
	// PullTimeout bounds an image pull (DefaultPullTimeout if zero).
	PullTimeout time.Duration
	// PidsLimit bounds the processes and threads of each container
	// (DefaultPidsLimit if zero); a service's SLA may lower it, not raise it.
	PidsLimit int64
	// Snapshotter unpacks images and holds container root filesystems
	// (containerd's default, overlayfs, if empty).
	Snapshotter string
	// LogMaxBytes bounds each instance's log file: larger, it is rotated
	// (runtimes.TrimLog; runtimes.DefaultLogMaxBytes if zero or less).
	LogMaxBytes int64
	// UsernsRemap, unless its Size is zero, runs every new container in a
	// user namespace of its own: the container's user and group IDs 0 to
	// Size-1 are the host's HostID to HostID+Size-1, and its root
	// filesystem is a copy of the image owned by those IDs. Root in a
	// container is then nobody on the host. Privileged containers are
	// refused (they would need the host's devices and IDs).
	UsernsRemap IDRange
	// ImageGCAfter is how long an image must have been unused by any
	// container before the disk-budget collector may remove it
	// (diskgc.DefaultImageGCAfter if zero or less; see Images).
	ImageGCAfter time.Duration
	// NoSandbox starts containers with containerd's bare defaults (no
	// seccomp profile, every default capability, no pids limit): only for
	// the benchmark that measures what the sandbox costs.
	NoSandbox bool
	// LogWriter is the program the containerd shim starts for each task
	// to write its output to its log file, with the arguments
	// logwriter.Arg and the file (logwriter.Run); if empty,
	// logwriter.Program of this program (os.Executable).
	LogWriter string

	// dialOptions are added to the connection's (tests: counting calls).
	dialOptions []grpc.DialOption
}

// IDRange is a range of host user and group IDs.
type IDRange struct{ HostID, Size uint32 }

// Runtime runs instances as containerd containers. It implements
// runtimes.Runtime. Its methods are safe for concurrent use; calls for the
// same instance are serialised.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	client   *containerd.Client
	resolver remotes.Resolver
	logDir   string

	events chan runtimes.State

	// ctx is cancelled by Close; the exit watchers run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	instances keyed.Mutex // per container id: Start and Remove
	pulls     keyed.Mutex // per image reference

	mu       sync.Mutex
	closed   bool
	watches  map[string]*watch    // container id -> exit watcher of its task
	starting map[string]int       // container ids with a Start in progress
	samples  map[string]cpuSample // container id -> its last Usage reading
	// containers are this node's containers as List last listed them;
	// containersGen counts the Starts and Removes that make them stale
	// (list.go).
	containers    *listedContainers
	containersGen uint64
	// tasks are the namespace's tasks as List last listed them, asked
	// for at tasksAt (Usage takes their processes).
	tasks   map[string]*tasktypes.Process
	tasksAt time.Time
	// logTails keeps the log tail Logs read last of each container.
	logTails runtimes.LogTails
	// cgroups is this machine's cgroup layout, for Usage to read a task's
	// cgroup itself (nil: not found; Usage asks containerd for metrics).
	cgroups *cgroup.Host
	// ready remembers images found pulled and unpacked, by reference, and
	// when: a burst of starts of one image checks containerd once, not
	// once per start behind the image's lock.
	ready map[string]readyImage
	// used is when each image reference was last asked for by a Start, so
	// that the collector never removes one between the pull and the
	// container's creation (gc.go).
	used map[string]time.Time
	// imageFilter limits the images the collector sees (tests share a
	// containerd namespace); nil: all of the namespace.
	imageFilter func(name string) bool
}

// readyImage is an image found ready to create containers from.
type readyImage struct {
	img containerd.Image
	at  time.Time
}

// readyFor is how long an image found ready is taken as ready without
// asking containerd again; a create that fails forgets it at once.
const readyFor = 30 * time.Second

var _ runtimes.Runtime = (*Runtime)(nil)

// New returns a runtime using the containerd at cfg.Address. It does not
// require containerd to be up: the connection is made (and remade after
// containerd restarts) on demand, and Available tells whether it works. When
// containerd is reachable, New adopts this node's running containers: their
// exits are delivered on Events.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if err := runtimes.Defaults(&cfg.NodeName, &cfg.StateDir); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.ImageGCAfter <= 0 {
		cfg.ImageGCAfter = diskgc.DefaultImageGCAfter
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = containerd.DefaultSnapshotter
	}
	if cfg.LogWriter == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("containerd runtime: the log writer: %w", err)
		}
		var fallback bool
		if cfg.LogWriter, fallback = logwriter.Program(exe); fallback && log != nil {
			log.Warn("no "+logwriter.Arg+" beside this program: each container's log writer is this program, several MB more per instance",
				"program", exe)
		}
	}
	logDir := filepath.Join(cfg.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}

	// No grpc.WithBlock: the connection is made lazily and remade with
	// backoff, so New works while containerd is down and the client survives
	// a containerd restart.
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
	}
	client, err := containerd.New(cfg.Address,
		containerd.WithDialOpts(append(dial, cfg.dialOptions...)),
		containerd.WithDefaultNamespace(cfg.Namespace),
		containerd.WithDefaultRuntime(runcRuntime),
	)
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: connect %s: %w", cfg.Address, err)
	}

	bctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:      cfg,
		log:      log.With("runtime", Virtualization),
		client:   client,
		resolver: newResolver(cfg.InsecureRegistries),
		logDir:   logDir,
		events:   make(chan runtimes.State, runtimes.EventBuffer),
		ctx:      bctx,
		cancel:   cancel,
		watches:  map[string]*watch{},
		starting: map[string]int{},
		samples:  map[string]cpuSample{},
	}
	if h, err := cgroup.Detect(); err == nil {
		r.cgroups = h
	} else {
		r.log.Debug("no cgroup hierarchy: usage comes from containerd's metrics", "err", err)
	}
	runtimes.KeepLogsBounded(bctx, &r.wg, logDir, cfg.LogMaxBytes, r.log)
	// Adopt: List watches every running task of this node.
	if states, err := r.List(ctx); err != nil {
		r.log.Warn("containerd not reachable yet; adopting on the first List", "address", cfg.Address, "err", err)
	} else if len(states) > 0 {
		r.log.Info("adopted instances", "count", len(states))
	}
	return r, nil
}

// newResolver returns a registry resolver that talks plain HTTP to the
// insecure registries and HTTPS to all others.
func newResolver(insecureRegistries []string) remotes.Resolver {
	plain := map[string]bool{}
	for _, h := range insecureRegistries {
		plain[h] = true
	}
	secureHosts := config.ConfigureHosts(context.Background(), config.HostOptions{})
	plainHosts := config.ConfigureHosts(context.Background(), config.HostOptions{DefaultScheme: "http"})
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: func(host string) ([]docker.RegistryHost, error) {
			if plain[host] {
				return plainHosts(host)
			}
			return secureHosts(host)
		},
	})
}

// Virtualization implements runtimes.Runtime.
func (r *Runtime) Virtualization() string { return Virtualization }

// Available reports whether containerd answers.
func (r *Runtime) Available(ctx context.Context) error {
	if _, err := r.client.Version(ctx); err != nil {
		return fmt.Errorf("containerd at %s: %w", r.cfg.Address, err)
	}
	return nil
}

// Events delivers a State whenever an instance's task exits. It is buffered;
// when the buffer is full, further exits are dropped (and logged) until the
// reader catches up, so the engine should read it continuously and also
// reconcile with List now and then. Removing or replacing an instance
// through this runtime sends no event. The channel is closed by Close.
func (r *Runtime) Events() <-chan runtimes.State { return r.events }

// Client is the containerd client (for tests and diagnostics).
func (r *Runtime) Client() *containerd.Client { return r.client }

// Config returns the configuration in force (defaults filled in).
func (r *Runtime) Config() Config { return r.cfg }

// Close stops watching exits, closes Events and the connection to
// containerd. Running instances keep running.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	close(r.events)
	if err := r.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("containerd runtime: close: %w", err)
	}
	return nil
}

// logPath is the log file of container id.
func (r *Runtime) logPath(id string) string {
	return filepath.Join(r.logDir, id+".log")
}
