package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxConcurrent is Policy.MaxConcurrent when zero.
const DefaultMaxConcurrent = 2

// ErrRefused marks a code URL the node's policy refuses.
var ErrRefused = errors.New("refused by the node's code policy")

// Policy decides where a node fetches code from. Its zero value is the
// default: any public address, over any URL, pinned by sha256, two
// downloads at a time. Loopback, private, link-local, unspecified,
// multicast and other special-purpose addresses are refused unless
// Networks allows them, both when the host name is resolved and again at
// every connection (a host name that resolves to a public address first
// and a private one at dial time is still refused).
//
// A Policy is safe for concurrent use; share one between the runtimes so
// that MaxConcurrent bounds the node's downloads.
type Policy struct {
	// URLPrefixes, if any, are the only URLs code may come from
	// ("https://code.example.com/wasm/").
	URLPrefixes []string
	// Networks are the non-public networks code may come from
	// (e.g. 10.0.0.0/8 for a server on the LAN; 127.0.0.0/8 in
	// development).
	Networks []netip.Prefix
	// AllowUnpinned accepts URLs without a #sha256= fragment (development).
	AllowUnpinned bool
	// MaxConcurrent bounds the downloads at once (DefaultMaxConcurrent if
	// zero or less).
	MaxConcurrent int

	once sync.Once
	sem  chan struct{}
}

// special are the address ranges that are not public beyond what
// netip.Addr's predicates tell (RFC 6890 and successors).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
}

// addrKind names why a is not public, or "" when it is.
func addrKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsPrivate():
		return "a private address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case !a.IsGlobalUnicast():
		return "not a unicast address"
	}
	for _, p := range special {
		if p.Contains(a) {
			return "a special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

// netHint says how to allow a refused address.
const netHint = " (thicket-node --code-allow-net allows a network)"

// CheckAddr returns nil if code may come from a, else why not.
func (p *Policy) CheckAddr(a netip.Addr) error {
	if kind := p.refusedKind(a); kind != "" {
		return fmt.Errorf("%w: %s is %s"+netHint, ErrRefused, a.Unmap(), kind)
	}
	return nil
}

// refusedKind is what kind of address a is when p refuses it, else "".
func (p *Policy) refusedKind(a netip.Addr) string {
	a = a.Unmap()
	kind := addrKind(a)
	if kind == "" {
		return ""
	}
	for _, n := range p.Networks {
		if n.Contains(a) {
			return ""
		}
	}
	return kind
}

// CheckURL checks what can be checked without the network: the URL
// prefixes, the pin, and the host when it is an address. Runtimes call it
// before every start, cached code included.
func (p *Policy) CheckURL(what string, src Source) error {
	if err := p.checkPrefix(src.URL); err != nil {
		return fmt.Errorf("%s URL %s: %w", what, src.URL, err)
	}
	if src.Digest == "" && !p.AllowUnpinned {
		return fmt.Errorf("%s URL %s: %w: no #sha256=<hex> pin (thicket-node --code-allow-unpinned accepts it)", what, src.URL, ErrRefused)
	}
	if a, err := netip.ParseAddr(strings.Trim(hostOnly(src.Host), "[]")); err == nil {
		if err := p.CheckAddr(a); err != nil {
			return fmt.Errorf("%s URL %s: %w", what, src.URL, err)
		}
	}
	return nil
}

func (p *Policy) checkPrefix(u string) error {
	if len(p.URLPrefixes) == 0 {
		return nil
	}
	for _, pre := range p.URLPrefixes {
		if strings.HasPrefix(u, pre) {
			return nil
		}
	}
	return fmt.Errorf("%w: not under an allowed URL prefix (thicket-node --code-allow-url)", ErrRefused)
}

// hostOnly is host[:port] without the port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// Check is CheckURL, and resolves the URL's host to check every address
// it has (a download then checks them again as it connects).
func (p *Policy) Check(ctx context.Context, what string, src Source) error {
	if err := p.CheckURL(what, src); err != nil {
		return err
	}
	host := strings.Trim(hostOnly(src.Host), "[]")
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%s URL %s: resolve %s: %w", what, src.URL, host, err)
	}
	for _, a := range addrs {
		if kind := p.refusedKind(a); kind != "" {
			return fmt.Errorf("%s URL %s: %w: %s resolves to %s, %s"+netHint, what, src.URL, ErrRefused, host, a.Unmap(), kind)
		}
	}
	return nil
}

// Client returns an HTTP client for downloads under p: each connection's
// address is checked as it is made, redirects are checked against the
// URL prefixes, no proxy is used, and a request takes at most timeout.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{
		Timeout: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: dial %s: %v", ErrRefused, address, err)
			}
			return p.CheckAddr(ap.Addr())
		},
	}
	tr := &http.Transport{
		Proxy:               nil, // a proxy would hide the destination from the check
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: 30 * time.Second,
		MaxIdleConns:        4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return p.checkPrefix(req.URL.String())
		},
	}
}

// acquire waits for a download slot; release it by calling the function
// returned.
func (p *Policy) acquire(ctx context.Context) (func(), error) {
	p.once.Do(func() {
		n := p.MaxConcurrent
		if n <= 0 {
			n = DefaultMaxConcurrent
		}
		p.sem = make(chan struct{}, n)
	})
	select {
	case p.sem <- struct{}{}:
		return func() { <-p.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a download slot: %w", context.Cause(ctx))
	}
}
