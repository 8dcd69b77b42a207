package browsertest

import (
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
	s := startStack(t)
	a := s.deployNginx()
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(".service", "No instances")
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
