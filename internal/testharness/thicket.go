package testharness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// startAttempts bounds the starts of a daemon whose port another process
// took meanwhile.
const startAttempts = 3

// RootOptions of StartRoot.
type RootOptions struct {
	// DataDir is the root's data dir (made if missing).
	DataDir string
	// Host is the address it listens on; 127.0.0.1 if empty.
	Host string
	// Env and Args are added to its environment and command line.
	Env, Args []string
	// LogDir, if set, receives its output in root.log; else it is kept in
	// memory.
	LogDir string
	// Timeout is how long it may take to become healthy; a minute if zero.
	Timeout time.Duration
	// Plaintext starts it with --insecure-plaintext (plain HTTP); by
	// default it serves HTTPS with the CA it makes in its data dir
	// (roottls.go: CAFile, Pin, HTTPClient, API).
	Plaintext bool
	// CAFile is the CA clients trust when the root is given the operator's
	// (--tls-ca-cert); default: the one the root makes in its data dir.
	CAFile string
}

// Root is a running thicket-root on its embedded store (unless Args say
// otherwise).
type Root struct {
	Proc    *Proc
	DataDir string
	// URL is where it serves its API, https://<host>:<Port> (http:// with
	// RootOptions.Plaintext).
	URL  string
	Port int
	// Args are added to its command line at each Start (RootOptions.Args
	// first).
	Args []string
	opts RootOptions
}

// StartRoot starts a thicket-root (built by b) on a free port and waits
// until it answers its health check.
func (b *Bin) StartRoot(ctx context.Context, o RootOptions) (*Root, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	r := &Root{DataDir: o.DataDir, Args: o.Args, opts: o, Proc: &Proc{Name: "root", Env: o.Env, LogFile: logFile(o.LogDir, "root")}}
	r.Proc.Args = []string{b.Path(RootProgram)}
	return r, r.Start(ctx)
}

// Start starts the stopped root again on the same data dir and port (on
// another one if the port was taken meanwhile) and waits until it is
// healthy.
func (r *Root) Start(ctx context.Context) error {
	var err error
	for range startAttempts {
		if r.Port == 0 {
			if r.Port, err = Port(); err != nil {
				return err
			}
		}
		addr := net.JoinHostPort(r.opts.Host, strconv.Itoa(r.Port))
		r.URL = r.scheme() + addr
		r.Proc.Args = append(append([]string{r.Proc.Args[0], "--listen", addr, "--data-dir", r.DataDir}, r.plaintextArgs()...), r.Args...)
		if err = r.Proc.Start(); err != nil {
			return err
		}
		err = r.Proc.WaitUntil(ctx, r.opts.Timeout, "healthy", func() bool { return r.Healthy(ctx) })
		if err == nil {
			return nil
		}
		r.Proc.Kill()
		if !errors.Is(err, ErrPortTaken) {
			return err
		}
		r.Port = 0
	}
	return err
}

// Healthy reports whether the root answers its health check.
func (r *Root) Healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/healthz", nil)
	if err != nil {
		return false
	}
	c := r.HTTPClient()
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// AdminPassword is the Admin's password, which the root generates into
// its data dir (unless given one in THICKET_ADMIN_PASSWORD).
func (r *Root) AdminPassword() (string, error) { return readSecret(r.DataDir, "admin-password") }

// ClusterJoinToken is the token clusters join with, from the data dir.
func (r *Root) ClusterJoinToken() (string, error) {
	return readSecret(r.DataDir, "cluster-join-token")
}

// MetricsToken is the bearer token the root's /metrics requires, from the
// data dir.
func (r *Root) MetricsToken() (string, error) { return readSecret(r.DataDir, "metrics-token") }

// ClusterOptions of StartCluster.
type ClusterOptions struct {
	Name string
	// Location is its --location; "lab-<Name>" if empty.
	Location string
	// DataDir is its data dir (made if missing).
	DataDir string
	// Bind is the address its node API and embedded broker listen on;
	// every address if empty.
	Bind string
	// Advertise is the address nodes reach it at.
	Advertise string
	// MQTTURL is an external broker; empty embeds one. MQTTCAFile is the
	// CA of an mqtts:// one (--mqtt-ca-file).
	MQTTURL, MQTTCAFile string
	// InsecurePlaintext serves the node API and the embedded broker
	// without TLS (--insecure-plaintext); by default they serve TLS with
	// the cluster's CA, whose pin the node join token carries.
	InsecurePlaintext bool
	// RootURL is where it dials the root (e.g. through a proxy); empty:
	// the root's URL.
	RootURL string
	// Env and Args are added to its environment and command line.
	Env, Args []string
	// LogDir, if set, receives its output in cluster-<Name>.log; else it
	// is kept in memory.
	LogDir string
	// Timeout is how long it may take to run; a minute if zero.
	Timeout time.Duration
}

// Cluster is a running thicket-cluster.
type Cluster struct {
	Name    string
	Proc    *Proc
	DataDir string
	// NodeURL is its node API (registration, /metrics), at the advertised
	// address: https:// unless Insecure; NodeToken the token nodes join
	// with (in thk1 form, with the pin of the cluster's CA, unless
	// Insecure).
	NodeURL, NodeToken string
	Insecure           bool
}

// HTTPClient is a client of the cluster's node API: over https:// it
// trusts exactly the CA the node join token pins, as nodes do.
func (c *Cluster) HTTPClient() (*http.Client, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	if c.Insecure {
		return hc, nil
	}
	pin, _, err := pki.ParseJoinToken(c.NodeToken)
	if err != nil || pin == "" {
		return nil, fmt.Errorf("cluster %s: node join token without a CA pin (%v)", c.Name, err)
	}
	host := strings.TrimPrefix(c.NodeURL, "https://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	hc.Transport = &http.Transport{TLSClientConfig: pki.PinnedClient(pin, host)}
	return hc, nil
}

// StartCluster starts a thicket-cluster (built by b) joined to root, on
// free ports, and waits until it runs.
func (b *Bin) StartCluster(ctx context.Context, root *Root, o ClusterOptions) (*Cluster, error) {
	if o.Location == "" {
		o.Location = "lab-" + o.Name
	}
	if o.Bind == "" {
		o.Bind = "0.0.0.0"
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	// The token reaches the cluster as a file, never on its command line.
	if _, err := root.ClusterJoinToken(); err != nil {
		return nil, err
	}
	c := &Cluster{Name: o.Name, DataDir: o.DataDir, Insecure: o.InsecurePlaintext}
	if o.RootURL == "" {
		o.RootURL = root.URL
	}
	scheme := "https"
	if o.InsecurePlaintext {
		scheme = "http"
	}
	var err error
	for range startAttempts {
		apiPort, err := Port()
		if err != nil {
			return nil, err
		}
		mqttPort, err := Port()
		if err != nil {
			return nil, err
		}
		c.NodeURL = fmt.Sprintf("%s://%s:%d", scheme, o.Advertise, apiPort)
		args := []string{b.Path(ClusterProgram), "--name", o.Name, "--location", o.Location,
			"--root-url", o.RootURL, "--join-token-file", filepath.Join(root.DataDir, "cluster-join-token"),
			"--listen", net.JoinHostPort(o.Bind, strconv.Itoa(apiPort)), "--mqtt-listen", net.JoinHostPort(o.Bind, strconv.Itoa(mqttPort)),
			"--advertise-address", o.Advertise, "--data-dir", o.DataDir}
		args = append(args, root.clusterPlaintextArgs()...)
		if o.MQTTURL != "" {
			// It may hold the broker's credentials: a file, not an argument.
			f := filepath.Join(o.DataDir, "mqtt-url")
			if err := os.WriteFile(f, []byte(o.MQTTURL+"\n"), 0o600); err != nil {
				return nil, err
			}
			args = append(args, "--mqtt-url-file", f)
		}
		if o.MQTTCAFile != "" {
			args = append(args, "--mqtt-ca-file", o.MQTTCAFile)
		}
		if o.InsecurePlaintext {
			args = append(args, "--insecure-plaintext")
		}
		name := "cluster " + o.Name
		c.Proc = &Proc{Name: name, Args: append(args, o.Args...), Env: o.Env, LogFile: logFile(o.LogDir, name)}
		if err = c.Proc.Start(); err != nil {
			return nil, err
		}
		err = c.Proc.WaitOutput(ctx, o.Timeout, "thicket-cluster running")
		if err == nil {
			break
		}
		c.Proc.Kill()
		if !errors.Is(err, ErrPortTaken) {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if c.NodeToken, err = readSecret(o.DataDir, "node-join-token"); err != nil {
		c.Proc.Stop()
		return nil, err
	}
	return c, nil
}

// MetricsToken is the bearer token the cluster's /metrics requires, from
// its data dir.
func (c *Cluster) MetricsToken() (string, error) { return readSecret(c.DataDir, "metrics-token") }

// NodeOptions of StartNode.
type NodeOptions struct {
	// Name is the node's name; Label names its processes ("node <Label>",
	// "net <Label>"), Name if empty.
	Name, Label string
	// Host is the network namespace it runs in.
	Host Host
	// ClusterURL and Token are its cluster's node API and join token.
	ClusterURL, Token string
	// DataDir is its data dir (made if missing); thicket-net's is its
	// "net" directory.
	DataDir string
	// Namespace is its containerd namespace; Registry, if set, a registry
	// it may pull from over plain HTTP.
	Namespace, Registry string
	// CPUMillis and MemoryMB are the capacity it offers; 4000 and 8192 if
	// zero.
	CPUMillis, MemoryMB int
	// Overlay runs thicket-net beside the node engine: instances get their
	// own addresses. Otherwise the node runs with --net-socket none and
	// its instances share its network.
	Overlay bool
	// InsecurePlaintext lets it register over http:// and use a plain
	// broker (--insecure-plaintext), for a cluster started so.
	InsecurePlaintext bool
	// Args are added to thicket-node's command line.
	Args []string
	// Engine is the command that runs thicket-node, the binary last:
	// b.Path(NodeProgram) if empty; e.g. an emulator and a build for
	// another architecture.
	Engine []string
	// LogDir, if set, receives the output in node-<Label>.log and
	// net-<Label>.log; else it is kept in memory.
	LogDir string
}

// Node is a worker: thicket-node, and thicket-net on the overlay, in a
// network namespace.
type Node struct {
	Name    string
	Host    Host
	DataDir string
	// Engine is thicket-node, Net thicket-net (nil without the overlay) and
	// NetSocket its socket.
	Engine, Net *Proc
	NetSocket   string
}

// StartNode starts a worker (built by b). It does not wait for the node to
// join: its cluster tells.
func (b *Bin) StartNode(ctx context.Context, o NodeOptions) (*Node, error) {
	if o.Label == "" {
		o.Label = o.Name
	}
	if o.CPUMillis == 0 {
		o.CPUMillis = 4000
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 8192
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{Name: o.Name, Host: o.Host, DataDir: o.DataDir}
	// The token reaches the node as a file, never on its command line.
	tokenFile := filepath.Join(o.DataDir, "node-join-token")
	if err := os.WriteFile(tokenFile, []byte(o.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	netArgs := []string{"--net-socket", "none", "--netns", o.Host.Path}
	if o.Overlay {
		n.NetSocket = filepath.Join(o.DataDir, "net.sock")
		// nsenter, not ip netns exec: the instance namespaces thicket-net
		// mounts must be visible to containerd in the host's mount namespace.
		name := "net " + o.Label
		n.Net = &Proc{Name: name, LogFile: logFile(o.LogDir, name), Args: []string{"nsenter", "--net=" + o.Host.Path, b.Path(NetProgram),
			"--socket", n.NetSocket, "--data-dir", n.netDir(), "--underlay", o.Host.Addr}}
		if err := n.Net.Start(); err != nil {
			return nil, err
		}
		if err := n.Net.WaitUntil(ctx, 30*time.Second, "serving its socket", func() bool {
			_, err := os.Stat(n.NetSocket)
			return err == nil
		}); err != nil {
			n.Net.Kill()
			return nil, err
		}
		netArgs = []string{"--net-socket", n.NetSocket}
	}
	engine := o.Engine
	if len(engine) == 0 {
		engine = []string{b.Path(NodeProgram)}
	}
	args := append(append([]string{"ip", "netns", "exec", o.Host.Netns}, engine...),
		"--cluster-url", o.ClusterURL, "--token-file", tokenFile, "--name", o.Name, "--address", o.Host.Addr,
		"--data-dir", o.DataDir, "--namespace", o.Namespace)
	if o.Registry != "" {
		args = append(args, "--insecure-registry", o.Registry)
	}
	args = append(args, "--cpu-millis", strconv.Itoa(o.CPUMillis), "--memory-mb", strconv.Itoa(o.MemoryMB))
	if o.InsecurePlaintext {
		args = append(args, "--insecure-plaintext")
	}
	name := "node " + o.Label
	n.Engine = &Proc{Name: name, LogFile: logFile(o.LogDir, name), Args: append(append(args, netArgs...), o.Args...)}
	if err := n.Engine.Start(); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) netDir() string { return filepath.Join(n.DataDir, "net") }

// InstanceNetns lists the instance network namespaces (their files) the
// node's thicket-net holds: it names them "thk", 4 hex digits of a hash
// of its data dir, "-" and the instance key.
func (n *Node) InstanceNetns() []string {
	sum := sha256.Sum256([]byte(n.netDir()))
	names, _ := filepath.Glob(filepath.Join("/run/netns", "thk"+hex.EncodeToString(sum[:2])+"-*"))
	return names
}

// Stop stops the node engine and its net manager; their instances run on.
func (n *Node) Stop() {
	if n.Engine != nil {
		n.Engine.Stop()
	}
	if n.Net != nil {
		n.Net.Stop()
	}
}

func logFile(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
}

func readSecret(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
