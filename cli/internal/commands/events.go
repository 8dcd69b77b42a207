package commands

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/resolve"
)

// EventsCmd is `thicket events SERVICE [INSTANCE#] [--follow]`.
type EventsCmd struct {
	Service  string `arg:"" help:"Service id, app/service or unique service name."`
	Instance string `arg:"" optional:"" name:"instance" help:"Instance number (default: every instance of the service)."`
	Follow   bool   `short:"f" help:"Then print new events as they happen (follows the root's live stream) until interrupted; -o json prints one JSON object per line."`
}

// eventDoc is one event of one instance.
type eventDoc struct {
	Instance int `json:"instance_number"`
	api.Event
}

// key identifies an event (times compared as instants).
func (d eventDoc) key() string {
	return fmt.Sprintf("%d %d %s %s", d.Instance, d.Time.UnixNano(), d.Source, d.Message)
}

func (d eventDoc) row() []string {
	return []string{d.Time.Local().Format(time.DateTime), "#" + strconv.Itoa(d.Instance), d.Source, d.Message}
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
	nums := instanceNumbers(svc, n)
	if n >= 0 && len(nums) == 0 {
		return fmt.Errorf("%s has no instance #%d", label, n)
	}
	all, err := instanceEvents(e, cl, svc.MicroserviceID, nums)
	if err != nil {
		return err
	}
	switch {
	case c.Follow && e.json():
		for _, d := range all {
			if err := json.NewEncoder(e.Out).Encode(d); err != nil {
				return err
			}
		}
	case e.json():
		if all == nil {
			all = []eventDoc{}
		}
		return writeJSON(e.Out, all)
	case len(all) == 0:
		fmt.Fprintf(e.Out, "No events of %s yet (the root keeps them in memory: a restarted root starts empty).\n", label)
	default:
		rows := make([][]string, len(all))
		for i, d := range all {
			rows[i] = d.row()
		}
		if err := writeTable(e.Out, []string{"TIME", "INSTANCE", "SOURCE", "EVENT"}, rows); err != nil {
			return err
		}
	}
	if !c.Follow {
		return nil
	}
	return c.follow(e, cl, svc.MicroserviceID, n, all)
}

// follow prints the events that arrive after shown, as the live stream
// says an instance of the service has new ones (or that the service
// changed, for instances added since).
func (c *EventsCmd) follow(e *Env, cl *api.Client, svcID string, n int, shown []eventDoc) error {
	seen := map[string]bool{}
	for _, d := range shown {
		seen[d.key()] = true
	}
	prefix := svcID + "."
	return cl.Watch(e.Ctx, "", func(b api.ChangeBatch) error {
		changed := b.Reset
		for _, ch := range b.Changes {
			if (ch.Kind == api.ChangeEvent || ch.Kind == api.ChangeInstance && !ch.Usage) &&
				(ch.ID == "*" || strings.HasPrefix(ch.ID, prefix)) {
				changed = true
			}
		}
		if !changed {
			return nil
		}
		svc, err := cl.Service(e.Ctx, svcID)
		if api.IsNotFound(err) {
			return fmt.Errorf("the service was deleted")
		} else if err != nil {
			return err
		}
		all, err := instanceEvents(e, cl, svcID, instanceNumbers(svc, n))
		if err != nil {
			return err
		}
		for _, d := range all {
			if seen[d.key()] {
				continue
			}
			seen[d.key()] = true
			if e.json() {
				err = json.NewEncoder(e.Out).Encode(d)
			} else {
				_, err = fmt.Fprintln(e.Out, strings.Join(d.row(), "  "))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// instanceNumbers are the numbers of the service's instances, or n alone
// if it is one of them (n < 0: all).
func instanceNumbers(svc *api.Service, n int) []int {
	var nums []int
	for _, in := range svc.InstanceList {
		if n < 0 || in.InstanceNumber == n {
			nums = append(nums, in.InstanceNumber)
		}
	}
	return nums
}

// instanceEvents is the events of the instances, one timeline, oldest
// first.
func instanceEvents(e *Env, cl *api.Client, svcID string, nums []int) ([]eventDoc, error) {
	var all []eventDoc
	for _, num := range nums {
		evs, err := cl.Events(e.Ctx, svcID, num)
		if api.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, ev := range evs.Events {
			all = append(all, eventDoc{num, ev})
		}
	}
	// Each instance's list is in order.
	slices.SortStableFunc(all, func(a, b eventDoc) int { return a.Time.Compare(b.Time) })
	return all, nil
}
