package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// EditCmd is `thicket edit SERVICE -f FILE`.
type EditCmd struct {
	Service   string `arg:"" help:"Service id, app/service or unique service name."`
	File      string `short:"f" required:"" placeholder:"FILE" help:"SLA file (JSON, SLA v2.0) with the service's new definition: its application's microservice of the service's name (the file thicket apply took, edited, will do); - reads standard input."`
	WaitFlags `embed:""`
}

// Run sends the service's new definition and waits until its instances
// run it.
func (c *EditCmd) Run(e *Env) error {
	if c.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	body, err := readSLAFile(e, c.File)
	if err != nil {
		return err
	}
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	doc, err := editDocument(body, *svc)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	out, err := cl.UpdateService(e.Ctx, svc.MicroserviceID, doc)
	if err != nil {
		return fmt.Errorf("edit %s: %w", label, err)
	}
	progress := e.Out
	if e.json() {
		progress = e.Err
	}
	if out.Rollout == nil {
		fmt.Fprintf(progress, "%s edited; its instances' spec is unchanged: nothing restarts\n", label)
	} else {
		fmt.Fprintf(progress, "%s edited: replacing %s one at a time\n", label, plural(out.Rollout.Outdated, "instance"))
		if c.Wait {
			if out, err = waitEdit(e, cl, out, c.Timeout, progress); err != nil {
				return err
			}
		}
	}
	if e.json() {
		return writeJSON(e.Out, out)
	}
	return nil
}

// editDocument is the body of PUT /api/service/{id} made from an SLA file:
// its application (the one with the service's application id, or its only
// one) with the microservice of the service's name alone, with the
// service's application id.
func editDocument(body []byte, svc api.Service) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the SLA is not JSON: %w", err)
	}
	apps, _ := doc["applications"].([]any)
	var app map[string]any
	for _, a := range apps {
		m, _ := a.(map[string]any)
		if m == nil {
			continue
		}
		id, _ := m["applicationID"].(string)
		name, _ := m["application_name"].(string)
		if id == svc.ApplicationID || (id == "" && name == svc.AppName) || len(apps) == 1 {
			app = m
			break
		}
	}
	if app == nil {
		return nil, fmt.Errorf("the SLA has no application %s (%s)", svc.AppName, svc.ApplicationID)
	}
	ms, _ := app["microservices"].([]any)
	var found []any
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		if name, _ := mm["microservice_name"].(string); name == svc.MicroserviceName || len(ms) == 1 {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("the SLA's application has %d microservices named %s, not one", len(found), svc.MicroserviceName)
	}
	out := map[string]any{}
	for k, v := range app {
		out[k] = v
	}
	out["applicationID"], out["microservices"] = svc.ApplicationID, found
	doc["applications"] = []any{out}
	return doc, nil
}

// waitEdit polls a service until its rollout is done (every instance of
// the new spec), stopped (an error saying why) or the timeout passed,
// printing each instance replaced.
func waitEdit(e *Env, cl *api.Client, svc *api.Service, timeout time.Duration, w io.Writer) (*api.Service, error) {
	ctx, cancel := context.WithTimeout(e.Ctx, timeout)
	defer cancel()
	label := resolve.Label(*svc)
	left := svc.Rollout.Outdated
	for {
		if svc.Rollout == nil {
			fmt.Fprintf(w, "%s: every instance runs the new spec (%d of %d running)\n", label, svc.Running, svc.Desired)
			return svc, nil
		}
		if svc.Rollout.Message != "" {
			return svc, fmt.Errorf("%s: the rollout stopped: %s", label, svc.Rollout.Message)
		}
		if svc.Rollout.Outdated < left {
			left = svc.Rollout.Outdated
			fmt.Fprintf(w, "%s: %s of the old spec left\n", label, plural(left, "instance"))
		}
		select {
		case <-ctx.Done():
			if e.Ctx.Err() != nil {
				return svc, errors.New("interrupted; the rollout goes on (thicket get instances)")
			}
			return svc, fmt.Errorf("%s: rollout not done after %s: %s left", label, timeout, plural(svc.Rollout.Outdated, "instance"))
		case <-time.After(pollInterval):
		}
		now, err := cl.Service(ctx, svc.MicroserviceID)
		if err != nil && ctx.Err() == nil {
			return svc, err
		}
		if err == nil {
			svc = now
		}
	}
}
