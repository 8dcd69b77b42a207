package sla

import (
	"fmt"
	"regexp"
	"strings"
)

// Tenancy on the overlay: the unit of isolation is the user who owns an
// application (its tenant). An instance accepts new connections over the
// overlay (to its instance IP, or to a service IP that leads to it) only
// from instances of the same user, and from the peers its service's
// allow_from names. Each entry names a peer by path:
//
//	"bob"             every instance of user bob
//	"bob/shop"        every instance of bob's application shop
//	"bob/shop/cart"   the instances of service cart of bob's application shop
//
// Application and service names match any namespace. A name that matches
// nothing (yet) allows nothing until it does.

// Units of tenant isolation an application may ask for (Application.
// Isolation): the owning user (the default) or the application alone.
const (
	IsolationUser        = "user"
	IsolationApplication = "application"
)

// MaxAllowFrom bounds the entries of one allow_from list.
const MaxAllowFrom = 64

// userNameRE is the form of a user name (as the root's users API takes it).
var userNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Peer is one parsed allow_from entry. App and Service are "" when the
// entry names a whole user (or a whole application).
type Peer struct {
	User    string
	App     string
	Service string
}

// String is the entry as written.
func (p Peer) String() string {
	s := p.User
	if p.App != "" {
		s += "/" + p.App
	}
	if p.Service != "" {
		s += "/" + p.Service
	}
	return s
}

// ParsePeer parses an allow_from entry.
func ParsePeer(s string) (Peer, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return Peer{}, fmt.Errorf("%q has %d parts: write user, user/application or user/application/service", s, len(parts))
	}
	if !userNameRE.MatchString(parts[0]) {
		return Peer{}, fmt.Errorf("%q: user %q must match %s", s, parts[0], userNameRE)
	}
	p := Peer{User: parts[0]}
	for i, part := range parts[1:] {
		if !NameRE.MatchString(part) {
			what := []string{"application", "service"}[i]
			return Peer{}, fmt.Errorf("%q: %s %q must match %s", s, what, part, NameRE)
		}
	}
	if len(parts) > 1 {
		p.App = parts[1]
	}
	if len(parts) > 2 {
		p.Service = parts[2]
	}
	return p, nil
}

// ValidateAllowFrom checks an allow_from list at path.
func ValidateAllowFrom(path string, entries []string) Errors {
	return validateList(path, entries, MaxAllowFrom, "entry", "entries", func(e string) string {
		if _, err := ParsePeer(e); err != nil {
			return err.Error()
		}
		return ""
	})
}
