package browsertest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// TestSLAErrorsClearOnEditAndCancel: the problems of an SLA are those of the
// text as it was: typing clears them, and so does Cancel (reopened, the form
// shows no old errors). Issue 23, bug 8.
func TestSLAErrorsClearOnEditAndCancel(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	bad := strings.Replace(nginxSLA(t), `"80:80/tcp"`, `"80:"`, 1)
	shown := `!document.querySelector("#sla-input-error").hidden`
	gone := `document.querySelector("#sla-input-error").hidden && !document.querySelector("#sla-input").hasAttribute("aria-invalid") && !document.querySelector(".editor-gutter .is-error")`

	b.Paste("#sla-input", bad)
	b.Click("#sla-deploy")
	b.WaitText("#sla-input-error .field-path", "applications[0].microservices[0].port")
	b.Click("#sla-input")
	b.Key(kb.End) // no change: the problems stay
	b.WaitJS("problems still shown", shown)
	b.Key(" ")
	b.WaitJS("problems cleared by an edit", gone)
	b.Screenshot("edited")

	b.Click("#sla-deploy")
	b.WaitText("#sla-input-error .field-path", "applications[0].microservices[0].port")
	b.Click(`#deploy-panel button.btn-secondary:not(.file-btn)`) // Cancel
	b.WaitJS("panel closed", `document.querySelector("#deploy-panel").hidden`)
	b.Click("#new-app")
	b.WaitJS("panel open", `!document.querySelector("#deploy-panel").hidden`)
	b.WaitJS("no old problems after Cancel and reopen", gone)
	b.Screenshot("")
}

// TestServicePageDoesNotPollClusters: the services page does not fetch
// every cluster (with all its nodes) at every refresh only to name them;
// here no instance names a cluster, so it fetches none. Issue 23, bug 10.
func TestServicePageDoesNotPollClusters(t *testing.T) {
	_, _, b := servicesPage(t)
	b.Click(`[data-action="add-instance"]`)
	b.WaitText(`.service tr[data-row="0"]`, "NO_CAPACITY")
	time.Sleep(5 * time.Second) // two refreshes and more
	var n struct{ Services, Clusters int }
	b.EvalInto(`(() => {
		const rs = performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname);
		return {services: rs.filter((p) => p.startsWith("/api/services/")).length,
			clusters: rs.filter((p) => p.startsWith("/api/clusters")).length};
	})()`, &n)
	if n.Services < 3 {
		t.Fatalf("the page refreshed %d times in 5 s; the test measures nothing", n.Services)
	}
	if n.Clusters != 0 {
		t.Errorf("the services page fetched the cluster list %d times in %d refreshes", n.Clusters, n.Services)
	}
}

// TestScaleService: a service is scaled to N from its page: new instances
// are requested, and scaling down removes the highest numbers (issue 23,
// item 4). A bad N changes nothing.
func TestScaleService(t *testing.T) {
	s, a, b := servicesPage(t)
	count := func() int {
		var svc []struct {
			Instances []struct {
				N int `json:"instance_number"`
			} `json:"instance_list"`
		}
		s.api("GET", "/api/services/"+a.ID, nil, &svc)
		return len(svc[0].Instances)
	}
	scaleTo := func(n string) {
		b.EvalInto(`(() => { const i = document.querySelector(".scale-input"); i.value = `+strconv.Quote(n)+`; return true; })()`, new(bool))
		b.Click(`[data-action="scale"]`)
	}
	scaleTo("3")
	b.WaitText(".service .sub-title", "Instances (3)")
	if n := count(); n != 3 {
		t.Fatalf("after scaling to 3: %d instances", n)
	}
	b.Screenshot("three")
	scaleTo("1")
	b.WaitText(".service .sub-title", "Instances (1)")
	b.WaitJS("instance 0 kept", `!!document.querySelector('.service tr[data-row="0"]') && !document.querySelector('.service tr[data-row="2"]')`)
	scaleTo("-2")
	b.WaitText(".toasts", "whole number from 0 to 100")
	if n := count(); n != 1 {
		t.Errorf("a bad number changed the instances: %d", n)
	}
	b.Screenshot("")
}

// servicesPage deploys the nginx example and opens its services page as
// the admin.
func servicesPage(t *testing.T) (*stack, app, *Browser) {
	s := startStack(t)
	a := s.deployNginx()
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(".service", "No instances")
	return s, a, b
}
