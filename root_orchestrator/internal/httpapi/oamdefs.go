package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/oam"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// OAM ComponentDefinitions: a user's implementations of base components
// (contract/oam/definition.go), kept in the store as written. The caller's
// definitions resolve the base components of the OAM applications the
// caller submits; an application keeps what it was compiled to when a
// definition changes or goes, until its next revision.

// catalog is the owner's definitions by base component, in the order they
// were registered.
func (s *Server) catalog(ctx context.Context, owner string) (oam.Catalog, error) {
	defs, err := s.store.ComponentDefinitions(ctx, owner)
	if err != nil {
		return nil, err
	}
	cat := oam.Catalog{}
	for _, d := range defs {
		pd, err := oam.ParseComponentDefinition([]byte(d.Manifest))
		if err != nil {
			// Stored only after it parsed: a newer parser refuses it.
			s.log.Warn("a stored component definition no longer parses; ignored", "owner", owner, "name", d.Name, "err", err)
			continue
		}
		cat[pd.Base] = append(cat[pd.Base], *pd)
	}
	return cat, nil
}

func restDefinition(d *oam.ComponentDefinition, stored *store.ComponentDefinition) api.OAMComponentType {
	props := []string{}
	for _, t := range oam.ComponentTypes() {
		if t.Name == d.Workload {
			for _, p := range t.Properties {
				if p != "image" {
					props = append(props, p)
				}
			}
		}
	}
	desc := d.Description
	if desc == "" {
		desc = fmt.Sprintf("an implementation of base component %s: %s %s", d.Base, d.Virtualization, d.Workload)
	}
	out := api.OAMComponentType{Name: d.Name, Description: desc, Properties: props, Kind: api.OAMKindDefinition,
		BaseComponent: d.Base, Workload: d.Workload, Virtualization: d.Virtualization, Image: d.Image, SHA256: d.SHA256,
		Arch: d.Arch}
	if stored != nil {
		t := stored.CreatedAt
		out.Manifest, out.CreatedAt = stored.Manifest, &t
	}
	return out
}

// applyComponentDefinition registers a ComponentDefinition, or replaces
// the caller's of its name. All definitions of one base component must
// share a workload type (it decides the component's properties and
// traits).
func (s *Server) applyComponentDefinition(c echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if tooLarge(err) {
		return errTooLarge
	} else if err != nil {
		return errBadRequest("read body: "+err.Error(), "")
	}
	d, err := oam.ParseComponentDefinition(body)
	if err != nil {
		return err
	}
	ctx, owner := c.Request().Context(), caller(c).Username
	defs, err := s.store.ComponentDefinitions(ctx, owner)
	if err != nil {
		return err
	}
	for _, o := range defs {
		od, err := oam.ParseComponentDefinition([]byte(o.Manifest))
		if err != nil || o.Name == d.Name || od.Base != d.Base || od.Workload == d.Workload {
			continue
		}
		return &Error{Status: http.StatusConflict, Field: "spec.workload.type", Message: fmt.Sprintf(
			"base component %s is a %s (definition %s): every implementation of a base component has the same workload type",
			d.Base, od.Workload, o.Name)}
	}
	stored := store.ComponentDefinition{Owner: owner, Name: d.Name, Base: d.Base, Manifest: string(body)}
	// 200 either way, as every success of this API (README: Compatibility).
	if _, err := s.store.PutComponentDefinition(ctx, stored); err != nil {
		return err
	}
	got, err := s.storedDefinition(ctx, owner, d.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restDefinition(d, got))
}

func (s *Server) storedDefinition(ctx context.Context, owner, name string) (*store.ComponentDefinition, error) {
	defs, err := s.store.ComponentDefinitions(ctx, owner)
	if err != nil {
		return nil, err
	}
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i], nil
		}
	}
	return nil, &Error{Status: http.StatusNotFound, Message: "component definition " + name + " not found"}
}

// listOAMComponentTypes lists the built-in component types and the
// caller's ComponentDefinitions.
func (s *Server) listOAMComponentTypes(c echo.Context) error {
	out := []api.OAMComponentType{}
	for _, t := range oam.ComponentTypes() {
		out = append(out, api.OAMComponentType{Name: t.Name, Description: t.Description, Properties: t.Properties, Kind: api.OAMKindBuiltin})
	}
	defs, err := s.store.ComponentDefinitions(c.Request().Context(), caller(c).Username)
	if err != nil {
		return err
	}
	for i := range defs {
		d, err := oam.ParseComponentDefinition([]byte(defs[i].Manifest))
		if err != nil {
			continue
		}
		out = append(out, restDefinition(d, &defs[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getComponentDefinition(c echo.Context) error {
	stored, err := s.storedDefinition(c.Request().Context(), caller(c).Username, c.Param("name"))
	if err != nil {
		return err
	}
	d, err := oam.ParseComponentDefinition([]byte(stored.Manifest))
	if err != nil {
		return fmt.Errorf("stored component definition %s: %w", stored.Name, err)
	}
	return c.JSON(http.StatusOK, restDefinition(d, stored))
}

// deleteComponentDefinition deletes one of the caller's definitions. The
// applications made with it keep running as compiled; their next revision
// resolves the base component again.
func (s *Server) deleteComponentDefinition(c echo.Context) error {
	name := c.Param("name")
	if err := s.store.DeleteComponentDefinition(c.Request().Context(), caller(c).Username, name); err != nil {
		if err == store.ErrNotFound {
			return &Error{Status: http.StatusNotFound, Message: "component definition " + name + " not found"}
		}
		return err
	}
	return message(c, "component definition deleted")
}
