package commands

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// JobsCmd is `thicket jobs`: a service's job list (collaborative
// workloads), shared among its instances so that each job has one owner.
type JobsCmd struct {
	List JobsListCmd `cmd:"" aliases:"ls" help:"Show a service's jobs, which instance owns each, and the jobs nobody owns."`
	Set  JobsSetCmd  `cmd:"" help:"Replace a service's job list (--none empties it)."`
	Add  JobsAddCmd  `cmd:"" help:"Add jobs to a service's list."`
	Rm   JobsRmCmd   `cmd:"" aliases:"remove" help:"Remove jobs from a service's list."`
}

// JobsListCmd is `thicket jobs ls SERVICE`.
type JobsListCmd struct {
	Service string `arg:"" help:"Service id, app/service or unique service name."`
}

// Run prints the list with its owners.
func (c *JobsListCmd) Run(e *Env) error {
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	sj, err := cl.Jobs(e.Ctx, svc.MicroserviceID)
	if err != nil {
		return fmt.Errorf("jobs of %s: %w", resolve.Label(*svc), err)
	}
	return printJobs(e, resolve.Label(*svc), sj)
}

// jobsInput are the jobs of a set or add: arguments and/or a file, or a
// URL the root reads.
type jobsInput struct {
	Jobs []string `arg:"" optional:"" name:"job" help:"Job names."`
	File string   `short:"f" placeholder:"FILE" help:"Read jobs from FILE, one per line (blank lines skipped; - reads stdin)."`
	URL  string   `name:"url" placeholder:"URL" help:"Have the root fetch the list at URL once (one job per line; https://...#sha256=<hex> pins it; public addresses unless thicket-root --jobs-allow-net allows others). Not with jobs or -f."`
}

// fromURL checks that a URL comes alone and says whether there is one.
func (in *jobsInput) fromURL() (bool, error) {
	if in.URL == "" {
		return false, nil
	}
	if len(in.Jobs) > 0 || in.File != "" {
		return false, usagef("--url takes no jobs nor -f")
	}
	return true, nil
}

// read returns the jobs of the arguments, then those of the file.
func (in *jobsInput) read(e *Env) ([]string, error) {
	jobs := slices.Clone(in.Jobs)
	if in.File == "" {
		return jobs, nil
	}
	var r io.Reader = e.In
	if in.File != "-" {
		f, err := os.Open(in.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	fromFile, err := readJobLines(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", in.File, err)
	}
	return append(jobs, fromFile...), nil
}

// readJobLines reads one job per line, without surrounding white space;
// blank lines are skipped.
func readJobLines(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// JobsSetCmd is `thicket jobs set SERVICE [JOB...] [-f FILE] [--url URL] [--none]`.
type JobsSetCmd struct {
	Service   string `arg:"" help:"Service id, app/service or unique service name."`
	jobsInput `embed:""`
	None      bool `help:"Empty the list (no job arguments nor file)."`
}

// Run replaces the list. An empty list must be asked for: with --none, or
// a file without jobs.
func (c *JobsSetCmd) Run(e *Env) error {
	if ok, err := c.fromURL(); ok || err != nil {
		if err == nil && c.None {
			err = usagef("--none takes no --url")
		}
		if err != nil {
			return err
		}
		return changeJobs(e, c.Service, "set the jobs of", func(cl *api.Client, id string) (*api.ServiceJobs, error) {
			return cl.SetJobsFromURL(e.Ctx, id, c.URL)
		})
	}
	switch {
	case c.None && (len(c.Jobs) > 0 || c.File != ""):
		return usagef("--none takes no jobs")
	case !c.None && len(c.Jobs) == 0 && c.File == "":
		return usagef("give the jobs as arguments or with -f FILE, or --none to empty the list")
	}
	jobs, err := c.read(e)
	if err != nil {
		return err
	}
	return changeJobs(e, c.Service, "set the jobs of", func(cl *api.Client, id string) (*api.ServiceJobs, error) {
		return cl.SetJobs(e.Ctx, id, jobs)
	})
}

// changeJobs makes one change of the list of the service ref names and
// reports the result.
func changeJobs(e *Env, ref, what string, call func(cl *api.Client, serviceID string) (*api.ServiceJobs, error)) error {
	cl, svc, err := e.service(ref)
	if err != nil {
		return err
	}
	sj, err := call(cl, svc.MicroserviceID)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, resolve.Label(*svc), err)
	}
	return changed(e, resolve.Label(*svc), sj)
}

// JobsAddCmd is `thicket jobs add SERVICE JOB... [-f FILE] [--url URL]`.
type JobsAddCmd struct {
	Service   string `arg:"" help:"Service id, app/service or unique service name."`
	jobsInput `embed:""`
}

// Run adds the jobs (all or none).
func (c *JobsAddCmd) Run(e *Env) error {
	if ok, err := c.fromURL(); ok || err != nil {
		if err != nil {
			return err
		}
		return changeJobs(e, c.Service, "add jobs to", func(cl *api.Client, id string) (*api.ServiceJobs, error) {
			return cl.AddJobsFromURL(e.Ctx, id, c.URL)
		})
	}
	jobs, err := c.read(e)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return usagef("give the jobs to add as arguments or with -f FILE")
	}
	return changeJobs(e, c.Service, "add jobs to", func(cl *api.Client, id string) (*api.ServiceJobs, error) {
		return cl.AddJobs(e.Ctx, id, jobs)
	})
}

// JobsRmCmd is `thicket jobs rm SERVICE JOB...`.
type JobsRmCmd struct {
	Service string   `arg:"" help:"Service id, app/service or unique service name."`
	Jobs    []string `arg:"" name:"job" help:"Jobs to remove."`
}

// Run removes the jobs one by one; it stops at the first that fails.
func (c *JobsRmCmd) Run(e *Env) error {
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	var sj *api.ServiceJobs
	for _, j := range c.Jobs {
		if sj, err = cl.RemoveJob(e.Ctx, svc.MicroserviceID, j); err != nil {
			return fmt.Errorf("remove job %q from %s: %w", j, label, err)
		}
	}
	return changed(e, label, sj)
}

// changed reports a changed list: one line, or the document with -o json.
func changed(e *Env, label string, sj *api.ServiceJobs) error {
	if e.json() {
		return writeJSON(e.Out, sj)
	}
	fmt.Fprintf(e.Out, "%s: %s, list version %d\n", label, plural(len(sj.Jobs), "job"), sj.Version)
	return nil
}

// printJobs prints one row per job (its owner, or none) and a summary.
func printJobs(e *Env, label string, sj *api.ServiceJobs) error {
	if e.json() {
		return writeJSON(e.Out, sj)
	}
	status := map[int]string{}
	for _, h := range sj.Instances {
		status[h.InstanceNumber] = h.Status
	}
	rows := make([][]string, 0, len(sj.Jobs))
	for _, j := range sj.Jobs {
		n, ok := sj.Assignment[j]
		if !ok {
			rows = append(rows, []string{j, "none", ""})
			continue
		}
		rows = append(rows, []string{j, "#" + strconv.Itoa(n), status[n]})
	}
	if err := writeTable(e.Out, []string{"JOB", "INSTANCE", "STATUS"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "%s: %s (list version %d, lease %ds), assignment version %d, %d unowned\n",
		label, plural(len(sj.Jobs), "job"), sj.Version, sj.LeaseS, sj.AssignmentVersion, len(sj.Unowned))
	return nil
}
