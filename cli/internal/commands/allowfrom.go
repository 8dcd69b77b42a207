package commands

import (
	"fmt"
	"strings"

	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// AllowFromCmd is `thicket allow-from SERVICE [PEER...]`: show or replace
// who else may connect to a service's instances (README: Tenancy).
type AllowFromCmd struct {
	Service string   `arg:"" help:"Service id, app/service or unique service name."`
	Peers   []string `arg:"" optional:"" name:"PEER" help:"The new list: user, user/app or user/app/service (without PEER and --none: show the list)."`
	None    bool     `help:"Let only the owner's instances in (an empty list)."`
}

// Run shows the list, or replaces it and shows the new one.
func (c *AllowFromCmd) Run(e *Env) error {
	if c.None && len(c.Peers) > 0 {
		return usagef("--none takes no PEER")
	}
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	if c.None || len(c.Peers) > 0 {
		if svc, err = cl.SetAllowFrom(e.Ctx, svc.MicroserviceID, c.Peers); err != nil {
			return fmt.Errorf("allow-from of %s: %w", label, err)
		}
	}
	if e.json() {
		return writeJSON(e.Out, map[string]any{"service": label, "allow_from": orNone(svc.AllowFrom)})
	}
	if len(svc.AllowFrom) == 0 {
		fmt.Fprintf(e.Out, "%s: only its owner's instances may connect\n", label)
		return nil
	}
	fmt.Fprintf(e.Out, "%s: its owner's instances and %s may connect\n", label, strings.Join(svc.AllowFrom, ", "))
	return nil
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
