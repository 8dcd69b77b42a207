package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// restSecurity is a service's security field as the API shows it.
func restSecurity(s *wire.Security) *api.Security {
	if s == nil {
		return nil
	}
	return &api.Security{Privileged: s.Privileged, CapAdd: s.CapAdd, PidsLimit: s.PidsLimit, Compat32: s.Compat32}
}

// checkSandbox refuses (403, naming the field) an SLA in which a
// microservice asks for more than the default sandbox (privileged, added
// capabilities) unless the caller is an administrator.
func checkSandbox(c echo.Context, d *sla.SLA) error {
	if caller(c).admin() {
		return nil
	}
	for i, a := range d.Applications {
		for j, m := range a.Microservices {
			if !m.Security.Elevated() {
				continue
			}
			field := "applications[" + strconv.Itoa(i) + "].microservices[" + strconv.Itoa(j) + "].security"
			return &Error{Status: http.StatusForbidden, Field: field,
				Message: field + ": privileged containers and added capabilities are for administrators' applications only"}
		}
	}
	return nil
}
