package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestDashboardHonestHealth: what the dashboard shows of a service with an
// instance that finds no room, of capacity, and of a node that is lost
// (issue 23, bugs 4, 5 and 6):
//   - a service with one of two instances NO_CAPACITY is DEGRADED, 1/2
//     running, and so is its application in the list;
//   - the infrastructure page shows what placement counts: the memory the
//     running instance reserves, of the node's;
//   - a lost node's usage is not shown as current (greyed, with its age),
//     its cluster's badge is not green with no active node, and the
//     instance it ran is greyed as last known.
func TestDashboardHonestHealth(t *testing.T) {
	s := newSystem(t)
	c := s.addClusterOn(bridgeAddr, "honest", "")
	n := s.addOverlayNode(c, "h1", 61, 1024)
	s.waitNodes(map[string]int{"honest": 1})
	ids := s.app("honest", map[string]any{"microservice_name": "big", "memory": 600, "environment": []string{"INSTANCE=big"}})
	big := ids["big"]
	s.scaleUp(big)
	s.api.waitInstance(big, 0, 2*time.Minute, "running", running)
	s.scaleUp(big) // no room for a second 600 MB on a 1024 MB node
	s.api.waitInstance(big, 1, time.Minute, "no capacity", func(in api.Instance) bool { return in.Status == api.StatusNoCapacity })
	if svc := s.api.service(big); svc.Status != api.StatusDegraded || svc.Running != 1 || svc.Desired != 2 {
		t.Errorf("service: %s (%s) %d/%d running; want DEGRADED 1/2", svc.Status, svc.StatusDetail, svc.Running, svc.Desired)
	}

	b := s.adminDashboard(t)
	b.WaitText("main .table", "honest")
	b.WaitText("main .table", "DEGRADED")
	b.WaitText("main .table", "1/2 running")
	b.Open("#/apps/" + ids["app"])
	b.WaitText(".service .service-status", "DEGRADED")
	b.WaitText(".service .service-status", "1/2 running")
	b.WaitText(`.service tr[data-row="1"]`, "NO_CAPACITY")
	b.Screenshot("degraded")

	// Events (issue 23, item 1): what happened to instance 0, told by the
	// tier that knows it, in the instance's timeline.
	b.Click(`.service tr[data-row="0"] [data-action="events"]`)
	b.Visible("dialog.drawer[open]")
	b.WaitText("#event-list", "requested by Admin")
	b.WaitText("#event-list", "placed on node "+n.name)
	b.WaitText("#event-list", "started")
	b.WaitText("#event-list", "node "+n.name+" (cluster honest)")
	b.Screenshot("events")
	b.Key(kb.Escape)
	b.WaitJS("events closed", `!document.querySelector("dialog.drawer")`)

	b.Open("#/infra")
	b.WaitText(".cluster", n.name)
	var reserved []struct{ Label, Reserved, Total string }
	b.EvalInto(`[...document.querySelectorAll(".cluster tbody .meter-reserved")].map((m) => ({
		label: m.querySelector(".meter-label").textContent, reserved: m.dataset.reserved, total: m.dataset.total}))`, &reserved)
	if len(reserved) != 2 || reserved[1].Label != "Memory reserved" || reserved[1].Reserved != "600" || reserved[1].Total != "1024" {
		t.Errorf("the node's reserved capacity: %+v, want memory 600 of 1024", reserved)
	}
	b.WaitJS("node usage shown while it is active", `document.querySelectorAll(".cluster tbody [role=meter]").length === 4 && !document.querySelector(".cluster .stale")`)
	b.Screenshot("capacity")

	// The node's page: its address, capacity and the instance it runs.
	b.Click(`.cluster a[data-key^="node-"]`)
	b.WaitText(".node-page", n.addr)
	b.WaitText(".node-page", "honest/big")
	b.WaitText(".node-page .sub-title", "Instances (1)")
	b.WaitJS("memory reserved on the node page", `document.querySelector(".node-page .meter-reserved[data-reserved='600'][data-total='1024']") !== null`)
	b.Screenshot("node")
	b.Open("#/infra")
	b.WaitText(".cluster", n.name)

	n.proc.Stop()
	testharness.WaitFor(t, time.Minute, "the instance UNKNOWN", func() (bool, string) {
		in, _ := s.api.instance(big, 0)
		return in.Status == api.StatusUnknown, in.Status
	})
	testharness.WaitFor(t, time.Minute, "the loss among the instance's events", func() (bool, string) {
		evs, err := s.api.client().Events(context.Background(), big, 0)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs.Events {
			if strings.Contains(ev.Message, "node "+n.name+" lost") && ev.Source == "cluster honest" {
				return true, ""
			}
		}
		return false, fmt.Sprint(evs.Events)
	})
	b.WaitText(".cluster .stale", "last seen")
	b.WaitText(".cluster .service-status", "no active node")
	b.WaitJS("no usage bar of the lost node", `!document.querySelector(".cluster tbody [role=meter][aria-label^='CPU used']")`)
	b.Screenshot("lost-node")
	b.Open("#/apps/" + ids["app"])
	b.WaitJS("the lost node's instance greyed", `document.querySelector('.service tr[data-row="0"]').classList.contains("is-stale")`)
	b.WaitText(`.service tr[data-row="0"]`, "last known")
	b.Screenshot("")
}
