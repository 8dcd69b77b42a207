package sla

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParsePortsValid(t *testing.T) {
	tcp := func(h, c int) PortMapping { return PortMapping{HostPort: h, ContainerPort: c, Protocol: "tcp"} }
	udp := func(h, c int) PortMapping { return PortMapping{HostPort: h, ContainerPort: c, Protocol: "udp"} }
	tests := []struct {
		in   string
		want []PortMapping
	}{
		{"", nil},
		{"   ", nil},
		{";", nil},
		{"80:80/tcp", []PortMapping{tcp(80, 80)}},
		{"80:80", []PortMapping{tcp(80, 80)}},
		{"8080:80", []PortMapping{tcp(8080, 80)}},
		{"80", []PortMapping{tcp(80, 80)}},
		{"53/udp", []PortMapping{udp(53, 53)}},
		{"53:5353/UDP", []PortMapping{udp(53, 5353)}},
		{"80:80/Tcp", []PortMapping{tcp(80, 80)}},
		{"1:65535", []PortMapping{tcp(1, 65535)}},
		{"65535", []PortMapping{tcp(65535, 65535)}},
		{"080:80", []PortMapping{tcp(80, 80)}},
		{"80:80;443:443", []PortMapping{tcp(80, 80), tcp(443, 443)}},
		{"80:80;443:443;", []PortMapping{tcp(80, 80), tcp(443, 443)}},
		{" 80:80 ; 53:53/udp ; ", []PortMapping{tcp(80, 80), udp(53, 53)}},
		{"\t80:80\n", []PortMapping{tcp(80, 80)}},
		// same host port with different protocols is fine
		{"53:53/tcp;53:53/udp", []PortMapping{tcp(53, 53), udp(53, 53)}},
		// same container port on two host ports is fine
		{"8080:80;8081:80", []PortMapping{tcp(8080, 80), tcp(8081, 80)}},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if err != nil {
			t.Errorf("ParsePorts(%q): unexpected error %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParsePortsInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantMsg string // substring of the error
	}{
		{"abc", `"abc" is not a number`},
		{"80:", "container port is empty"},
		{":80", "host port is empty"},
		{"0:80", "host port 0 is out of range"},
		{"80:0", "container port 0 is out of range"},
		{"0", "out of range"},
		{"70000:80", "host port 70000 is out of range"},
		{"80:70000", "container port 70000 is out of range"},
		{"123456:80", "out of range"},
		{"99999999999999999999999:80", "out of range"},
		{"80:80/sctp", `protocol "sctp" is not tcp or udp`},
		{"80:80/", "protocol after '/' is empty"},
		{"80:80/tcp/udp", "not tcp or udp"},
		{"80:80:80", "is not a number"},
		{"-1:80", "is not a number"},
		{"+80:80", "is not a number"},
		{"80 :80", "is not a number"},
		{"0x50:80", "is not a number"},
		{"80:80;;443:443", "entry 2 is empty"},
		{";80:80", "entry 1 is empty"},
		{"80:80;80:8080", "host port 80/tcp is mapped twice"},
		{"80;80:80/TCP", "host port 80/tcp is mapped twice"},
		{"53/udp;53:54/udp", "host port 53/udp is mapped twice"},
		{"８０:80", "is not a number"},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if err == nil {
			t.Errorf("ParsePorts(%q) = %+v, want error containing %q", tt.in, got, tt.wantMsg)
			continue
		}
		if got != nil {
			t.Errorf("ParsePorts(%q) returned mappings %+v together with error", tt.in, got)
		}
		if !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("ParsePorts(%q) error = %q, want it to contain %q", tt.in, err, tt.wantMsg)
		}
	}
}

// formatPorts writes mappings back in the canonical "h:c/p;..." form.
func formatPorts(ms []PortMapping) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = strconv.Itoa(m.HostPort) + ":" + strconv.Itoa(m.ContainerPort) + "/" + m.Protocol
	}
	return strings.Join(parts, ";")
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{
		"", ";", "80", "80:80", "80:80/tcp", "53:53/udp;80:8080/TCP;", " 1:65535 ; 2/udp ",
		"abc", "80:", "0:80", "70000:80", "80:80/sctp", "80:80;80:80", "80:80:80", "80;;81",
		"00000080:80", "-1", "1/", "/udp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParsePorts(s)
		if err != nil {
			if ms != nil {
				t.Fatalf("ParsePorts(%q) returned %+v with error %v", s, ms, err)
			}
			return
		}
		for _, m := range ms {
			if m.HostPort < 1 || m.HostPort > 65535 || m.ContainerPort < 1 || m.ContainerPort > 65535 {
				t.Fatalf("ParsePorts(%q): port out of range in %+v", s, m)
			}
			if m.Protocol != "tcp" && m.Protocol != "udp" {
				t.Fatalf("ParsePorts(%q): bad protocol in %+v", s, m)
			}
		}
		again, err := ParsePorts(formatPorts(ms))
		if err != nil {
			t.Fatalf("ParsePorts(%q) = %+v, but its formatted form %q fails: %v", s, ms, formatPorts(ms), err)
		}
		if !reflect.DeepEqual(ms, again) {
			t.Fatalf("ParsePorts(%q) = %+v, but reparsing %q gives %+v", s, ms, formatPorts(ms), again)
		}
	})
}
