package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/oam"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// OAM applications: a manifest is parsed and compiled to an SLA application
// (contract/oam), which is stored with its services and instances like any
// other, together with the manifest as written.

// readOAM reads, parses and compiles an OAM manifest.
func (s *Server) readOAM(c echo.Context) (state.OAMRequest, error) {
	body, err := io.ReadAll(c.Request().Body)
	if tooLarge(err) {
		return state.OAMRequest{}, errTooLarge
	} else if err != nil {
		return state.OAMRequest{}, errBadRequest("read body: "+err.Error(), "")
	}
	cat, err := s.catalog(c.Request().Context(), caller(c).Username)
	if err != nil {
		return state.OAMRequest{}, err
	}
	return compileOAM(body, cat)
}

// compileOAM parses and compiles an OAM manifest into what the state
// stores, its base components resolved with the owner's definitions.
func compileOAM(body []byte, cat oam.Catalog) (state.OAMRequest, error) {
	app, err := oam.ParseWith(body, cat)
	if err != nil {
		return state.OAMRequest{}, err
	}
	compiled, err := oam.Compile(app)
	if err != nil {
		return state.OAMRequest{}, err
	}
	names := make([]string, len(app.Components))
	for i, comp := range app.Components {
		names[i] = comp.Name
	}
	steps := make([]state.OAMStep, len(compiled.Steps))
	for i, st := range compiled.Steps {
		steps[i].Name = st.Name
		for _, j := range st.Components {
			steps[i].Components = append(steps[i].Components, names[j])
		}
	}
	return state.OAMRequest{Name: app.Name, Manifest: string(body), App: &compiled.App, Components: names,
		Replicas: compiled.Replicas, Steps: steps}, nil
}

// createOAMApplication stores the application an OAM manifest describes,
// owned by the caller, and starts its first workflow step's instances.
func (s *Server) createOAMApplication(c echo.Context) error {
	req, err := s.readOAM(c)
	if err != nil {
		return err
	}
	if req.Quota, err = s.ownerQuota(c, caller(c).Username); err != nil {
		return err
	}
	created, tk, err := s.state.CreateOAMApplication(caller(c).Username, req, "spec.components")
	if err != nil {
		return quotaErr(err)
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restOAM(s.state.Snapshot(), created))
}

// updateOAMApplication applies a changed manifest as a new revision.
func (s *Server) updateOAMApplication(c echo.Context) error {
	name := c.Param("name")
	if s.state.Snapshot().OAMApp(caller(c).Username, name) == nil {
		return oamNotFound(name)
	}
	req, err := s.readOAM(c)
	if err != nil {
		return err
	}
	if req.Name != name {
		return errBadRequest(fmt.Sprintf("metadata.name is %q, the application updated is %q", req.Name, name), "metadata.name")
	}
	return s.applyOAMRevision(c, req)
}

// applyOAMRevision applies a compiled manifest to the caller's OAM
// application of its name as the next revision, and answers with it.
func (s *Server) applyOAMRevision(c echo.Context, req state.OAMRequest) error {
	var err error
	if req.Quota, err = s.ownerQuota(c, caller(c).Username); err != nil {
		return err
	}
	updated, tk, err := s.state.UpdateOAMApplication(caller(c).Username, req, "spec.components")
	if err != nil {
		return quotaErr(err)
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restOAM(s.state.Snapshot(), updated))
}

// rollbackOAMApplication applies the manifest of an earlier revision
// again, as the next revision.
func (s *Server) rollbackOAMApplication(c echo.Context) error {
	a := s.state.Snapshot().OAMApp(caller(c).Username, c.Param("name"))
	if a == nil {
		return oamNotFound(c.Param("name"))
	}
	var body api.OAMRollback
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	i := slices.IndexFunc(a.OAM.Revisions, func(r state.OAMRevision) bool { return r.Number == body.Revision })
	if i < 0 {
		return &Error{Status: http.StatusNotFound, Field: "revision",
			Message: fmt.Sprintf("%s has no revision %d (it keeps the last %d)", a.OAM.Name, body.Revision, len(a.OAM.Revisions))}
	}
	cat, err := s.catalog(c.Request().Context(), caller(c).Username)
	if err != nil {
		return err
	}
	req, err := compileOAM([]byte(a.OAM.Revisions[i].Manifest), cat)
	if err != nil {
		return &Error{Status: http.StatusConflict, Field: "revision", Message: fmt.Sprintf("revision %d is no longer valid: %v", body.Revision, err)}
	}
	return s.applyOAMRevision(c, req)
}

// listOAMRevisions lists the revisions an OAM application keeps.
func (s *Server) listOAMRevisions(c echo.Context) error {
	a := s.state.Snapshot().OAMApp(caller(c).Username, c.Param("name"))
	if a == nil {
		return oamNotFound(c.Param("name"))
	}
	out := make([]api.OAMRevision, len(a.OAM.Revisions))
	for i, r := range a.OAM.Revisions {
		out[i] = api.OAMRevision{Revision: r.Number, Manifest: r.Manifest, CreatedAt: r.CreatedAt}
	}
	return c.JSON(http.StatusOK, out)
}

func oamNotFound(name string) error {
	return &Error{Status: http.StatusNotFound, Message: "OAM application " + name + " not found"}
}

// listOAMApplications: admins see all OAM applications, users their own.
func (s *Server) listOAMApplications(c echo.Context) error {
	sn := s.state.Snapshot()
	apps := sn.OAMApps(listScope(c))
	out := make([]api.OAMApplication, len(apps))
	for i, a := range apps {
		out[i] = restOAM(sn, a)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getOAMApplication(c echo.Context) error {
	sn := s.state.Snapshot()
	a := sn.OAMApp(caller(c).Username, c.Param("name"))
	if a == nil {
		return oamNotFound(c.Param("name"))
	}
	return c.JSON(http.StatusOK, restOAM(sn, a))
}

// deleteOAMApplication deletes the application with its services and
// instances, and the manifest with it.
func (s *Server) deleteOAMApplication(c echo.Context) error {
	a := s.state.Snapshot().OAMApp(caller(c).Username, c.Param("name"))
	if a == nil {
		return oamNotFound(c.Param("name"))
	}
	tk, err := s.state.DeleteApplication(a.ID)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	return message(c, "OAM application deleted")
}

func (s *Server) listOAMTraitDefinitions(c echo.Context) error {
	defs := oam.TraitDefinitions()
	out := make([]api.OAMTraitDefinition, len(defs))
	for i, d := range defs {
		out[i] = api.OAMTraitDefinition(d)
	}
	return c.JSON(http.StatusOK, out)
}

// restOAM is an OAM application as the API shows it. A component whose
// service was deleted (DELETE /api/service/{id}) is listed without one.
func restOAM(sn *state.Snapshot, a *state.Application) api.OAMApplication {
	out := api.OAMApplication{
		Name: a.OAM.Name, ApplicationID: a.ID, ApplicationName: a.Name, ApplicationNamespace: a.Namespace,
		UserID: a.Owner, Manifest: a.OAM.Manifest, Revision: a.OAM.Revision, Components: []api.OAMComponent{}, CreatedAt: a.CreatedAt,
		Workflow: api.OAMWorkflow{Phase: a.OAM.Phase, Message: a.OAM.Message, Steps: []api.OAMStep{}},
	}
	for i, st := range a.OAM.Steps {
		phase := api.OAMStepWaiting
		switch {
		case i < a.OAM.Step:
			phase = api.OAMStepSucceeded
		case i == a.OAM.Step && a.OAM.Phase == state.OAMFailed:
			phase = api.OAMStepFailed
		case i == a.OAM.Step:
			phase = api.OAMStepRunning
		}
		if phase == api.OAMStepRunning || phase == api.OAMStepFailed {
			out.Workflow.Step = st.Name
		}
		out.Workflow.Steps = append(out.Workflow.Steps, api.OAMStep{Name: st.Name, Components: st.Components, Phase: phase})
	}
	var all []api.Instance
	for _, comp := range a.OAM.Components {
		rc := api.OAMComponent{Name: comp.Name, Replicas: comp.Replicas, Replacing: comp.Replacing, Status: api.StatusCreated, StatusDetail: "service deleted"}
		if svc := sn.Service(comp.ServiceID); svc != nil {
			rs := restService(sn, svc)
			rc.MicroserviceID, rc.MicroserviceName, rc.MicroserviceNamespace = svc.ID, svc.Name, svc.Namespace
			rc.Instances, rc.Status, rc.StatusDetail, rc.RRIP = len(rs.InstanceList), rs.Status, rs.StatusDetail, rs.RRIP
			all = append(all, rs.InstanceList...)
		}
		out.Components = append(out.Components, rc)
	}
	out.Status, out.StatusDetail = api.Summarize(all)
	return out
}
