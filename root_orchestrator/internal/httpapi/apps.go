package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
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
func ownedApp(c echo.Context, sn *state.Snapshot, id string) (*state.Application, error) {
	app := sn.App(id)
	if app == nil {
		return nil, fmt.Errorf("application %s: %w", id, state.ErrNotFound)
	}
	if p := caller(c); !p.admin() && app.Owner != p.Username {
		return nil, errNotFound
	}
	return app, nil
}

// ownedService returns a service the caller may see.
func ownedService(c echo.Context, sn *state.Snapshot, id string) (*state.Service, error) {
	svc := sn.Service(id)
	if svc == nil {
		return nil, fmt.Errorf("service %s: %w", id, state.ErrNotFound)
	}
	if p := caller(c); !p.admin() && svc.Owner != p.Username {
		return nil, errNotFound
	}
	return svc, nil
}

// durable waits until a write is stored: the API acknowledges nothing a
// crash could lose.
func (s *Server) durable(c echo.Context, tk state.Ticket) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	if err := s.state.Durable(ctx, tk); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Message: err.Error()}
	}
	return nil
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
	if err := checkSandbox(c, d); err != nil {
		return err
	}
	p := caller(c)
	q, err := s.ownerQuota(c, p.Username)
	if err != nil {
		return err
	}
	_, tk, err := s.state.CreateApplicationsWithin(p.Username, d, q)
	if err != nil {
		return quotaErr(err)
	}
	return s.answerDurable(c, tk, http.StatusOK, restAppsOf(s.state.Snapshot(), p.Username), nil)
}

// listScope is the owner whose applications and services the caller may
// list: their own, or everyone's ("") for an admin.
func listScope(c echo.Context) string {
	if p := caller(c); !p.admin() {
		return p.Username
	}
	return ""
}

// listApplications: admins see all applications, users their own.
func (s *Server) listApplications(c echo.Context) error {
	return c.JSON(http.StatusOK, restAppsOf(s.state.Snapshot(), listScope(c)))
}

func (s *Server) listUserApplications(c echo.Context) error {
	p, user := caller(c), c.Param("userid")
	if !p.admin() && p.Username != user {
		return errForbidden
	}
	return c.JSON(http.StatusOK, restAppsOf(s.state.Snapshot(), user))
}

func (s *Server) getApplication(c echo.Context) error {
	sn := s.state.Snapshot()
	app, err := ownedApp(c, sn, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restApp(sn, app))
}

func (s *Server) updateApplication(c echo.Context) error {
	id := c.Param("id")
	if _, err := ownedApp(c, s.state.Snapshot(), id); err != nil {
		return err
	}
	var u api.ApplicationUpdate
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
	app, tk, err := s.state.UpdateApplication(id, u.ApplicationName, u.ApplicationNamespace, u.ApplicationDesc)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restApp(s.state.Snapshot(), app))
}

func (s *Server) deleteApplication(c echo.Context) error {
	id := c.Param("id")
	if _, err := ownedApp(c, s.state.Snapshot(), id); err != nil {
		return err
	}
	tk, err := s.state.DeleteApplication(id)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
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
	if err := checkSandbox(c, d); err != nil {
		return err
	}
	appID := d.Applications[0].ApplicationID
	app, err := ownedApp(c, s.state.Snapshot(), appID)
	if err != nil {
		if errors.Is(err, state.ErrNotFound) || err == errNotFound {
			return &Error{Status: http.StatusNotFound, Message: "application " + appID + " not found", Field: "applications[0].applicationID"}
		}
		return err
	}
	q, err := s.ownerQuota(c, app.Owner)
	if err != nil {
		return err
	}
	svcs, tk, err := s.state.AddServicesWithin(appID, d.Applications[0].Microservices, "applications[0].microservices", q)
	if err != nil {
		return quotaErr(err)
	}
	sn := s.state.Snapshot()
	return s.answerDurable(c, tk, http.StatusOK, map[string]any{"job_id": svcs[len(svcs)-1].ID, "services": restServices(sn, svcs)}, nil)
}

func (s *Server) getService(c echo.Context) error {
	sn := s.state.Snapshot()
	svc, err := ownedService(c, sn, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restService(sn, svc))
}

func (s *Server) listServices(c echo.Context) error {
	sn := s.state.Snapshot()
	app, err := ownedApp(c, sn, c.Param("appid"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restServices(sn, sn.ServicesOfApp(app.ID)))
}

// listAllServices: admins see every service, users the services of their
// own applications, oldest first.
func (s *Server) listAllServices(c echo.Context) error {
	sn := s.state.Snapshot()
	return c.JSON(http.StatusOK, restServices(sn, sn.Services(listScope(c))))
}

func (s *Server) deleteService(c echo.Context) error {
	svc, err := ownedService(c, s.state.Snapshot(), c.Param("id"))
	if err != nil {
		return err
	}
	tk, err := s.state.DeleteService(svc.ID)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return message(c, "Job deleted")
}

// addInstance records a requested instance; it needs no request body. The
// root scheduler places it as soon as it is stored.
func (s *Server) addInstance(c echo.Context) error {
	sn := s.state.Snapshot()
	svc, err := ownedService(c, sn, c.Param("id"))
	if err != nil {
		return err
	}
	q, err := s.ownerQuota(c, svc.Owner)
	if err != nil {
		return err
	}
	in, tk, err := s.state.AddInstanceWithin(svc.ID, q)
	if err != nil {
		return quotaErr(err)
	}
	who := caller(c).Username
	return s.answerDurable(c, tk, http.StatusOK, map[string]any{"message": "ok", "instance_number": in.Number, "instance": restInstance(svc, in)}, func() {
		s.events.Add(wire.Event{Key: in.Key, Time: time.Now().UTC(), Source: "root", Message: "requested by " + who})
		s.noteEvents(map[string]string{in.Key: in.Owner})
	})
}

func (s *Server) deleteInstance(c echo.Context) error {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 0 {
		return errBadRequest(fmt.Sprintf("instance number %q is not a non-negative integer", c.Param("n")), "n")
	}
	svc, err := ownedService(c, s.state.Snapshot(), c.Param("id"))
	if err != nil {
		return err
	}
	tk, err := s.state.DeleteInstance(svc.ID, n)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return message(c, "ok")
}

// clusters lists the clusters. Only admins see where they are: a
// non-admin gets each cluster's name, location, state and aggregate
// capacity, with its address empty and no node list (the fields stay, for
// clients written for the reference): node names and addresses belong to
// the operators, and the nodes run every tenant's instances.
func (s *Server) clusters(activeOnly, admin bool) []api.Cluster {
	sn := s.state.Snapshot()
	out := []api.Cluster{}
	for _, c := range sn.Clusters() {
		if !activeOnly || c.Active {
			rc := restCluster(sn, c)
			if !admin {
				rc = withoutTopology(rc)
			}
			out = append(out, rc)
		}
	}
	return out
}

// withoutTopology is c as a non-admin sees it: no address, no nodes.
func withoutTopology(c api.Cluster) api.Cluster {
	c.IP, c.Port, c.Nodes = "", 0, []api.Node{}
	return c
}

func (s *Server) listClusters(c echo.Context) error {
	return c.JSON(http.StatusOK, s.clusters(false, caller(c).admin()))
}

func (s *Server) listActiveClusters(c echo.Context) error {
	return c.JSON(http.StatusOK, s.clusters(true, caller(c).admin()))
}
