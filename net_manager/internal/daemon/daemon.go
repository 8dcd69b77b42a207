// Package daemon is thicket-net: it owns the node's part of the overlay. It
// serves the node engine over a unix socket (contract/netapi), gives each
// instance an address of the node's subnet in its own network namespace,
// keeps the VXLAN peers and the service-IP and port rules in the kernel,
// and keeps its allocations in a state file, so that a restarted daemon
// adopts what exists and re-addresses nothing.
//
// The bridge, the VXLAN device and the nftables table are a resource of the
// network namespace, so one thicket-net runs per namespace: New takes a lock
// on the namespace (an abstract unix socket, see lockNetns) and refuses to
// start while another thicket-net holds it. The devices also carry the data
// dir of the thicket-net that made them (overlay.Config.Owner), so one
// started later with another data dir refuses them too, instead of fighting
// over their addresses; with the same data dir it adopts them.
package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/thicket-edge/thicket/internal/jsonhttp"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/memtrim"
	"github.com/thicket-edge/thicket/net_manager/internal/nft"
	"github.com/thicket-edge/thicket/net_manager/internal/overlay"
)

// Config of the daemon.
type Config struct {
	Socket  string
	DataDir string
	// Underlay is this node's address on the network between nodes: the
	// VXLAN device's source.
	Underlay netip.Addr
	// PublicIP and PublicPort are what peers send VXLAN to (the node's NAT,
	// or Underlay and Port).
	PublicIP   netip.Addr
	PublicPort int
	Port       int // VXLAN UDP port
	// InstanceNetwork is the whole instance network (all clusters), for
	// masquerading traffic that leaves it.
	InstanceNetwork netip.Prefix
	// NetnsPrefix names the instances' network namespaces.
	NetnsPrefix string
	// NoIsolation turns tenant isolation off (see guards): every instance
	// may connect to every other.
	NoIsolation bool
}

// state is what survives a restart (DataDir/state.json).
type state struct {
	NodeID    string                       `json:"node_id"`
	ClusterID string                       `json:"cluster_id"`
	Subnet    string                       `json:"subnet"`
	Instances map[string]netapi.Attachment `json:"instances"`
	Network   wire.Network                 `json:"network"`
	RTTMS     map[string]int               `json:"rtt_ms,omitempty"`
}

// Daemon is a running net manager.
type Daemon struct {
	cfg Config
	log *slog.Logger

	owner string     // the data dir, absolute: overlay.Config.Owner
	lock  *netnsLock // held from New to Close

	mu      sync.Mutex
	st      state
	ov      *overlay.Overlay
	tables  *nft.Tables
	confErr string // the last Configure error, logged once
	// refused: the peers apply left out, and why (Status lists them).
	refused []string
}

// New locks the current network namespace, loads the state and, if the
// node already has a subnet, sets up (or adopts) the overlay and the rules
// at once: instances keep their network across a restart of the daemon.
// It fails if another thicket-net runs in the namespace, or if the bridge or
// VXLAN device is marked as another data dir's (overlay.ConflictError).
func New(cfg Config, log *slog.Logger) (_ *Daemon, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	owner, err := filepath.Abs(cfg.DataDir)
	if err == nil {
		owner, err = filepath.EvalSymlinks(owner)
	}
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	socket, _ := filepath.Abs(cfg.Socket)
	lock, err := lockNetns(lockInfo{DataDir: owner, Socket: socket})
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, owner: owner, lock: lock, st: state{Instances: map[string]netapi.Attachment{}}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	b, err := os.ReadFile(d.statePath())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &d.st); err != nil {
			return nil, fmt.Errorf("read %s: %w", d.statePath(), err)
		}
		if d.st.Instances == nil {
			d.st.Instances = map[string]netapi.Attachment{}
		}
		upgradeState(b, &d.st)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read state: %w", err)
	}
	if d.st.Subnet != "" {
		if err := d.setup(); err != nil {
			return nil, err
		}
		// Repair what a crash may have left half-made; nothing is
		// re-addressed.
		for key, a := range d.st.Instances {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				continue
			}
			if _, err := d.ov.Attach(key, ip); err != nil {
				log.Warn("re-attach instance", "instance", key, "err", err)
			}
		}
		if err := d.apply(); err != nil {
			return nil, err
		}
		log.Info("adopted the node's overlay", "subnet", d.st.Subnet, "instances", len(d.st.Instances))
	} else if err := overlay.CheckOwner(overlay.Config{Owner: d.owner}); err != nil {
		// No subnet yet, but another data dir's devices are here: refuse
		// now rather than at the first Configure.
		return nil, err
	}
	return d, nil
}

// Close releases the lock on the network namespace and the daemon's
// handles; the datapath stays as it is.
func (d *Daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ov != nil {
		d.ov.Close()
		d.ov = nil
	}
	if d.tables != nil {
		d.tables.Close()
		d.tables = nil
	}
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	return nil
}

func (d *Daemon) statePath() string { return filepath.Join(d.cfg.DataDir, "state.json") }

// upgradeState gives the instances in a state file of an earlier version
// their published ports: such a file kept the SLA's port field as "ports",
// which the daemon parsed at every rules update (an unparsable one published
// nothing, as now).
func upgradeState(b []byte, st *state) {
	var old struct {
		Instances map[string]struct {
			Ports string `json:"ports"`
		} `json:"instances"`
	}
	if json.Unmarshal(b, &old) != nil {
		return
	}
	for key, o := range old.Instances {
		if a, ok := st.Instances[key]; ok && len(a.Ports) == 0 && o.Ports != "" {
			a.Ports, _ = wire.ParsePorts(o.Ports)
			st.Instances[key] = a
		}
	}
}

// save writes the state atomically. Caller holds mu.
func (d *Daemon) save() error {
	b, err := json.MarshalIndent(d.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, d.statePath()); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// setup creates or adopts the bridge and VXLAN device of the subnet.
// Caller holds mu (or is New).
func (d *Daemon) setup() error {
	subnet, err := netip.ParsePrefix(d.st.Subnet)
	if err != nil {
		return fmt.Errorf("subnet %q: %w", d.st.Subnet, err)
	}
	if d.ov != nil {
		d.ov.Close()
	}
	if d.tables != nil {
		d.tables.Close()
	}
	// LocalNet: instances reaching a service whose backend shares their
	// bridge are masqueraded so that the answer comes back the same way.
	tables, err := nft.New(nft.Config{InstanceNet: d.cfg.InstanceNetwork, LocalNet: subnet, Logger: d.log})
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	d.tables = tables
	ov, err := overlay.Setup(overlay.Config{
		Subnet: subnet, Underlay: d.cfg.Underlay, Port: d.cfg.Port, NetnsPrefix: d.cfg.NetnsPrefix, Owner: d.owner,
		Network: d.cfg.InstanceNetwork,
	})
	if err != nil {
		return err // "overlay: ...", or a ConflictError meant to be read as it is
	}
	d.ov = ov
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil && !d.cfg.NoIsolation {
		d.log.Warn("br_netfilter is not loaded: instances on this node are not isolated from other tenants' instances on this node (other nodes' are)",
			"fix", "modprobe br_netfilter, then restart thicket-net")
	}
	return nil
}

// apply converges peers and rules to the state. Peers the overlay refuses
// (outside the instance network, overlapping this node's subnet or another
// peer's, malformed) are left out, logged when the set of refusals changes
// and listed in Status; the good ones are applied all the same. Caller
// holds mu.
func (d *Daemon) apply() error {
	if d.ov == nil {
		return nil
	}
	var peers []overlay.Peer
	var ids []string // of peers
	var refused []string
	for _, p := range d.st.Network.Peers {
		if p.NodeID != "" && p.NodeID == d.st.NodeID {
			continue // this node
		}
		subnet, err1 := netip.ParsePrefix(p.Subnet)
		mac, err2 := net.ParseMAC(p.VTEPMAC)
		ip, err3 := netip.ParseAddr(p.PublicIP)
		if err := errors.Join(err1, err2, err3); err != nil {
			refused = append(refused, fmt.Sprintf("node %s: %v", p.NodeID, err))
			continue
		}
		peers = append(peers, overlay.Peer{Subnet: subnet, VTEPMAC: mac, Underlay: ip, Port: p.PublicPort})
		ids = append(ids, p.NodeID)
	}
	bad, err := d.ov.SetPeers(peers)
	routed := make([]netip.Prefix, 0, len(peers)+1) // subnets of this node and the routed peers
	if s, err := netip.ParsePrefix(d.st.Subnet); err == nil {
		routed = append(routed, s)
	}
	for i, p := range peers {
		if !slices.ContainsFunc(bad, func(r overlay.Refused) bool { return r.Index == i }) {
			routed = append(routed, p.Subnet)
		}
	}
	for _, r := range bad {
		refused = append(refused, fmt.Sprintf("node %s: %v", ids[r.Index], r))
	}
	svcs := d.services()
	if n := d.cfg.InstanceNetwork; n.IsValid() {
		for _, r := range d.st.Network.Services {
			for _, b := range r.Backends {
				if a, err := netip.ParseAddr(b.IP); err == nil && !n.Contains(a) {
					refused = append(refused, fmt.Sprintf("node %s: service %s backend %s is outside the instance network %v", b.NodeID, r.IP, b.IP, n))
				}
			}
		}
	}
	slices.Sort(refused)
	refused = slices.Compact(refused)
	if !slices.Equal(refused, d.refused) {
		if len(refused) > 0 {
			d.log.Warn("peers refused: their routes are not set; the other peers are", "refused", refused)
		} else if len(d.refused) > 0 {
			d.log.Info("no peer is refused any more")
		}
		d.refused = refused
	}
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	var iso nft.Isolation
	if !d.cfg.NoIsolation {
		iso.Guards = guards(d.st.Network.Services, d.st.Instances, d.cfg.InstanceNetwork)
		if len(iso.Guards) > 0 {
			iso.Trusted = nodeAddrs(routed)
		}
	}
	return d.tables.ApplyGuarded(svcs, d.portMaps(), iso)
}

// services resolves the service table for this node: round robin over all
// backends, or for closest IPs the backends on this node, else those of the
// nearest node by estimated round trip, else in this cluster, else all. A backend outside the instance network is left out
// (apply lists it as refused). Caller holds mu.
func (d *Daemon) services() []nft.Service {
	var out []nft.Service
	for _, r := range d.st.Network.Services {
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			continue
		}
		backends := r.Backends
		if r.Mode == wire.RouteClosest {
			backends = closest(r.Backends, d.st.NodeID, d.st.ClusterID, d.st.RTTMS)
		}
		s := nft.Service{IP: ip}
		for _, b := range backends {
			if a, err := netip.ParseAddr(b.IP); err == nil && (!d.cfg.InstanceNetwork.IsValid() || d.cfg.InstanceNetwork.Contains(a)) {
				s.Backends = append(s.Backends, a)
			}
		}
		out = append(out, s)
	}
	return out
}

// closest picks the backends on node; else those whose node has the
// lowest estimated round trip in rtt (all of them at a tie); else, when no
// backend's node has an estimate, those in cluster, else all. Only new
// connections follow a change: conntrack keeps established flows on the
// backend they were translated to.
func closest(bs []wire.Backend, node, cluster string, rtt map[string]int) []wire.Backend {
	var onNode, inCluster, nearest []wire.Backend
	best := -1
	for _, b := range bs {
		if b.NodeID == node {
			onNode = append(onNode, b)
		}
		if b.ClusterID == cluster {
			inCluster = append(inCluster, b)
		}
		if ms, ok := rtt[b.NodeID]; ok && b.NodeID != "" {
			switch {
			case best < 0 || ms < best:
				best, nearest = ms, append(nearest[:0], b)
			case ms == best:
				nearest = append(nearest, b)
			}
		}
	}
	switch {
	case len(onNode) > 0:
		return onNode
	case len(nearest) > 0:
		return nearest
	case len(inCluster) > 0:
		return inCluster
	}
	return bs
}

// portMaps are the published ports of the attached instances. Caller holds
// mu.
func (d *Daemon) portMaps() []nft.PortMap {
	var out []nft.PortMap
	for _, a := range d.st.Instances {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			continue
		}
		for _, m := range a.Ports {
			out = append(out, nft.PortMap{HostPort: m.HostPort, Proto: m.Protocol, IP: ip, Port: m.InstancePort})
		}
	}
	slices.SortFunc(out, func(a, b nft.PortMap) int {
		return cmp.Or(cmp.Compare(a.HostPort, b.HostPort), strings.Compare(a.Proto, b.Proto))
	})
	return out
}

// Configure takes the node's identity, subnet and overlay view. The node
// engine repeats a failed Configure every second: a failure is logged as a
// warning when it differs from the previous one.
func (d *Daemon) Configure(c netapi.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.configure(c)
	switch {
	case err == nil:
		d.confErr = ""
	case err.Error() != d.confErr:
		d.confErr = err.Error()
		d.log.Warn("configure", "err", err)
	default:
		d.log.Debug("configure", "err", err)
	}
	return err
}

// configure is Configure. Caller holds mu.
func (d *Daemon) configure(c netapi.Config) error {
	if c.Subnet != "" && d.st.Subnet != "" && c.Subnet != d.st.Subnet {
		if len(d.st.Instances) > 0 {
			return fmt.Errorf("the node's subnet changed from %s to %s while %d instances use it", d.st.Subnet, c.Subnet, len(d.st.Instances))
		}
		if err := d.ov.Teardown(); err != nil {
			return err
		}
		d.ov.Close()
		d.ov = nil
		d.st.Subnet = ""
	}
	d.st.NodeID, d.st.ClusterID, d.st.Network, d.st.RTTMS = c.NodeID, c.ClusterID, c.Network, c.RTTMS
	if d.st.Subnet == "" && c.Subnet != "" {
		d.st.Subnet = c.Subnet
		if err := d.setup(); err != nil {
			d.st.Subnet = ""
			return err
		}
		d.log.Info("overlay set up", "subnet", c.Subnet, "vtep", d.ov.VTEPMAC().String())
	}
	if err := d.save(); err != nil {
		return err
	}
	return d.apply()
}

// Status reports the node's overlay.
func (d *Daemon) Status() netapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ov == nil {
		return netapi.Status{}
	}
	return netapi.Status{Ready: true, Node: wire.NodeNetwork{
		NodeID: d.st.NodeID, ClusterID: d.st.ClusterID, Subnet: d.st.Subnet, VTEPMAC: d.ov.VTEPMAC().String(),
		PublicIP: d.cfg.PublicIP.String(), PublicPort: d.cfg.PublicPort,
	}, Refused: slices.Clone(d.refused)}
}

// errNotReady: the node has no subnet yet.
var errNotReady = errors.New("the node has no subnet yet")

// Attach gives an instance an address and its namespace; the same key keeps
// its address.
func (d *Daemon) Attach(key string, req netapi.AttachRequest) (netapi.Attachment, error) {
	if err := wire.CheckPorts(req.Ports); err != nil {
		return netapi.Attachment{}, fmt.Errorf("ports: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ov == nil {
		return netapi.Attachment{}, errNotReady
	}
	a, ok := d.st.Instances[key]
	var ip netip.Addr
	if ok {
		ip, _ = netip.ParseAddr(a.IP)
	} else {
		var err error
		if ip, err = d.freeIP(); err != nil {
			return netapi.Attachment{}, err
		}
	}
	at, err := d.ov.Attach(key, ip)
	if err != nil {
		return netapi.Attachment{}, fmt.Errorf("attach %s: %w", key, err)
	}
	a = netapi.Attachment{Key: key, IP: ip.String(), Netns: at.Netns, Ports: req.Ports}
	d.st.Instances[key] = a
	if err := d.save(); err != nil {
		return netapi.Attachment{}, err
	}
	return a, d.apply()
}

// freeIP is the lowest free address of the subnet after the gateway.
// Caller holds mu.
func (d *Daemon) freeIP() (netip.Addr, error) {
	subnet, _ := netip.ParsePrefix(d.st.Subnet)
	used := map[string]bool{}
	for _, a := range d.st.Instances {
		used[a.IP] = true
	}
	ip := subnet.Masked().Addr().Next().Next() // .0 is the VTEP, .1 the gateway
	for ; subnet.Contains(ip); ip = ip.Next() {
		if !subnet.Contains(ip.Next()) {
			break // the broadcast address
		}
		if !used[ip.String()] {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s is full", d.st.Subnet)
}

// Detach removes an instance's network.
func (d *Daemon) Detach(key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.st.Instances[key]; !ok {
		return nil
	}
	a := d.st.Instances[key]
	if d.ov != nil {
		if err := d.ov.Detach(key); err != nil {
			return err
		}
	}
	delete(d.st.Instances, key)
	if ip, err := netip.ParseAddr(a.IP); err == nil && d.tables != nil {
		// Connections to the gone instance fail at once instead of hanging.
		defer d.tables.FlushConntrack(ip)
	}
	if err := d.save(); err != nil {
		return err
	}
	return d.apply()
}

// Attachments lists the instances' networks.
func (d *Daemon) Attachments() []netapi.Attachment {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]netapi.Attachment, 0, len(d.st.Instances))
	for _, a := range d.st.Instances {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netapi.Attachment) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Serve answers the node engine on the unix socket until ctx ends.
func (d *Daemon) Serve(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(d.cfg.Socket), 0o755); err != nil {
		return err
	}
	_ = os.Remove(d.cfg.Socket)
	ln, err := net.Listen("unix", d.cfg.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.cfg.Socket, err)
	}
	if err := os.Chmod(d.cfg.Socket, 0o600); err != nil {
		return err
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	d.log.Info("thicket-net listening", "socket", d.cfg.Socket)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		jsonhttp.Write(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("PUT /v1/network", func(w http.ResponseWriter, r *http.Request) {
		var c netapi.Config
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 32<<20)).Decode(&c); err != nil {
			writeErr(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		if err := d.Configure(c); err != nil {
			writeErr(w, http.StatusConflict, err.Error())
			return
		}
		jsonhttp.Write(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) {
		jsonhttp.Write(w, http.StatusOK, d.Attachments())
	})
	mux.HandleFunc("PUT /v1/instances/{key}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			netapi.AttachRequest
			// Legacy: the SLA's port field, from a node engine that
			// predates AttachRequest.Ports.
			Legacy string `json:"ports"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		var a netapi.Attachment
		var err error
		if len(req.Ports) == 0 && req.Legacy != "" {
			if req.Ports, err = wire.ParsePorts(req.Legacy); err != nil {
				err = fmt.Errorf("ports: %w", err)
			}
		}
		if err == nil {
			a, err = d.Attach(r.PathValue("key"), req.AttachRequest)
		}
		switch {
		case errors.Is(err, errNotReady):
			writeErr(w, http.StatusServiceUnavailable, err.Error())
		case err != nil:
			d.log.Warn("attach", "instance", r.PathValue("key"), "err", err)
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			jsonhttp.Write(w, http.StatusOK, a)
		}
	})
	mux.HandleFunc("DELETE /v1/instances/{key}", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Detach(r.PathValue("key")); err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		jsonhttp.Write(w, http.StatusOK, map[string]string{"message": "detached"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Method != http.MethodGet {
			memtrim.Worked() // a network change brought code in
		}
	})
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	jsonhttp.Write(w, status, netapi.Error{Error: msg})
}
