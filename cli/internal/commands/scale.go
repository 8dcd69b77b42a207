package commands

import (
	"fmt"
	"slices"

	"github.com/thicket-edge/thicket/cli/internal/resolve"
	"github.com/thicket-edge/thicket/cli/internal/rollout"
)

// ScaleCmd is `thicket scale SERVICE N`.
type ScaleCmd struct {
	Service   string `arg:"" help:"Service id, app/service or unique service name."`
	Count     int    `arg:"" name:"N" help:"Number of instances wanted."`
	WaitFlags `embed:""`
}

// Run adds instances, or removes the highest-numbered ones, until the
// service has N, then waits until they all run.
func (c *ScaleCmd) Run(e *Env) error {
	if c.Count < 0 {
		return usagef("N must not be negative")
	}
	if c.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	numbers := make([]int, 0, len(svc.InstanceList))
	for _, in := range svc.InstanceList {
		numbers = append(numbers, in.InstanceNumber)
	}
	slices.Sort(numbers)
	for len(numbers) > c.Count {
		n := numbers[len(numbers)-1]
		if err := cl.DeleteInstance(e.Ctx, svc.MicroserviceID, n); err != nil {
			return fmt.Errorf("remove %s #%d: %w", label, n, err)
		}
		fmt.Fprintf(e.Out, "%s #%d removed\n", label, n)
		numbers = numbers[:len(numbers)-1]
	}
	for len(numbers) < c.Count {
		n, err := cl.AddInstance(e.Ctx, svc.MicroserviceID)
		if err != nil {
			return fmt.Errorf("add an instance of %s: %w", label, err)
		}
		fmt.Fprintf(e.Out, "%s #%d requested\n", label, n)
		numbers = append(numbers, n)
	}
	fmt.Fprintf(e.Out, "%s scaled to %s\n", label, plural(c.Count, "instance"))
	if !c.Wait || c.Count == 0 {
		return nil
	}
	targets := make([]rollout.Target, len(numbers))
	for i, n := range numbers {
		targets[i] = rollout.Target{ServiceID: svc.MicroserviceID, Label: label, Number: n}
	}
	return waitRollout(e, cl, targets, c.Timeout, e.Out)
}
