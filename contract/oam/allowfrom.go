package oam

import (
	"github.com/thicket-edge/thicket/contract/sla"
	"go.yaml.in/yaml/v3"
)

// TraitAllowFrom names the peers outside the owner's instances that may
// connect to a component's instances over the overlay: the SLA's
// allow_from (README: Tenancy). TraitNetworkPolicy is another name for it.
const (
	TraitAllowFrom     = "allow-from"
	TraitNetworkPolicy = "network-policy"
)

// AllowFromTrait is a component's allow_from.
type AllowFromTrait struct {
	// From are the entries (user, user/app or user/app/service), checked
	// as the SLA checks them.
	From []string
}

var allowFromTraitDefinition = TraitDefinition{TraitAllowFrom, []string{TraitNetworkPolicy},
	"who else may open connections to the component's instances over the overlay (the owner's own instances always may): from lists users (user), applications (user/app) or services (user/app/service); a new revision that changes only this changes the rules without restarting anything",
	all, []string{"from"}}

// allowFromTrait reads the properties of an allow-from trait at path.
func (w *walker) allowFromTrait(path string, props *yaml.Node) *AllowFromTrait {
	a := &AllowFromTrait{From: []string{}}
	seen := w.object(path, props, []field{
		{"from", func(p string, n *yaml.Node) {
			a.From = w.uniqueStrs(p, n, sla.MaxAllowFrom, "entry", func(s string) string {
				if _, err := sla.ParsePeer(s); err != nil {
					return err.Error()
				}
				return ""
			})
		}},
	})
	w.required(path, props, seen, "from")
	return a
}
