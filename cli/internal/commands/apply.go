package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
	"github.com/thicket-edge/thicket/cli/internal/rollout"
	"github.com/thicket-edge/thicket/contract/oam"
)

// WaitFlags are how apply and scale wait for their instances.
type WaitFlags struct {
	Wait    bool          `default:"true" negatable:"" help:"Wait until every instance runs (--wait=false or --no-wait returns at once)."`
	Timeout time.Duration `default:"5m" help:"How long to wait."`
}

// ApplyCmd is `thicket apply`.
type ApplyCmd struct {
	File      string `short:"f" required:"" placeholder:"FILE" help:"SLA file (JSON, SLA v2.0) or OAM manifests (YAML or JSON, told apart by apiVersion and kind: ComponentDefinitions, registered first, and at most one Application, in documents separated by ---); - reads standard input."`
	Instances int    `default:"1" help:"Instances to start of each service of an SLA (0 only registers the applications); an OAM manifest's traits say how many."`
	WaitFlags `embed:""`
}

// slaNames are the application names of an SLA, read to find the created
// applications among all of the caller's (the API answers all of them).
type slaNames struct {
	Applications []struct {
		Name      string `json:"application_name"`
		Namespace string `json:"application_namespace"`
	} `json:"applications"`
}

// Run posts the SLA, starts the instances and waits for them.
func (c *ApplyCmd) Run(e *Env) error {
	if c.Instances < 0 {
		return usagef("--instances must not be negative")
	}
	if c.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	body, err := readSLAFile(e, c.File)
	if err != nil {
		return err
	}
	cl, err := e.session()
	if err != nil {
		return err
	}
	if oam.IsManifest(body) {
		return c.applyOAMStream(e, cl, body)
	}
	before, err := cl.Applications(e.Ctx)
	if err != nil {
		return err
	}
	all, err := cl.CreateApplications(e.Ctx, body)
	if err != nil {
		return fmt.Errorf("create the applications: %w", err)
	}
	var names slaNames
	_ = json.Unmarshal(body, &names) // the server accepted it: it is JSON
	created := createdApps(before, all, names)
	progress := e.Out
	if e.json() {
		progress = e.Err
	}
	var targets []rollout.Target
	var services []api.Service
	for _, app := range created {
		fmt.Fprintf(progress, "application %s/%s created: %s\n", app.ApplicationNamespace, app.ApplicationName, app.ApplicationID)
		svcs, err := cl.Services(e.Ctx, app.ApplicationID)
		if err != nil {
			return err
		}
		for _, svc := range svcs {
			fmt.Fprintf(progress, "service %s: %s\n", resolve.Label(svc), svc.MicroserviceID)
			for range c.Instances {
				n, err := cl.AddInstance(e.Ctx, svc.MicroserviceID)
				if err != nil {
					return fmt.Errorf("start an instance of %s: %w", resolve.Label(svc), err)
				}
				targets = append(targets, rollout.Target{ServiceID: svc.MicroserviceID, Label: resolve.Label(svc), Number: n})
			}
			services = append(services, svc)
		}
	}
	if len(targets) > 0 && c.Wait {
		if err := waitRollout(e, cl, targets, c.Timeout, progress); err != nil {
			return err
		}
	} else if len(targets) > 0 {
		fmt.Fprintf(progress, "%s requested; thicket get instances shows them\n", plural(len(targets), "instance"))
	}
	if e.json() {
		return writeJSON(e.Out, refresh(e.Ctx, cl, services))
	}
	return nil
}

// readSLAFile reads the file -f names; "-" is standard input.
func readSLAFile(e *Env, file string) ([]byte, error) {
	var body []byte
	var err error
	if file == "-" {
		body, err = io.ReadAll(e.In)
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read the SLA: %w", err)
	}
	return body, nil
}

// applyOAM submits an OAM manifest, whose instances the root starts step
// by step (to an OAM application of that name, as its next revision), and
// waits until its workflow has run every step.
func (c *ApplyCmd) applyOAM(e *Env, cl *api.Client, body []byte) error {
	progress := e.Out
	if e.json() {
		progress = e.Err
	}
	app, err := cl.CreateOAMApplication(e.Ctx, body)
	var se *api.StatusError
	if errors.As(err, &se) && se.Status == http.StatusConflict && strings.HasPrefix(se.Message, "OAM application ") {
		// It exists: the manifest is its next revision.
		parsed, perr := oam.Parse(body)
		if perr != nil {
			return fmt.Errorf("create the OAM application: %w", err)
		}
		if app, err = cl.UpdateOAMApplication(e.Ctx, parsed.Name, body); err != nil {
			return fmt.Errorf("update the OAM application: %w", err)
		}
		fmt.Fprintf(progress, "OAM application %s updated to revision %d: application %s/%s %s\n", app.Name, app.Revision, app.ApplicationNamespace, app.ApplicationName, app.ApplicationID)
	} else if err != nil {
		return fmt.Errorf("create the OAM application: %w", err)
	} else {
		fmt.Fprintf(progress, "OAM application %s created: application %s/%s %s\n", app.Name, app.ApplicationNamespace, app.ApplicationName, app.ApplicationID)
	}
	for _, comp := range app.Components {
		fmt.Fprintf(progress, "component %s: service %s/%s %s, %s\n", comp.Name, app.ApplicationName, comp.MicroserviceName,
			comp.MicroserviceID, plural(comp.Replicas, "instance"))
	}
	if c.Wait {
		if app, err = waitWorkflow(e, cl, app, c.Timeout, progress); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(progress, "deploying; thicket get instances shows the instances\n")
	}
	if e.json() {
		var services []api.Service
		for _, comp := range app.Components {
			if svc, err := cl.Service(e.Ctx, comp.MicroserviceID); err == nil {
				services = append(services, *svc)
			}
		}
		return writeJSON(e.Out, services)
	}
	return nil
}

// waitWorkflow polls an OAM application until its workflow succeeded,
// failed or the timeout passed, printing each step as it starts and ends.
func waitWorkflow(e *Env, cl *api.Client, app *api.OAMApplication, timeout time.Duration, w io.Writer) (*api.OAMApplication, error) {
	ctx, cancel := context.WithTimeout(e.Ctx, timeout)
	defer cancel()
	start := time.Now()
	seen := map[string]string{} // step -> phase printed
	for {
		for _, st := range app.Workflow.Steps {
			if st.Phase != api.OAMStepWaiting && seen[st.Name] != st.Phase {
				seen[st.Name] = st.Phase
				fmt.Fprintf(w, "step %s (%s): %s\n", st.Name, strings.Join(st.Components, ", "), st.Phase)
			}
		}
		switch app.Workflow.Phase {
		case api.OAMStepSucceeded:
			fmt.Fprintf(w, "every step done after %s\n", time.Since(start).Round(100*time.Millisecond))
			return app, nil
		case api.OAMStepFailed:
			return app, fmt.Errorf("workflow failed: %s", app.Workflow.Message)
		}
		select {
		case <-ctx.Done():
			if e.Ctx.Err() != nil {
				return app, errors.New("interrupted; the workflow goes on (thicket get instances)")
			}
			return app, fmt.Errorf("workflow not done after %s: step %s: %s", timeout, app.Workflow.Step, app.Status+" "+app.StatusDetail)
		case <-time.After(pollInterval):
		}
		now, err := cl.OAMApplication(ctx, app.Name)
		if err != nil && ctx.Err() == nil {
			return app, err
		}
		if err == nil {
			app = now
		}
	}
}

// createdApps picks the applications an SLA created out of the caller's
// applications after the post: new ids with the SLA's names.
func createdApps(before, after []api.Application, names slaNames) []api.Application {
	old := map[string]bool{}
	for _, a := range before {
		old[a.ApplicationID] = true
	}
	want := map[string]bool{}
	for _, a := range names.Applications {
		want[a.Namespace+"/"+a.Name] = true
	}
	var out []api.Application
	for _, a := range after {
		if !old[a.ApplicationID] && (len(want) == 0 || want[a.ApplicationNamespace+"/"+a.ApplicationName]) {
			out = append(out, a)
		}
	}
	return out
}

// refresh reads services again (for -o json after a rollout); a service that
// cannot be read is kept as it was.
func refresh(ctx context.Context, cl *api.Client, svcs []api.Service) []api.Service {
	out := make([]api.Service, 0, len(svcs))
	for _, s := range svcs {
		if now, err := cl.Service(ctx, s.MicroserviceID); err == nil {
			s = *now
		}
		out = append(out, s)
	}
	return out
}

// pollInterval is how often a rollout is looked at.
const pollInterval = 500 * time.Millisecond

// waitRollout polls the targets' services until every target runs, one
// fails, or the timeout passes, printing a line whenever one changes.
func waitRollout(e *Env, cl *api.Client, targets []rollout.Target, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(e.Ctx, timeout)
	defer cancel()
	start := time.Now()
	tr := rollout.New(targets)
	var ids []string
	seen := map[string]bool{}
	for _, t := range targets {
		if !seen[t.ServiceID] {
			seen[t.ServiceID] = true
			ids = append(ids, t.ServiceID)
		}
	}
	clusters := map[string]string{}
	asked := map[string]bool{}
	for {
		svcs, err := readServices(ctx, cl, ids)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			if unknownCluster(svcs, asked) {
				if cls, err := cl.Clusters(ctx); err == nil {
					for _, c := range cls {
						clusters[c.ID] = c.ClusterName
					}
				}
			}
			lines, outcome, err := tr.Observe(svcs, clusters)
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
			switch outcome {
			case rollout.Done:
				fmt.Fprintf(w, "%s running after %s\n", plural(len(targets), "instance"), time.Since(start).Round(100*time.Millisecond))
				return nil
			case rollout.Failed:
				return err
			}
		}
		select {
		case <-ctx.Done():
			if e.Ctx.Err() != nil {
				return errors.New("interrupted; the instances keep going (thicket get instances)")
			}
			return timeoutError(timeout, tr.Unsettled())
		case <-time.After(pollInterval):
		}
	}
}

func readServices(ctx context.Context, cl *api.Client, ids []string) (map[string]*api.Service, error) {
	svcs := map[string]*api.Service{}
	for _, id := range ids {
		s, err := cl.Service(ctx, id)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		svcs[id] = s
	}
	return svcs, nil
}

// unknownCluster reports whether an instance names a cluster not asked for
// yet, and marks it asked.
func unknownCluster(svcs map[string]*api.Service, asked map[string]bool) bool {
	found := false
	for _, s := range svcs {
		for _, in := range s.InstanceList {
			if in.ClusterID != "" && !asked[in.ClusterID] {
				asked[in.ClusterID] = true
				found = true
			}
		}
	}
	return found
}

func timeoutError(timeout time.Duration, unsettled []string) error {
	if len(unsettled) == 1 {
		return fmt.Errorf("not running after %s: %s", timeout, unsettled[0])
	}
	return fmt.Errorf("%d instances not running after %s:\n  %s", len(unsettled), timeout, strings.Join(unsettled, "\n  "))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
