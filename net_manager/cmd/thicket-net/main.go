// Command thicket-net is Thicket's net manager on a worker node: it joins
// every instance to one overlay network (per-node bridge, VXLAN between
// nodes) and translates service IPs and published ports in the kernel. The
// node engine talks to it over a unix socket.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/internal/memtrim"
	"github.com/thicket-edge/thicket/internal/netaddr"
	"github.com/thicket-edge/thicket/internal/pprofserve"
	"github.com/thicket-edge/thicket/net_manager/internal/daemon"
)

type cli struct {
	Socket          string     `default:"/run/thicket/net.sock" env:"THICKET_NET_SOCKET" help:"Unix socket the node engine talks to (thicket-node --net-socket)."`
	DataDir         string     `default:"/var/lib/thicket/net" env:"THICKET_DATA_DIR" help:"Directory for the net manager's state (subnet, instance addresses)."`
	Underlay        string     `env:"THICKET_UNDERLAY" help:"This node's address towards other nodes (default: the first non-loopback IPv4 address)."`
	PublicAddress   string     `name:"public-address" env:"THICKET_PUBLIC_ADDRESS" help:"Address peers send overlay traffic to, if not the underlay address (a node behind NAT)."`
	OverlayPort     int        `name:"overlay-port" default:"4789" env:"THICKET_OVERLAY_PORT" help:"UDP port of the VXLAN overlay."`
	PublicPort      int        `name:"public-port" env:"THICKET_PUBLIC_PORT" help:"UDP port peers send overlay traffic to, if not --overlay-port (NAT)."`
	InstanceNetwork string     `name:"instance-network" default:"10.64.0.0/10" env:"THICKET_INSTANCE_NETWORK" help:"The whole instance network (as the root's --instance-network); traffic leaving it is masqueraded."`
	TenantIsolation bool       `name:"tenant-isolation" default:"true" negatable:"" env:"THICKET_TENANT_ISOLATION" help:"Refuse new connections between instances of different users (tenants) over the overlay, unless the target service's allow_from names the source (README: Tenancy). --no-tenant-isolation lets every instance reach every other."`
	LogLevel        slog.Level `default:"info" env:"THICKET_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	pprofserve.Flag
	memtrim.Trimming
}

func main() {
	var c cli
	kong.Parse(&c, kong.Description("Thicket net manager: instance networking and the overlay on a worker node. Listens on "+netapi.DefaultSocket+" by default."))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if c.Underlay == "" {
		c.Underlay = netaddr.FirstIPv4()
	}
	underlay, err := netip.ParseAddr(c.Underlay)
	if err != nil || !underlay.Is4() {
		log.Error("--underlay must be an IPv4 address", "value", c.Underlay)
		os.Exit(2)
	}
	public := underlay
	if c.PublicAddress != "" {
		if public, err = netip.ParseAddr(c.PublicAddress); err != nil || !public.Is4() {
			log.Error("--public-address must be an IPv4 address", "value", c.PublicAddress)
			os.Exit(2)
		}
	}
	if c.PublicPort == 0 {
		c.PublicPort = c.OverlayPort
	}
	instNet, err := netip.ParsePrefix(c.InstanceNetwork)
	if err != nil {
		log.Error("--instance-network must be a prefix", "value", c.InstanceNetwork)
		os.Exit(2)
	}
	if _, err := pprofserve.Start(c.Pprof, log); err != nil {
		log.Error("thicket-net failed to start", "err", err)
		os.Exit(1)
	}
	// One thicket-net per network namespace: New refuses to start beside
	// another, or on devices another data dir made (see package daemon).
	d, err := daemon.New(daemon.Config{
		Socket: c.Socket, DataDir: c.DataDir, Underlay: underlay, PublicIP: public, PublicPort: c.PublicPort,
		Port: c.OverlayPort, InstanceNetwork: instNet.Masked(), NetnsPrefix: netnsPrefix(c.DataDir),
		NoIsolation: !c.TenantIsolation,
	}, log)
	if err != nil {
		log.Error("thicket-net failed to start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Trimming.Start(ctx, log)
	err = d.Serve(ctx)
	d.Close()
	if err != nil {
		log.Error("thicket-net failed", "err", err)
		os.Exit(1)
	}
}

// netnsPrefix starts the names of the instance namespaces. They are global
// names (/run/netns): keep this node's apart from another node's on the same
// machine.
func netnsPrefix(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "thk" + hex.EncodeToString(sum[:2]) + "-"
}
