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
	Service  string        `arg:"" help:"Service id, app/service or unique service name."`
	Instance string        `arg:"" optional:"" name:"instance" help:"Instance number (default: the lowest)."`
	Follow   bool          `short:"f" help:"Keep printing new lines until Ctrl-C or the instance is removed."`
	Tail     int           `short:"n" default:"100" help:"Lines of the past to print first."`
	Interval time.Duration `default:"1s" hidden:"" help:"How often -f polls."`
}

// followWindow is how many lines -f reads per poll to find where it left off.
const followWindow = 1000

// Run prints the instance's output.
func (c *LogsCmd) Run(e *Env) error {
	if c.Tail < 1 {
		return usagef("--tail must be at least 1")
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
	l, err := cl.Logs(e.Ctx, svc.MicroserviceID, n, c.Tail)
	if api.IsNotFound(err) {
		return fmt.Errorf("%s has no instance #%d", label, n)
	}
	if err != nil {
		return err
	}
	shown := logtail.Lines(l.Logs)
	for _, line := range shown {
		fmt.Fprintln(e.Out, line)
	}
	if !c.Follow {
		return nil
	}
	for {
		select {
		case <-e.Ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
		l, err := cl.Logs(e.Ctx, svc.MicroserviceID, n, followWindow)
		switch {
		case e.Ctx.Err() != nil:
			return nil
		case api.IsNotFound(err):
			fmt.Fprintf(e.Err, "%s #%d was removed\n", label, n)
			return nil
		case err != nil:
			return err
		}
		cur := logtail.Lines(l.Logs)
		for _, line := range logtail.New(shown, cur) {
			fmt.Fprintln(e.Out, line)
		}
		shown = cur
	}
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
