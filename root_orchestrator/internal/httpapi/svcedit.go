package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// updateService edits a stored service (PUT /api/service/{id}): the body
// is the document POST /api/service takes, with the service's application
// and exactly one microservice, validated the same way (every error at
// once). What differs is applied (state.UpdateService): a new spec rolls
// the instances one at a time, the rest restarts nothing. A bad document
// changes nothing.
func (s *Server) updateService(c echo.Context) error {
	svc, err := ownedService(c, s.state.Snapshot(), c.Param("id"))
	if err != nil {
		return err
	}
	d, err := readSLA(c)
	if err != nil {
		return err
	}
	if err := d.ValidateServices(); err != nil {
		return err
	}
	if len(d.Applications) != 1 {
		return errBadRequest("exactly one application expected", "applications")
	}
	if n := len(d.Applications[0].Microservices); n != 1 {
		return errBadRequest(fmt.Sprintf("exactly one microservice expected, not %d", n), "applications[0].microservices")
	}
	if id := d.Applications[0].ApplicationID; id != svc.AppID {
		return errBadRequest(fmt.Sprintf("the service belongs to application %s, not %s", svc.AppID, id), "applications[0].applicationID")
	}
	if err := checkSandbox(c, d); err != nil {
		return err
	}
	q, err := s.ownerQuota(c, svc.Owner)
	if err != nil {
		return err
	}
	out, tk, err := s.state.UpdateService(state.EditRequest{ServiceID: svc.ID, Service: &d.Applications[0].Microservices[0],
		Path: "applications[0].microservices[0]", Quota: q})
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return errNotFound
		}
		return quotaErr(err)
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	if out.Rollout != nil {
		now, who := time.Now().UTC(), caller(c).Username
		for _, in := range s.state.Snapshot().Instances(svc.ID) {
			msg := "service edited by " + who + ": this instance is replaced by one of the new spec"
			if in.Spec == nil {
				msg = "started for the edit by " + who + ": replaces an instance of the old spec"
			}
			s.events.Add(wire.Event{Key: in.Key, Time: now, Source: "root", Message: msg})
		}
	}
	return c.JSON(http.StatusOK, restService(s.state.Snapshot(), out))
}

// restRollout is a service's rollout as the API shows it.
func restRollout(sn *state.Snapshot, svc *state.Service) *api.Rollout {
	if svc.Rollout == nil {
		return nil
	}
	out := &api.Rollout{Replicas: svc.Rollout.Replicas, Message: svc.Rollout.Message}
	for _, in := range sn.Instances(svc.ID) {
		if in.Spec != nil {
			out.Outdated++
		}
	}
	return out
}
