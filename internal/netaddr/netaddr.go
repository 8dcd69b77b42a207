// Package netaddr finds this machine's address for daemons that must tell
// others how to reach them.
package netaddr

import "net"

// FirstIPv4 returns the first IPv4 address of a network interface that is up
// and not a loopback, or 127.0.0.1 when there is none.
func FirstIPv4() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
