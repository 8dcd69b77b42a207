package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	rest "github.com/thicket-edge/thicket/contract/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// readSLA reads and decodes an SLA body; validation is the caller's.
func readSLA(c echo.Context) (*sla.SLA, error) {
	body, err := io.ReadAll(c.Request().Body)
	if tooLarge(err) {
		return nil, errTooLarge
	} else if err != nil {
		return nil, errBadRequest("read body: "+err.Error(), "")
	}
	return sla.Decode(body)
}

// ownedApp returns an application the caller may see; others' applications
// are reported as not found, so that their ids leak nothing.
func (s *Server) ownedApp(c echo.Context, id string) (*rest.Application, error) {
	app, err := s.store.GetApplication(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if p := caller(c); !p.admin() && app.UserID != p.Username {
		return nil, errNotFound
	}
	return app, nil
}

// ownedService returns a service the caller may see.
func (s *Server) ownedService(c echo.Context, id string) (*rest.Service, error) {
	svc, err := s.store.GetService(c.Request().Context(), id)
	if err != nil {
		return nil, err
	}
	if p := caller(c); !p.admin() && svc.UserID != p.Username {
		return nil, errNotFound
	}
	svc.Status, svc.StatusDetail = rest.Summarize(svc.InstanceList)
	return svc, nil
}

// createApplications stores every application of a full SLA, owned by the
// caller (the SLA's customerID is not trusted), and answers with all of the
// caller's applications as the reference does.
func (s *Server) createApplications(c echo.Context) error {
	d, err := readSLA(c)
	if err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	p := caller(c)
	if _, err := s.store.CreateApplications(c.Request().Context(), p.Username, d); err != nil {
		return err
	}
	apps, err := s.store.ListApplications(c.Request().Context(), p.Username)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apps)
}

// listScope is the owner whose applications and services the caller may
// list: their own, or everyone's ("") for an admin.
func listScope(c echo.Context) string {
	if p := caller(c); !p.admin() {
		return p.Username
	}
	return ""
}

// withStatus fills in each service's status summary from its instances.
func withStatus(svcs []rest.Service) []rest.Service {
	for i := range svcs {
		svcs[i].Status, svcs[i].StatusDetail = rest.Summarize(svcs[i].InstanceList)
	}
	return svcs
}

// listApplications: admins see all applications, users their own.
func (s *Server) listApplications(c echo.Context) error {
	apps, err := s.store.ListApplications(c.Request().Context(), listScope(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apps)
}

func (s *Server) listUserApplications(c echo.Context) error {
	p, user := caller(c), c.Param("userid")
	if !p.admin() && p.Username != user {
		return errForbidden
	}
	apps, err := s.store.ListApplications(c.Request().Context(), user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apps)
}

func (s *Server) getApplication(c echo.Context) error {
	app, err := s.ownedApp(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, app)
}

func (s *Server) updateApplication(c echo.Context) error {
	id := c.Param("id")
	if _, err := s.ownedApp(c, id); err != nil {
		return err
	}
	var u rest.ApplicationUpdate
	if err := decodeJSON(c, &u); err != nil {
		return err
	}
	if u.ApplicationName != "" && !sla.NameRE.MatchString(u.ApplicationName) {
		return errBadRequest("application_name must match "+sla.NameRE.String(), "application_name")
	}
	if u.ApplicationNamespace != "" && !sla.NameRE.MatchString(u.ApplicationNamespace) {
		return errBadRequest("application_namespace must match "+sla.NameRE.String(), "application_namespace")
	}
	if u.ApplicationDesc != nil && len(*u.ApplicationDesc) > 500 {
		return errBadRequest("application_desc is longer than 500 characters", "application_desc")
	}
	app, err := s.store.UpdateApplication(c.Request().Context(), id, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, app)
}

func (s *Server) deleteApplication(c echo.Context) error {
	id := c.Param("id")
	if _, err := s.ownedApp(c, id); err != nil {
		return err
	}
	if err := s.store.DeleteApplication(c.Request().Context(), id); err != nil {
		return err
	}
	s.Changed()
	return message(c, "Application Deleted")
}

// createServices adds the services of an SLA to the existing application
// named by its applicationID. The answer carries the reference's job_id (the
// last new service's id) and all new services.
func (s *Server) createServices(c echo.Context) error {
	d, err := readSLA(c)
	if err != nil {
		return err
	}
	if len(d.Applications) > 1 {
		return errBadRequest("exactly one application expected", "applications")
	}
	if err := d.ValidateServices(); err != nil {
		return err
	}
	appID := d.Applications[0].ApplicationID
	if _, err := s.ownedApp(c, appID); err != nil {
		if errors.Is(err, store.ErrNotFound) || err == errNotFound {
			return &Error{Status: http.StatusNotFound, Message: "application " + appID + " not found", Field: "applications[0].applicationID"}
		}
		return err
	}
	svcs, err := s.store.AddServices(c.Request().Context(), appID, d.Applications[0].Microservices, "applications[0].microservices")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"job_id": svcs[len(svcs)-1].MicroserviceID, "services": withStatus(svcs)})
}

func (s *Server) getService(c echo.Context) error {
	svc, err := s.ownedService(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, svc)
}

func (s *Server) listServices(c echo.Context) error {
	app, err := s.ownedApp(c, c.Param("appid"))
	if err != nil {
		return err
	}
	svcs, err := s.store.ListServices(c.Request().Context(), app.ApplicationID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withStatus(svcs))
}

// listAllServices: admins see every service, users the services of their
// own applications, oldest first.
func (s *Server) listAllServices(c echo.Context) error {
	svcs, err := s.store.ListUserServices(c.Request().Context(), listScope(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withStatus(svcs))
}

func (s *Server) deleteService(c echo.Context) error {
	svc, err := s.ownedService(c, c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteService(c.Request().Context(), svc.MicroserviceID); err != nil {
		return err
	}
	s.Changed()
	return message(c, "Job deleted")
}

// addInstance records a requested instance; it needs no request body.
func (s *Server) addInstance(c echo.Context) error {
	svc, err := s.ownedService(c, c.Param("id"))
	if err != nil {
		return err
	}
	inst, err := s.store.AddInstance(c.Request().Context(), svc.MicroserviceID)
	if err != nil {
		return err
	}
	s.kick()
	return c.JSON(http.StatusOK, map[string]any{"message": "ok", "instance_number": inst.InstanceNumber, "instance": inst})
}

func (s *Server) deleteInstance(c echo.Context) error {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 0 {
		return errBadRequest(fmt.Sprintf("instance number %q is not a non-negative integer", c.Param("n")), "n")
	}
	svc, err := s.ownedService(c, c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteInstance(c.Request().Context(), svc.MicroserviceID, n); err != nil {
		return err
	}
	s.Changed()
	return message(c, "ok")
}

func (s *Server) listClusters(c echo.Context) error {
	cl, err := s.store.ListClusters(c.Request().Context(), false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cl)
}

func (s *Server) listActiveClusters(c echo.Context) error {
	cl, err := s.store.ListClusters(c.Request().Context(), true)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cl)
}
