package sla

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePorts parses a microservice's port field,
// "host:container[/proto];host:container[/proto];...".
//
// An entry may also be just "container[/proto]", in which case the host port
// equals the container port. The protocol is tcp or udp (case-insensitive,
// default tcp; the result is always lower case). Ports are decimal numbers in
// 1..65535. Whitespace around entries is ignored, and so are empty entries at
// the end (a trailing ';'); an empty entry elsewhere is an error. The same
// host port and protocol may be mapped only once.
//
// An empty (or blank) field gives nil, nil.
func ParsePorts(s string) ([]PortMapping, error) {
	entries := strings.Split(s, ";")
	for i := range entries {
		entries[i] = strings.TrimSpace(entries[i])
	}
	for len(entries) > 0 && entries[len(entries)-1] == "" {
		entries = entries[:len(entries)-1]
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out := make([]PortMapping, 0, len(entries))
	type hostKey struct {
		port  int
		proto string
	}
	seen := make(map[hostKey]string, len(entries))
	for i, e := range entries {
		if e == "" {
			return nil, fmt.Errorf("entry %d is empty (entries are separated by ';')", i+1)
		}
		m, err := parsePortEntry(e)
		if err != nil {
			return nil, fmt.Errorf("invalid entry %q: %v (want host:container[/tcp|udp])", e, err)
		}
		k := hostKey{m.HostPort, m.Protocol}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("host port %d/%s is mapped twice (%q and %q)", m.HostPort, m.Protocol, prev, e)
		}
		seen[k] = e
		out = append(out, m)
	}
	return out, nil
}

// parsePortEntry parses one trimmed, non-empty "host:container[/proto]" or
// "container[/proto]" entry.
func parsePortEntry(e string) (PortMapping, error) {
	m := PortMapping{Protocol: "tcp"}
	ports, proto, hasProto := strings.Cut(e, "/")
	if hasProto {
		switch strings.ToLower(proto) {
		case "tcp":
		case "udp":
			m.Protocol = "udp"
		case "":
			return m, fmt.Errorf("protocol after '/' is empty")
		default:
			return m, fmt.Errorf("protocol %q is not tcp or udp", proto)
		}
	}
	host, ctr, hasHost := strings.Cut(ports, ":")
	var err error
	if hasHost {
		if m.HostPort, err = parsePort("host", host); err != nil {
			return m, err
		}
		if m.ContainerPort, err = parsePort("container", ctr); err != nil {
			return m, err
		}
	} else {
		if m.ContainerPort, err = parsePort("container", ports); err != nil {
			return m, err
		}
		m.HostPort = m.ContainerPort
	}
	return m, nil
}

// parsePort parses a port number in 1..65535 written with decimal digits only.
func parsePort(what, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%s port is empty", what)
	}
	if len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		if strings.TrimLeft(s, "0123456789") == "" {
			return 0, fmt.Errorf("%s port %s is out of range 1-65535", what, s)
		}
		return 0, fmt.Errorf("%s port %q is not a number", what, s)
	}
	n, _ := strconv.Atoi(s) // at most 5 digits: cannot fail
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s port %d is out of range 1-65535", what, n)
	}
	return n, nil
}
