package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TestAttachPublishesPorts: the engine asks the net manager to publish the
// ports of the spec, parsed, whether the cluster sent them parsed or (from
// a root that predates that) only as the SLA's field; a field that does not
// parse fails the attach without asking.
func TestAttachPublishesPorts(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "net.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	bodies := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		_ = json.NewEncoder(w).Encode(netapi.Attachment{Key: "web.0", IP: "10.64.1.2", Netns: "/run/netns/x"})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	e := New(Config{NetSocket: socket}, runtimes.NewRegistry(), slog.New(slog.DiscardHandler))
	ports := []wire.PortMapping{{HostPort: 18080, InstancePort: 8080, Protocol: wire.ProtocolTCP},
		{HostPort: 53, InstancePort: 53, Protocol: wire.ProtocolUDP}}
	const want = `{"port_mappings":[{"host_port":18080,"instance_port":8080,"protocol":"tcp"},{"host_port":53,"instance_port":53,"protocol":"udp"}]}`
	tests := []struct {
		name string
		spec wire.InstanceSpec
		body string // "" for an attach that fails before asking
	}{
		{"parsed", wire.InstanceSpec{Key: "web.0", Port: "18080:8080;53/udp", Ports: ports}, want},
		{"field only", wire.InstanceSpec{Key: "web.0", Port: "18080:8080;53/udp"}, want},
		{"no ports", wire.InstanceSpec{Key: "web.0"}, `{}`},
		{"field that does not parse", wire.InstanceSpec{Key: "web.0", Port: "80:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.attach(context.Background(), &tt.spec)
			if tt.body == "" {
				if err == nil {
					t.Fatal("attach succeeded")
				}
				select {
				case b := <-bodies:
					t.Fatalf("asked the net manager with %s", b)
				default:
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b := <-bodies; b != tt.body {
				t.Errorf("attach request %s, want %s", b, tt.body)
			}
			if tt.spec.Labels[runtimes.LabelNetNS] != "/run/netns/x" {
				t.Errorf("labels %v: want the namespace", tt.spec.Labels)
			}
		})
	}
}
