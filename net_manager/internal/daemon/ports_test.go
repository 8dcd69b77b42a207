package daemon

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestUpgradeState: a state file of an earlier version kept each
// instance's SLA port field as "ports"; loaded now, the instances publish
// the same ports, parsed. A file of this version is taken as it is.
func TestUpgradeState(t *testing.T) {
	tcp := func(host, inst int) wire.PortMapping {
		return wire.PortMapping{HostPort: host, InstancePort: inst, Protocol: wire.ProtocolTCP}
	}
	tests := []struct {
		name string
		file string
		want map[string][]wire.PortMapping
	}{
		{"earlier version", `{"subnet":"10.64.1.0/24","instances":{
			"web.0":{"key":"web.0","ip":"10.64.1.2","netns":"/run/netns/a","ports":"18080:8080;53/udp"},
			"db.0":{"key":"db.0","ip":"10.64.1.3","netns":"/run/netns/b"}}}`,
			map[string][]wire.PortMapping{
				"web.0": {tcp(18080, 8080), {HostPort: 53, InstancePort: 53, Protocol: wire.ProtocolUDP}},
				"db.0":  nil,
			}},
		{"earlier version, unparsable field: nothing published", `{"instances":{
			"web.0":{"key":"web.0","ip":"10.64.1.2","ports":"80:"}}}`,
			map[string][]wire.PortMapping{"web.0": nil}},
		{"this version", `{"instances":{
			"web.0":{"key":"web.0","ip":"10.64.1.2","port_mappings":[{"host_port":18080,"instance_port":8080,"protocol":"tcp"}]}}}`,
			map[string][]wire.PortMapping{"web.0": {tcp(18080, 8080)}}},
		{"no instances", `{"subnet":"10.64.1.0/24"}`, map[string][]wire.PortMapping{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := state{Instances: map[string]netapi.Attachment{}}
			if err := json.Unmarshal([]byte(tt.file), &st); err != nil {
				t.Fatal(err)
			}
			upgradeState([]byte(tt.file), &st)
			got := map[string][]wire.PortMapping{}
			for k, a := range st.Instances {
				if a.Key != k || a.IP == "" {
					t.Errorf("instance %s: %+v", k, a)
				}
				got[k] = a.Ports
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ports = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAttachRequestPorts: an attach request's ports are checked before
// anything else, parsed mappings and an earlier engine's port field alike;
// good ones pass on (here to a daemon without a subnet: not ready).
func TestAttachRequestPorts(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), st: state{Instances: map[string]netapi.Attachment{}}}
	h := d.handler()
	tests := []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"mappings", `{"port_mappings":[{"host_port":18080,"instance_port":8080,"protocol":"tcp"}]}`, http.StatusServiceUnavailable, "no subnet"},
		{"earlier engine's field", `{"ports":"18080:8080;53/udp"}`, http.StatusServiceUnavailable, "no subnet"},
		{"none", `{}`, http.StatusServiceUnavailable, "no subnet"},
		{"bad mapping", `{"port_mappings":[{"host_port":0,"instance_port":8080,"protocol":"tcp"}]}`, http.StatusInternalServerError, "ports: ports[0]: host port 0"},
		{"bad field", `{"ports":"80:"}`, http.StatusInternalServerError, "ports: invalid entry"},
		{"mappings win over the field", `{"port_mappings":[{"host_port":80,"instance_port":80,"protocol":"udp"}],"ports":"80:"}`, http.StatusServiceUnavailable, "no subnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/v1/instances/web.0", strings.NewReader(tt.body)))
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.msg) {
				t.Errorf("answer %d %s, want %d with %q", w.Code, w.Body, tt.code, tt.msg)
			}
		})
	}
}
