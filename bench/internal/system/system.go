// Package system runs Thicket on this machine for measurement, the way the
// end-to-end suite does: thicket-root, thicket-cluster and thicket-node (and
// thicket-net) as separate processes built from the workspace, nodes in
// their own network namespaces on a bridge, real containers through
// containerd, and a test image served by an in-process registry.
package system

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/ctrcli"
	"github.com/thicket-edge/thicket/bench/internal/daemon"
	"github.com/thicket-edge/thicket/bench/internal/hostnet"
	"github.com/thicket-edge/thicket/bench/internal/poll"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// Binaries are the programs built from the workspace, by package.
var Binaries = []string{
	"root_orchestrator/cmd/thicket-root",
	"cluster_orchestrator/cmd/thicket-cluster",
	"node_engine/cmd/thicket-node",
	"net_manager/cmd/thicket-net",
}

// Network of the measured hosts: its own bridge and /24, apart from the
// end-to-end suite's.
const (
	bridge = "thkbbr0"
	prefix = "10.214.0"
)

// Config of a system.
type Config struct {
	// Repo is the repository root (the directory holding go.mod).
	Repo string
	// WorkDir holds binaries, data dirs and logs; removed by Close.
	WorkDir string
	// Tag keeps this run's names apart from other runs' (6 characters).
	Tag string
	Log *slog.Logger
}

// System is the machinery shared by the measurements. Close undoes
// everything it made.
type System struct {
	cfg      Config
	Bin      string
	Net      *hostnet.Network
	Registry *testimage.Registry
	// Image is the test image's reference in Registry.
	Image string
	// NS is this run's containerd namespace.
	NS    ctrcli.Namespace
	procs []*daemon.Proc
	// netnsPrefixes are the instance namespace prefixes of overlay nodes.
	netnsPrefixes []string
	appDir        string
	n             int
}

// New builds the binaries, makes the bridge and pushes the test image.
func New(ctx context.Context, cfg Config) (*System, error) {
	s := &System{cfg: cfg, Bin: filepath.Join(cfg.WorkDir, "bin"), NS: ctrcli.Namespace("thicket-bench-" + cfg.Tag)}
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	var err error
	if s.Net, err = hostnet.New(bridge, prefix, cfg.Tag); err != nil {
		return nil, err
	}
	// Nodes pull from inside their namespaces: the registry listens on the bridge.
	if s.Registry, err = testimage.StartRegistry(s.Net.Addr + ":0"); err != nil {
		s.Close()
		return nil, err
	}
	bin, err := testimage.Binary(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.appDir = filepath.Dir(bin)
	if s.Image, err = s.Registry.PushTestApp(ctx, "bench/testapp", "v1"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// build compiles the binaries as they are released (the Dockerfile, make
// build): static, without file paths and symbols. The build matters to the
// footprint: with cgo an idle worker keeps 13 MB more (see the Makefile).
func (s *System) build(ctx context.Context) error {
	s.cfg.Log.Info("building the binaries", "into", s.Bin)
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", s.Bin + "/"}
	for _, b := range Binaries {
		args = append(args, "./"+b)
	}
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = s.cfg.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// Close stops every process still running, removes this run's containers,
// namespaces and files.
func (s *System) Close() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop(15 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.NS.Clean(ctx)
	for _, p := range s.netnsPrefixes {
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), p) {
				exec.Command("ip", "netns", "del", e.Name()).Run()
			}
		}
	}
	if s.Registry != nil {
		s.Registry.Close()
	}
	if s.Net != nil {
		s.Net.Close()
	}
	if s.appDir != "" {
		os.RemoveAll(s.appDir)
	}
}

func (s *System) dir(name string) (string, error) {
	s.n++
	d := filepath.Join(s.cfg.WorkDir, fmt.Sprintf("%s-%d", name, s.n))
	return d, os.MkdirAll(d, 0o700)
}

func (s *System) start(name string, argv ...string) (*daemon.Proc, error) {
	p, err := daemon.Start(s.cfg.WorkDir, fmt.Sprintf("%s-%d", name, s.n), argv...)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	return p, nil
}

// FreePort is a TCP port nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Root is a running thicket-root, logged in as Admin.
type Root struct {
	Proc *daemon.Proc
	Dir  string
	API  *rootapi.Client
	pw   string
}

// StartRoot starts a thicket-root on its embedded store and logs in.
func (s *System) StartRoot(ctx context.Context) (*Root, error) {
	dir, err := s.dir("root")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := s.start("root", filepath.Join(s.Bin, "thicket-root"), "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dir)
	if err != nil {
		return nil, err
	}
	r := &Root{Proc: p, Dir: dir, API: rootapi.New(fmt.Sprintf("http://127.0.0.1:%d", port))}
	if err := poll.Until(ctx, time.Minute, 100*time.Millisecond, "root healthy", func() (bool, string) {
		return r.API.Healthy(ctx), p.LogTail(300)
	}); err != nil {
		return nil, err
	}
	if r.pw, err = readFile(filepath.Join(dir, "admin-password")); err != nil {
		return nil, err
	}
	return r, r.Login(ctx)
}

// Login logs in again (a fresh access token).
func (r *Root) Login(ctx context.Context) error { return r.API.Login(ctx, "Admin", r.pw) }

// WaitNodes waits until the root sees the given number of active nodes in
// the named cluster.
func (r *Root) WaitNodes(ctx context.Context, cluster string, n int, timeout time.Duration) error {
	return poll.Until(ctx, timeout, 200*time.Millisecond, fmt.Sprintf("%d active nodes in %s", n, cluster), func() (bool, string) {
		got, err := r.API.ActiveNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		return got[cluster] == n, fmt.Sprint(got)
	})
}

// Cluster is a running thicket-cluster.
type Cluster struct {
	Name string
	Proc *daemon.Proc
	Dir  string
	// NodeURL is its node API (registration, /metrics).
	NodeURL   string
	NodeToken string
}

// ClusterOptions of StartCluster.
type ClusterOptions struct {
	// Advertise is the address nodes reach it at (the bridge's if empty).
	Advertise string
	// Extra flags.
	Extra []string
}

// StartCluster starts a thicket-cluster with its embedded store and broker,
// joined to root.
func (s *System) StartCluster(ctx context.Context, root *Root, name string, o ClusterOptions) (*Cluster, error) {
	dir, err := s.dir("cluster")
	if err != nil {
		return nil, err
	}
	api, err := FreePort()
	if err != nil {
		return nil, err
	}
	mq, err := FreePort()
	if err != nil {
		return nil, err
	}
	if o.Advertise == "" {
		o.Advertise = s.Net.Addr
	}
	tok, err := readFile(filepath.Join(root.Dir, "cluster-join-token"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Dir: dir, NodeURL: fmt.Sprintf("http://%s:%d", o.Advertise, api)}
	args := append([]string{filepath.Join(s.Bin, "thicket-cluster"), "--name", name, "--location", "bench",
		"--root-url", root.API.URL, "--join-token", tok,
		"--listen", fmt.Sprintf("0.0.0.0:%d", api), "--mqtt-listen", fmt.Sprintf("0.0.0.0:%d", mq),
		"--advertise-address", o.Advertise, "--data-dir", dir}, o.Extra...)
	if c.Proc, err = s.start("cluster", args...); err != nil {
		return nil, err
	}
	tokFile := filepath.Join(dir, "node-join-token")
	if err := poll.Until(ctx, time.Minute, 100*time.Millisecond, "cluster "+name+" node token", func() (bool, string) {
		_, err := os.Stat(tokFile)
		return err == nil, c.Proc.LogTail(300)
	}); err != nil {
		return nil, err
	}
	if c.NodeToken, err = readFile(tokFile); err != nil {
		return nil, err
	}
	return c, nil
}

// Node is a worker: thicket-node (and thicket-net for an overlay node) in
// a network namespace of its own.
type Node struct {
	Name string
	Host hostnet.Host
	Dir  string
	// Engine is thicket-node; Net is thicket-net (nil without overlay).
	Engine *daemon.Proc
	Net    *daemon.Proc
}

// NodeOptions of StartNode.
type NodeOptions struct {
	// Overlay runs thicket-net beside the node engine; otherwise the node
	// runs with --net-socket none and its containers share its namespace.
	Overlay  bool
	MemoryMB int
}

// StartNode starts a worker on host <prefix>.<octet> joined to c.
func (s *System) StartNode(ctx context.Context, c *Cluster, octet int, o NodeOptions) (*Node, error) {
	h, err := s.Net.AddHost(octet)
	if err != nil {
		return nil, err
	}
	dir, err := s.dir("node")
	if err != nil {
		return nil, err
	}
	n := &Node{Name: fmt.Sprintf("b%sw%d", s.cfg.Tag, octet), Host: h, Dir: dir}
	netArgs := []string{"--net-socket", "none", "--netns", h.Path}
	if o.Overlay {
		sock := filepath.Join(dir, "net.sock")
		netDir := filepath.Join(dir, "net")
		sum := sha256.Sum256([]byte(netDir)) // thicket-net names instance namespaces by its data dir
		s.netnsPrefixes = append(s.netnsPrefixes, "thk"+hex.EncodeToString(sum[:2])+"-")
		// nsenter, not ip netns exec: the instance namespaces thicket-net
		// mounts must be visible to containerd in the host's mount namespace.
		if n.Net, err = s.start("net", "nsenter", "--net="+h.Path, filepath.Join(s.Bin, "thicket-net"),
			"--socket", sock, "--data-dir", netDir, "--underlay", h.Addr); err != nil {
			return nil, err
		}
		if err := poll.Until(ctx, 30*time.Second, 50*time.Millisecond, "thicket-net socket", func() (bool, string) {
			_, err := os.Stat(sock)
			return err == nil, n.Net.LogTail(300)
		}); err != nil {
			return nil, err
		}
		netArgs = []string{"--net-socket", sock}
	}
	mem := o.MemoryMB
	if mem == 0 {
		mem = 8192
	}
	argv := append([]string{"ip", "netns", "exec", h.Netns, filepath.Join(s.Bin, "thicket-node"),
		"--cluster-url", c.NodeURL, "--token", c.NodeToken, "--name", n.Name, "--address", h.Addr,
		"--data-dir", dir, "--namespace", string(s.NS), "--insecure-registry", s.Registry.Host(),
		"--cpu-millis", "4000", "--memory-mb", strconv.Itoa(mem)}, netArgs...)
	if n.Engine, err = s.start("node", argv...); err != nil {
		return nil, err
	}
	return n, nil
}

// Stop stops the node engine and its net manager (their containers run on).
func (n *Node) Stop() {
	n.Engine.Stop(15 * time.Second)
	if n.Net != nil {
		n.Net.Stop(15 * time.Second)
	}
}

// ContainerFilter selects the containers of one node.
func (n *Node) ContainerFilter() string { return `labels."thicket.node"==` + n.Name }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
