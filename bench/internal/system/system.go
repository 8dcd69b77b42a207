// Package system runs Thicket on this machine for measurement through the
// test harness, as the end-to-end suite does: thicket-root,
// thicket-cluster and thicket-node (and thicket-net) as separate processes
// built from the repository, nodes in their own network namespaces on a
// bridge, real containers through containerd, and a test image served by
// an in-process registry.
package system

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/ctrcli"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
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
	Bin      *testharness.Bin
	Net      *testharness.Network
	Registry *testimage.Registry
	// Image is the test image's reference in Registry.
	Image string
	// NS is this run's containerd namespace.
	NS     ctrcli.Namespace
	procs  []*testharness.Proc
	nodes  []*Node
	appDir string
	n      int
}

// New builds the binaries, makes the bridge and pushes the test image.
func New(ctx context.Context, cfg Config) (*System, error) {
	s := &System{cfg: cfg, Bin: testharness.NewBin(cfg.Repo, filepath.Join(cfg.WorkDir, "bin")), NS: ctrcli.Namespace("thicket-bench-" + cfg.Tag)}
	// The binaries as they are released: the build matters to the
	// footprint (see the Makefile).
	cfg.Log.Info("building the binaries", "into", s.Bin.Dir)
	if err := s.Bin.Build(ctx, testharness.Daemons...); err != nil {
		return nil, err
	}
	var err error
	// The measured hosts have a bridge and /24 of their own, apart from the
	// suites'.
	netCfg := testharness.BenchNetwork
	netCfg.HostPrefix, netCfg.VethPrefix = "thkb"+cfg.Tag, "thkb"+cfg.Tag
	if s.Net, err = testharness.NewNetwork(netCfg); err != nil {
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

// Close stops every process still running, removes this run's containers,
// namespaces and files.
func (s *System) Close() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	testharness.CleanContainerd(ctx, string(s.NS))
	for _, n := range s.nodes {
		for _, p := range n.InstanceNetns() {
			exec.Command("ip", "netns", "del", filepath.Base(p)).Run()
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

// dir makes a new directory for one daemon: its logs, and its data dir
// ("data").
func (s *System) dir(name string) (string, error) {
	s.n++
	d := filepath.Join(s.cfg.WorkDir, fmt.Sprintf("%s-%d", name, s.n))
	return d, os.MkdirAll(d, 0o700)
}

// keep keeps the processes for Close.
func (s *System) keep(ps ...*testharness.Proc) {
	for _, p := range ps {
		if p != nil {
			p.StopTimeout = 15 * time.Second
			s.procs = append(s.procs, p)
		}
	}
}

// Root is a running thicket-root, logged in as Admin.
type Root struct {
	Proc    *testharness.Proc
	Dir     string
	API     *rootapi.Client
	pw      string
	started *testharness.Root
}

// StartRoot starts a thicket-root on its embedded store and logs in.
func (s *System) StartRoot(ctx context.Context) (*Root, error) {
	dir, err := s.dir("root")
	if err != nil {
		return nil, err
	}
	started, err := s.Bin.StartRoot(ctx, testharness.RootOptions{DataDir: filepath.Join(dir, "data"), LogDir: dir})
	if err != nil {
		return nil, err
	}
	s.keep(started.Proc)
	r := &Root{Proc: started.Proc, Dir: started.DataDir, API: rootapi.New(started.URL, started.CAFile()), started: started}
	if r.pw, err = started.AdminPassword(); err != nil {
		return nil, err
	}
	return r, r.Login(ctx)
}

// Login logs in again (a fresh access token).
func (r *Root) Login(ctx context.Context) error { return r.API.Login(ctx, "Admin", r.pw) }

// WaitNodes waits until the root sees the given number of active nodes in
// the named cluster.
func (r *Root) WaitNodes(ctx context.Context, cluster string, n int, timeout time.Duration) error {
	return testharness.Until(ctx, timeout, 200*time.Millisecond, fmt.Sprintf("%d active nodes in %s", n, cluster), func() (bool, string) {
		got, err := r.API.ActiveNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		return got[cluster] == n, fmt.Sprint(got)
	})
}

// Cluster is a running thicket-cluster.
type Cluster = testharness.Cluster

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
	if o.Advertise == "" {
		o.Advertise = s.Net.Addr
	}
	c, err := s.Bin.StartCluster(ctx, root.started, testharness.ClusterOptions{Name: name, Location: "bench",
		DataDir: filepath.Join(dir, "data"), Advertise: o.Advertise, Args: o.Extra, LogDir: dir})
	if err != nil {
		return nil, err
	}
	s.keep(c.Proc)
	return c, nil
}

// Node is a worker: thicket-node (and thicket-net for an overlay node) in
// a network namespace of its own.
type Node struct {
	*testharness.Node
}

// NodeOptions of StartNode.
type NodeOptions struct {
	// Overlay runs thicket-net beside the node engine; otherwise the node
	// runs with --net-socket none and its containers share its namespace.
	Overlay  bool
	MemoryMB int
	// Args are more thicket-node flags.
	Args []string
}

// StartNode starts a worker on host octet of the network, joined to c.
func (s *System) StartNode(ctx context.Context, c *Cluster, octet int, o NodeOptions) (*Node, error) {
	h, err := s.Net.AddHost(octet)
	if err != nil {
		return nil, err
	}
	dir, err := s.dir("node")
	if err != nil {
		return nil, err
	}
	n, err := s.Bin.StartNode(ctx, testharness.NodeOptions{Name: fmt.Sprintf("b%sw%d", s.cfg.Tag, octet), Host: h,
		ClusterURL: c.NodeURL, Token: c.NodeToken, DataDir: filepath.Join(dir, "data"), Namespace: string(s.NS),
		Registry: s.Registry.Host(), MemoryMB: o.MemoryMB, Overlay: o.Overlay, LogDir: dir, Args: o.Args})
	if err != nil {
		return nil, err
	}
	s.keep(n.Net, n.Engine)
	node := &Node{Node: n}
	s.nodes = append(s.nodes, node)
	return node, nil
}

// ContainerFilter selects the containers of one node.
func (n *Node) ContainerFilter() string { return `labels."thicket.node"==` + n.Name }
