package commands

import (
	"fmt"
	"strings"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/oam"
)

// GetComponentDefsCmd is `thicket get componentdefinitions`.
type GetComponentDefsCmd struct{}

// Run lists the built-in component types and the caller's
// ComponentDefinitions.
func (c *GetComponentDefsCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.OAMComponentType, error) { return cl.OAMComponentTypes(e.Ctx) },
		[]string{"NAME", "KIND", "BASE", "WORKLOAD", "VIRTUALIZATION", "ARCH", "IMAGE"},
		func(t api.OAMComponentType) []string {
			if t.Kind != api.OAMKindDefinition {
				return []string{t.Name, t.Kind, "", t.Name, "container", "", ""}
			}
			return []string{t.Name, t.Kind, t.BaseComponent, t.Workload, t.Virtualization, strings.Join(t.Arch, ","), t.Image}
		})
}

// DeleteComponentDefCmd is `thicket delete componentdefinition`.
type DeleteComponentDefCmd struct {
	Name string `arg:"" help:"The ComponentDefinition's metadata.name."`
}

// Run deletes the definition.
func (c *DeleteComponentDefCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	if err := cl.DeleteOAMComponentDefinition(e.Ctx, c.Name); err != nil {
		return fmt.Errorf("delete component definition %s: %w", c.Name, err)
	}
	fmt.Fprintf(e.Out, "component definition %s deleted\n", c.Name)
	return nil
}

// applyOAMStream applies the OAM documents of a file: its
// ComponentDefinitions first, in order, then its Applications.
func (c *ApplyCmd) applyOAMStream(e *Env, cl *api.Client, body []byte) error {
	docs := oam.Documents(body)
	progress := e.Out
	if e.json() {
		progress = e.Err
	}
	var apps [][]byte
	for _, d := range docs {
		if oam.ManifestKind(d) != oam.KindComponentDefinition {
			apps = append(apps, d)
			continue
		}
		def, err := cl.ApplyOAMComponentDefinition(e.Ctx, d)
		if err != nil {
			return fmt.Errorf("register the component definition: %w", err)
		}
		fmt.Fprintf(progress, "component definition %s registered: %s %s of base component %s\n", def.Name, def.Virtualization, def.Workload, def.BaseComponent)
	}
	if len(apps) > 1 {
		return usagef("the file holds %d Applications: apply one at a time", len(apps))
	}
	if len(apps) == 1 {
		return c.applyOAM(e, cl, apps[0])
	}
	if e.json() {
		return writeJSON(e.Out, []api.Service{})
	}
	return nil
}
