package commands

import (
	"fmt"
	"strconv"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/logtail"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// LogsCmd is `thicket logs SERVICE [INSTANCE#]`.
type LogsCmd struct {
	Service    string        `arg:"" help:"Service id, app/service or unique service name."`
	Instance   string        `arg:"" optional:"" name:"instance" help:"Instance number (default: the lowest)."`
	Follow     bool          `short:"f" help:"Keep printing new lines until Ctrl-C or the instance is removed."`
	Tail       int           `short:"n" default:"100" help:"Lines of the past to print first."`
	Since      string        `help:"Only lines written since then: a duration (10m, 1h30m) or an RFC 3339 time."`
	Timestamps bool          `short:"t" help:"Print each line's time (as the node read it) before it."`
	Interval   time.Duration `default:"1s" hidden:"" help:"How often -f polls."`
}

// followWindow is how many lines -f reads per poll to find where it left off.
const followWindow = 1000

// Run prints the instance's output: stdout lines on stdout, stderr lines on
// stderr.
func (c *LogsCmd) Run(e *Env) error {
	if c.Tail < 1 {
		return usagef("--tail must be at least 1")
	}
	if err := checkSince(c.Since); err != nil {
		return err
	}
	n, err := instanceArg(c.Instance)
	if err != nil {
		return err
	}
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	if n < 0 {
		if len(svc.InstanceList) == 0 {
			return fmt.Errorf("%s has no instances (thicket scale %s 1 starts one)", label, label)
		}
		n = svc.InstanceList[0].InstanceNumber
		for _, in := range svc.InstanceList {
			n = min(n, in.InstanceNumber)
		}
	}
	l, err := cl.LogLines(e.Ctx, svc.MicroserviceID, n, api.LogQuery{Tail: c.Tail, Since: c.Since})
	if api.IsNotFound(err) {
		return fmt.Errorf("%s has no instance #%d", label, n)
	}
	if err != nil {
		return err
	}
	c.print(e, l.Lines)
	if !c.Follow {
		return nil
	}
	shown := logtail.Keys(l.Lines)
	for {
		select {
		case <-e.Ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
		l, err := cl.LogLines(e.Ctx, svc.MicroserviceID, n, api.LogQuery{Tail: followWindow})
		switch {
		case e.Ctx.Err() != nil:
			return nil
		case api.IsNotFound(err):
			fmt.Fprintf(e.Err, "%s #%d was removed\n", label, n)
			return nil
		case err != nil:
			return err
		}
		cur := logtail.Keys(l.Lines)
		c.print(e, l.Lines[len(l.Lines)-len(logtail.New(shown, cur)):])
		shown = cur
	}
}

// print writes lines, each to the stream it was written to (stdout when
// not known), with its time under --timestamps.
func (c *LogsCmd) print(e *Env, lines []api.LogLine) {
	for _, l := range lines {
		w := e.Out
		if l.Stream == "stderr" {
			w = e.Err
		}
		if c.Timestamps {
			ts := "-"
			if !l.Time.IsZero() {
				ts = l.Time.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintln(w, ts, l.Text)
		} else {
			fmt.Fprintln(w, l.Text)
		}
	}
}

// checkSince refuses a --since the root would refuse, before asking it.
func checkSince(s string) error {
	if s == "" {
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return nil
	}
	return usagef("--since %q is neither a duration (10m, 1h30m) nor an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

// instanceArg is an optional instance number argument: -1 when not given.
func instanceArg(arg string) (int, error) {
	if arg == "" {
		return -1, nil
	}
	v, err := strconv.Atoi(arg)
	if err != nil || v < 0 {
		return 0, usagef("instance number %q is not a non-negative integer", arg)
	}
	return v, nil
}
