package commands

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// EventsCmd is `thicket events SERVICE [INSTANCE#]`.
type EventsCmd struct {
	Service  string `arg:"" help:"Service id, app/service or unique service name."`
	Instance string `arg:"" optional:"" name:"instance" help:"Instance number (default: every instance of the service)."`
}

// Run prints what happened to the service's instances, oldest first.
func (c *EventsCmd) Run(e *Env) error {
	n, err := instanceArg(c.Instance)
	if err != nil {
		return err
	}
	cl, svc, err := e.service(c.Service)
	if err != nil {
		return err
	}
	label := resolve.Label(*svc)
	var nums []int
	for _, in := range svc.InstanceList {
		if n < 0 || in.InstanceNumber == n {
			nums = append(nums, in.InstanceNumber)
		}
	}
	if n >= 0 && len(nums) == 0 {
		return fmt.Errorf("%s has no instance #%d", label, n)
	}
	type doc struct {
		Instance int `json:"instance_number"`
		api.Event
	}
	var all []doc
	for _, num := range nums {
		evs, err := cl.Events(e.Ctx, svc.MicroserviceID, num)
		if api.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		for _, ev := range evs.Events {
			all = append(all, doc{num, ev})
		}
	}
	// One timeline, oldest first (each instance's list is in order).
	slices.SortStableFunc(all, func(a, b doc) int { return a.Time.Compare(b.Time) })
	if e.json() {
		if all == nil {
			all = []doc{}
		}
		return writeJSON(e.Out, all)
	}
	if len(all) == 0 {
		fmt.Fprintf(e.Out, "No events of %s yet (the root keeps them in memory: a restarted root starts empty).\n", label)
		return nil
	}
	rows := make([][]string, len(all))
	for i, d := range all {
		rows[i] = []string{d.Time.Local().Format(time.DateTime), "#" + strconv.Itoa(d.Instance), d.Source, d.Message}
	}
	return writeTable(e.Out, []string{"TIME", "INSTANCE", "SOURCE", "EVENT"}, rows)
}
