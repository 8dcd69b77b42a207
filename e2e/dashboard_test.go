package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestDashboard drives the dashboard that thicket-root serves at / in
// Debian's headless Chromium, against a whole system: a root, a cluster and
// an overlay node running real containers. It deploys the nginx example from
// the SLA form (with the test's own image, since no public registry is
// reachable here), sees it reach RUNNING without a reload, follows its log
// while requests arrive, scales it up and down, sees the cluster and node on
// the infrastructure page, and deletes the application. Screenshots go to the
// test's artifact directory (go test -artifacts).
func TestDashboard(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("munich", "")
	// Two nodes: the example publishes a host port, so each node holds
	// at most one of its instances.
	n1 := s.addOverlayNode(c, "d1", 41, 1024)
	n2 := s.addOverlayNode(c, "d2", 42, 1024)
	s.waitNodes(map[string]int{"munich": 2})

	// The example as a user would paste it, with the local image and its port.
	raw, err := os.ReadFile(filepath.Join("..", "sla_examples", "nginx.json"))
	if err != nil {
		t.Fatal(err)
	}
	sla := strings.Replace(string(raw), `"docker.io/library/nginx:latest"`, fmt.Sprintf("%q", s.image), 1)
	sla = strings.Replace(sla, `"80:80/tcp"`, `"18090:8080/tcp"`, 1)
	if sla == string(raw) || !strings.Contains(sla, s.image) || !strings.Contains(sla, "18090:8080") {
		t.Fatal("sla_examples/nginx.json no longer has the image and port this test replaces")
	}

	b := s.adminDashboard(t)
	b.WaitJS("deploy form open on an empty list", `!document.querySelector("#deploy-panel").hidden`)
	b.Paste("#sla-input", sla)
	b.Click("#sla-deploy") // "Start one instance of each service" is ticked
	b.WaitText(".toasts", "1 instance requested")
	b.Click(`a[data-key^="open-"]`)

	var apps []api.Application
	s.api.must("GET", "/api/applications/", nil, &apps)
	if len(apps) != 1 || apps[0].ApplicationName != "nginx" || len(apps[0].Microservices) != 1 {
		t.Fatalf("applications after deploying from the form: %+v", apps)
	}
	svc := apps[0].Microservices[0]

	// RUNNING appears without a reload, with the node, cluster and addresses.
	row0 := `.service tr[data-row="0"]`
	b.WaitText(row0, "RUNNING")
	in := s.runningOn(svc, 0)
	b.WaitText(row0, in.NodeName)
	b.WaitText(row0, "munich")
	b.WaitText(row0, in.InstanceIP)
	b.WaitText(row0, fmt.Sprintf("%s:%d", in.HostIP, in.HostPort))
	b.WaitText(".service .facts", "10.30.0.80")
	b.WaitText(".service .service-status", "1 RUNNING")
	if body, err := serves(in); err != nil || !strings.Contains(body, "hello from") {
		t.Fatalf("the deployed instance does not serve on %s:%d: %q %v", in.HostIP, in.HostPort, body, err)
	}
	b.Screenshot("running")

	// The log panel follows new lines: each request adds one.
	b.Click(`[data-action="logs"]`)
	b.WaitText("#log-text", "listening on")
	var before int
	b.EvalInto(`document.querySelector("#log-text").textContent.split("\n").filter(Boolean).length`, &before)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			serves(in)
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	b.WaitJS("new log lines", fmt.Sprintf(`document.querySelector("#log-text").textContent.split("\n").filter((l) => l.includes("GET / from")).length >= 2 &&
		document.querySelector("#log-text").textContent.split("\n").filter(Boolean).length > %d`, before+1))
	close(stop)
	<-done
	b.WaitJS("log scrolled to the newest line", `(() => { const p = document.querySelector("#log-text");
		return p.scrollHeight - p.scrollTop - p.clientHeight < 8; })()`)
	// The label says what is shown (issue 23, bug 7: it said "Last 200
	// lines" of a 4 KiB tail).
	b.WaitJS("the log label counts the lines shown", `(() => {
		const n = document.querySelector("#log-text").textContent.replace(/\n$/, "").split("\n").length;
		return document.querySelector(".log-label").textContent.startsWith(n + " line"); })()`)
	b.Screenshot("logs")
	b.Key(kb.Escape)
	b.WaitJS("log panel closed", `!document.querySelector("dialog.drawer")`)

	// Scale up: a second instance reaches RUNNING on the other node.
	b.Click(`[data-action="add-instance"]`)
	b.WaitText(`.service tr[data-row="1"]`, "RUNNING")
	b.WaitText(".service .service-status", "2 RUNNING")
	if in1 := s.runningOn(svc, 1); in1.NodeName == in.NodeName {
		t.Errorf("both instances on %s, which has one host port 18090", in.NodeName)
	} else {
		b.WaitText(`.service tr[data-row="1"]`, in1.NodeName)
	}
	testharness.WaitFor(t, time.Minute, "two containers", func() (bool, string) {
		got := len(s.instanceContainers(svc, 0)) + len(s.instanceContainers(svc, 1))
		return got == 2, fmt.Sprint(got)
	})

	// Scale down: remove instance 1; its container goes away.
	b.Click(`.service tr[data-row="1"] [data-action="remove-instance"]`)
	b.Visible("dialog.modal[open]")
	b.Click("dialog.modal [data-confirm]")
	b.WaitJS("row 1 gone", `!document.querySelector('.service tr[data-row="1"]')`)
	b.WaitText(".service .service-status", "1 RUNNING")
	testharness.WaitFor(t, time.Minute, "instance 1's container removed", func() (bool, string) {
		got := s.instanceContainers(svc, 1)
		return len(got) == 0, fmt.Sprint(got)
	})

	// The infrastructure page shows the cluster and its node, live.
	b.Click(`.nav a[data-nav="infra"]`)
	b.WaitText(".cluster", "munich")
	b.WaitText(".cluster", n1.name)
	b.WaitText(".cluster", n2.name)
	b.WaitText(".cluster", "container")
	var meters []string
	b.EvalInto(`[...document.querySelectorAll(".cluster [role=meter]")].map((m) => m.getAttribute("aria-valuenow"))`, &meters)
	if len(meters) != 12 {
		t.Errorf("meters on the infrastructure page: %v, want CPU and memory, used and reserved, for the cluster and each node", meters)
	}
	b.Screenshot("infrastructure")

	// Delete the application: the list empties and the container stops.
	b.Click(`.nav a[data-nav="apps"]`)
	b.WaitText("main .table", "nginx")
	b.Click(`[data-action="delete-app"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Delete nginx?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main", "No applications yet")
	code, body := s.api.do("GET", "/api/applications/", nil)
	var left []api.Application
	if json.Unmarshal(body, &left); code != 200 || len(left) != 0 {
		t.Errorf("after deleting from the dashboard: %d %s", code, body)
	}
	testharness.WaitFor(t, time.Minute, "the application's containers removed", func() (bool, string) {
		got := s.instanceContainers(svc, 0)
		return len(got) == 0, fmt.Sprint(got)
	})
	b.Screenshot("")

	// An admin revokes the join token and deletes the cluster from the
	// infrastructure page (the cluster, still running, cannot join again).
	var toks []api.JoinToken
	s.api.must("GET", "/api/clusters/tokens", nil, &toks)
	for _, tk := range toks {
		s.api.must("DELETE", "/api/clusters/tokens/"+tk.ID, nil, nil)
	}
	b.Click(`.nav a[data-nav="infra"]`)
	b.WaitText(".cluster", "munich")
	b.Click(`[data-action="delete-cluster"]`)
	b.WaitText("dialog.modal", "Delete cluster")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main", "No cluster has joined yet")
	var cls []api.Cluster
	if code, body := s.api.do("GET", "/api/clusters/", nil); json.Unmarshal(body, &cls) != nil || code != 200 || len(cls) != 0 {
		t.Errorf("after deleting the cluster from the dashboard: %d %s", code, body)
	}
}
