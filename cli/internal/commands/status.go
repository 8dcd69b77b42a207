package commands

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/thicket-edge/thicket/api"
)

// StatusCmd is `thicket status`.
type StatusCmd struct{}

// counts is active of total.
type counts struct {
	Active int `json:"active"`
	Total  int `json:"total"`
}

// statusDoc is what `thicket status -o json` prints.
type statusDoc struct {
	Server       string         `json:"server"`
	Health       string         `json:"health"`
	User         string         `json:"user,omitempty"`
	Role         string         `json:"role,omitempty"`
	Clusters     *counts        `json:"clusters,omitzero"`
	Nodes        *counts        `json:"nodes,omitzero"`
	Applications *int           `json:"applications,omitzero"`
	Services     map[string]int `json:"services,omitzero"`
	Instances    map[string]int `json:"instances,omitzero"`
}

// Run shows the server's health and, when logged in, a summary.
func (c *StatusCmd) Run(e *Env) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	doc := statusDoc{Server: cl.Address(), Health: "ok"}
	if err := cl.Health(e.Ctx); err != nil {
		return err
	}
	if loggedIn(cl) {
		if err := c.summary(e, cl, &doc); err != nil {
			return err
		}
	}
	if e.json() {
		return writeJSON(e.Out, doc)
	}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "server\t%s (%s)\n", doc.Server, doc.Health)
	if doc.User == "" {
		fmt.Fprintf(tw, "user\tnot logged in (thicket login)\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "user\t%s (%s)\n", doc.User, doc.Role)
	fmt.Fprintf(tw, "clusters\t%d active / %d\n", doc.Clusters.Active, doc.Clusters.Total)
	fmt.Fprintf(tw, "nodes\t%d active / %d\n", doc.Nodes.Active, doc.Nodes.Total)
	fmt.Fprintf(tw, "applications\t%d\n", *doc.Applications)
	fmt.Fprintf(tw, "services\t%s\n", byState(doc.Services))
	fmt.Fprintf(tw, "instances\t%s\n", byState(doc.Instances))
	return tw.Flush()
}

func (c *StatusCmd) summary(e *Env, cl *api.Client, doc *statusDoc) error {
	cls, err := cl.Clusters(e.Ctx)
	if err != nil {
		return err
	}
	doc.Clusters, doc.Nodes = &counts{}, &counts{}
	for _, c := range cls {
		doc.Clusters.Total++
		if c.Active {
			doc.Clusters.Active++
		}
		for _, n := range c.Nodes {
			doc.Nodes.Total++
			if n.Active && c.Active {
				doc.Nodes.Active++
			}
		}
	}
	apps, err := cl.Applications(e.Ctx)
	if err != nil {
		return err
	}
	n := len(apps)
	doc.Applications = &n
	svcs, err := servicesOf(e.Ctx, cl, apps)
	if err != nil {
		return err
	}
	doc.Services, doc.Instances = map[string]int{}, map[string]int{}
	for _, s := range svcs {
		doc.Services[s.Status]++
		for _, in := range s.InstanceList {
			doc.Instances[in.Status]++
		}
	}
	session := cl.Session()
	doc.User, doc.Role = session.Username, session.Role
	return nil
}

// byState renders counts by state: "3: 2 RUNNING, 1 NO_CAPACITY", the
// largest first; "0" when empty.
func byState(m map[string]int) string {
	total := 0
	states := make([]string, 0, len(m))
	for s, n := range m {
		total += n
		states = append(states, s)
	}
	if total == 0 {
		return "0"
	}
	slices.SortFunc(states, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%d %s", m[s], s)
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}

// VersionCmd is `thicket version`.
type VersionCmd struct{}

// Run prints the version.
func (c *VersionCmd) Run(e *Env) error {
	fmt.Fprintf(e.Out, "thicket %s (%s, %s/%s)\n", version(e.Version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// version is the version set at build time (-ldflags "-X main.version=..."),
// else the module's, else "dev".
func version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
