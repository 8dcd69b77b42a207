package commands

import (
	"fmt"

	"github.com/thicket-edge/thicket/api"
)

// QuotaCmd is `thicket quota`: a user's quota and what the user's
// instances take of it.
type QuotaCmd struct {
	Get QuotaGetCmd `cmd:"" help:"Show a user's quota and its use (yours without USER)."`
	Set QuotaSetCmd `cmd:"" help:"Set a user's quota (admins); 0 is no bound, all 0 removes it."`
}

// QuotaGetCmd is `thicket quota get [USER]`.
type QuotaGetCmd struct {
	User string `arg:"" optional:"" help:"User name (default: you)."`
}

// Run prints the quota.
func (c *QuotaGetCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	var st *api.QuotaStatus
	if c.User == "" {
		st, err = cl.MyQuota(e.Ctx)
	} else {
		st, err = cl.Quota(e.Ctx, c.User)
	}
	if err != nil {
		return fmt.Errorf("quota: %w", err)
	}
	return printQuota(e, st)
}

// QuotaSetCmd is `thicket quota set USER`.
type QuotaSetCmd struct {
	User      string `arg:"" help:"User name."`
	Instances int    `help:"Instances at most (0: no bound)."`
	CPU       int64  `name:"cpu" placeholder:"MILLICORES" help:"CPU at most, in thousandths of a core (a service's vcpus × 1000 per instance; 0: no bound)."`
	Memory    int64  `placeholder:"MIB" help:"Memory at most, in MiB (0: no bound)."`
}

// Run sets the quota and prints it.
func (c *QuotaSetCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	st, err := cl.SetQuota(e.Ctx, c.User, api.Quota{Instances: c.Instances, MilliCPU: c.CPU, MemoryMB: c.Memory})
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", c.User, err)
	}
	return printQuota(e, st)
}

func printQuota(e *Env, st *api.QuotaStatus) error {
	if e.json() {
		return writeJSON(e.Out, st)
	}
	bound := func(v int64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprint(v)
	}
	rows := [][]string{
		{"instances", fmt.Sprint(st.Used.Instances), bound(int64(st.Quota.Instances))},
		{"cpu (millicores)", fmt.Sprint(st.Used.MilliCPU), bound(st.Quota.MilliCPU)},
		{"memory (MiB)", fmt.Sprint(st.Used.MemoryMB), bound(st.Quota.MemoryMB)},
	}
	fmt.Fprintf(e.Out, "quota of %s (-: no bound)\n", st.Username)
	return writeTable(e.Out, []string{"RESOURCE", "USED", "QUOTA"}, rows)
}
