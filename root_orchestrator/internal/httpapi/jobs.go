package httpapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/joblist"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// The job list of a service (collaborative workloads): read with its
// assignment, replaced, added to, or one job removed. Every change is
// checked whole before anything is stored.

func (s *Server) jobRoutes(a *echo.Group) {
	a.GET("/service/:id/jobs", s.getJobs)
	a.PUT("/service/:id/jobs", s.setJobs)
	a.POST("/service/:id/jobs", s.addJobs)
	a.DELETE("/service/:id/jobs/:job", s.removeJob)
}

func (s *Server) getJobs(c echo.Context) error {
	sn := s.state.Snapshot()
	svc, err := ownedService(c, sn, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restJobs(sn, svc))
}

// SetJobListNetworks sets the non-public networks job list URLs may be
// fetched from (none: public addresses only).
func (s *Server) SetJobListNetworks(nets []netip.Prefix) { s.jobLists = joblist.New(nets) }

// readJobList reads a JobList body: its jobs, or the list at its url
// (fetched now, one job per line); either must be given, and the jobs
// valid.
func (s *Server) readJobList(c echo.Context) ([]string, error) {
	var body struct {
		Jobs *[]string `json:"jobs"`
		URL  string    `json:"url"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return nil, err
	}
	switch {
	case body.Jobs != nil && body.URL != "":
		return nil, errBadRequest(`give either jobs or url, not both`, "url")
	case body.URL != "":
		// Only for the service's owner is anything fetched.
		if _, err := ownedService(c, s.state.Snapshot(), c.Param("id")); err != nil {
			return nil, err
		}
		list, err := s.jobLists.Read(c.Request().Context(), body.URL)
		if err != nil {
			return nil, errBadRequest(err.Error(), "url")
		}
		if errs := sla.ValidateJobs("url", list); errs != nil {
			return nil, errs
		}
		return list, nil
	case body.Jobs == nil:
		return nil, errBadRequest(`jobs is required: give {"jobs": [...]} or {"url": "https://..."}`, "jobs")
	}
	if errs := sla.ValidateJobs("jobs", *body.Jobs); errs != nil {
		return nil, errs
	}
	return *body.Jobs, nil
}

func (s *Server) setJobs(c echo.Context) error {
	jobs, err := s.readJobList(c)
	if err != nil {
		return err
	}
	return s.changeJobs(c, func([]string) ([]string, error) { return jobs, nil })
}

func (s *Server) addJobs(c echo.Context) error {
	add, err := s.readJobList(c)
	if err != nil {
		return err
	}
	return s.changeJobs(c, func(old []string) ([]string, error) {
		for i, j := range add {
			if slices.Contains(old, j) {
				return nil, &state.ConflictError{Field: "jobs[" + strconv.Itoa(i) + "]", Message: fmt.Sprintf("job %q is already in the list", j)}
			}
		}
		if n := len(old) + len(add); n > sla.MaxJobs {
			return nil, errBadRequest(fmt.Sprintf("the list would have %d jobs, at most %d are allowed", n, sla.MaxJobs), "jobs")
		}
		return append(slices.Clone(old), add...), nil
	})
}

// jobParam is the job named by the path, unescaped once: the router does
// not unescape a name it matched on the escaped path ("cam%2F1").
func jobParam(c echo.Context) (string, error) {
	p := c.Request().URL.EscapedPath()
	i := strings.LastIndex(p, "/jobs/")
	if i < 0 {
		return "", errBadRequest("no job in the path", "job")
	}
	job, err := url.PathUnescape(p[i+len("/jobs/"):])
	if err != nil {
		return "", errBadRequest("the job in the path is not escaped properly: "+err.Error(), "job")
	}
	return job, nil
}

func (s *Server) removeJob(c echo.Context) error {
	job, err := jobParam(c)
	if err != nil {
		return err
	}
	return s.changeJobs(c, func(old []string) ([]string, error) {
		i := slices.Index(old, job)
		if i < 0 {
			return nil, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("job %q is not in the service's list", job), Field: "job"}
		}
		return slices.Delete(slices.Clone(old), i, i+1), nil
	})
}

// changeJobs stores what change makes of the caller's service's list and
// answers with the result.
func (s *Server) changeJobs(c echo.Context, change func(old []string) ([]string, error)) error {
	svc, err := ownedService(c, s.state.Snapshot(), c.Param("id"))
	if err != nil {
		return err
	}
	_, tk, err := s.state.UpdateJobs(svc.ID, change)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	sn := s.state.Snapshot()
	if svc = sn.Service(svc.ID); svc == nil {
		return errNotFound
	}
	return c.JSON(http.StatusOK, restJobs(sn, svc))
}

// restJobs is a service's job list with what its instances reported.
func restJobs(sn *state.Snapshot, svc *state.Service) api.ServiceJobs {
	out := api.ServiceJobs{
		ServiceID: svc.ID, Jobs: orEmpty(slices.Clone(svc.Jobs)), Version: svc.JobsVersion,
		LeaseS:     int(svc.JobsLease / time.Second),
		Assignment: map[string]int{}, Instances: []api.JobHolder{}, Unowned: []string{},
	}
	if out.LeaseS == 0 {
		out.LeaseS = sla.DefaultJobsLease
	}
	listed := make(map[string]bool, len(svc.Jobs))
	for _, j := range svc.Jobs {
		listed[j] = true
	}
	for _, in := range sn.Instances(svc.ID) {
		h := api.JobHolder{InstanceNumber: in.Number, Status: in.Status, Version: in.JobsVersion, Jobs: []string{}}
		if in.JobsHeld != "" {
			h.Jobs = strings.Split(in.JobsHeld, ",")
		}
		out.AssignmentVersion = max(out.AssignmentVersion, in.JobsVersion)
		for _, j := range h.Jobs {
			if _, taken := out.Assignment[j]; listed[j] && !taken {
				out.Assignment[j] = in.Number
			}
		}
		out.Instances = append(out.Instances, h)
	}
	for _, j := range svc.Jobs {
		if _, ok := out.Assignment[j]; !ok {
			out.Unowned = append(out.Unowned, j)
		}
	}
	return out
}
