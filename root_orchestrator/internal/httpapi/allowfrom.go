package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/sla"
)

// setAllowFrom answers PUT /api/service/{id}/allow-from: the service's
// allow_from replaced, checked as at a create (a malformed entry: 400
// listing them, nothing changes), carried to every node's rules with the
// service table; no instance restarts. A service of an OAM application
// takes its allow_from from the manifest (trait allow-from): 409.
func (s *Server) setAllowFrom(c echo.Context) error {
	sn := s.state.Snapshot()
	svc, err := ownedService(c, sn, c.Param("id"))
	if err != nil {
		return err
	}
	var body api.AllowFrom
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.AllowFrom == nil {
		return errBadRequest("allow_from is required (an empty list lets only the owner's instances in)", "allow_from")
	}
	if errs := sla.ValidateAllowFrom("allow_from", body.AllowFrom); len(errs) > 0 {
		return errs
	}
	if app := sn.App(svc.AppID); app != nil && app.OAM != nil {
		return &Error{Status: http.StatusConflict, Field: "allow_from", Message: fmt.Sprintf(
			"service %s belongs to OAM application %s: change its allow-from trait in the manifest (PUT /api/oam/applications/%s)", svc.Name, app.OAM.Name, app.OAM.Name)}
	}
	out, tk, err := s.state.SetAllowFrom(svc.ID, body.AllowFrom)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restService(s.state.Snapshot(), out))
}
