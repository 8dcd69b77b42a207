package browsertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestLogDrawer: the log drawer shows each line with its time, marks the
// stderr lines, says how many lines it shows and from when to when, filters
// them with its search box and downloads what it shows (issue 23, item 6
// and bug 7).
func TestLogDrawer(t *testing.T) {
	s := startStack(t)
	node := workerNode("n1")
	reg := s.registerCluster("edge", node)
	a, svc := s.placedNginx(reg.ClusterID, 1)
	t0 := time.Date(2026, 12, 6, 7, 0, 1, 500e6, time.UTC)
	log := []byte("boot console line\n")
	log = wire.AppendLogRecord(log, t0, wire.StreamStdout, false, []byte("listening on :80"))
	log = wire.AppendLogRecord(log, t0.Add(time.Second), wire.StreamStderr, false, []byte("warning: disk slow"))
	log = wire.AppendLogRecord(log, t0.Add(2*time.Second), wire.StreamStdout, false, []byte("GET / from 10.0.0.2"))
	s.syncCluster(reg, []wire.NodeInfo{node}, wire.InstanceStatus{Key: wire.InstanceKey(svc, 0), Status: wire.StatusRunning, NodeID: node.ID, Node: node.Name, Logs: string(log)})

	b := newBrowser(t, s, desktopW, desktopH)
	dir := t.TempDir()
	b.DownloadTo(dir)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(`.service tr[data-row="0"]`, "RUNNING")
	b.Click(`[data-action="logs"]`)
	b.WaitText("#log-text", "GET / from 10.0.0.2")

	var view struct {
		Lines  []string
		Times  []string
		Stderr []string
		Label  string
	}
	read := func() {
		b.EvalInto(`(() => ({
			lines: [...document.querySelectorAll("#log-text .log-line")].map((e) => e.textContent),
			times: [...document.querySelectorAll("#log-text .log-line time")].map((e) => e.getAttribute("datetime")),
			stderr: [...document.querySelectorAll("#log-text .log-line.is-stderr")].map((e) => e.textContent),
			label: document.querySelector(".log-label").textContent }))()`, &view)
	}
	read()
	clock := func(tm time.Time) string { return tm.Local().Format("15:04:05.000") }
	if len(view.Lines) != 4 || len(view.Times) != 3 || view.Times[1] != "2026-12-06T07:00:02.5Z" {
		t.Errorf("lines %q with times %q: want 4 lines, 3 with their times", view.Lines, view.Times)
	}
	if len(view.Stderr) != 1 || !strings.Contains(view.Stderr[0], "stderr") || !strings.Contains(view.Stderr[0], "warning: disk slow") {
		t.Errorf("stderr lines %q: want the warning, marked", view.Stderr)
	}
	if len(view.Lines) > 1 && !strings.HasPrefix(view.Lines[1], clock(t0)+" listening on :80") {
		t.Errorf("line %q: want its local time first", view.Lines[1])
	}
	if want := "4 lines, " + clock(t0) + " to " + clock(t0.Add(2*time.Second)) + ": all the node reported"; !strings.HasPrefix(view.Label, want) {
		t.Errorf("label %q, want it to start %q", view.Label, want)
	}
	b.Screenshot("all")

	b.Click("#log-search")
	b.Key("DISK")
	b.WaitJS("filtered", `document.querySelectorAll("#log-text .log-line").length === 1`)
	read()
	if !strings.Contains(view.Lines[0], "warning: disk slow") || !strings.HasPrefix(view.Label, "1 of 4 lines match “DISK”") {
		t.Errorf("filtered: %q, label %q", view.Lines, view.Label)
	}
	b.Screenshot("search")

	b.Click("#log-download")
	file := filepath.Join(dir, "nginx-0.log") // the service's name and the instance's number
	var got []byte
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if got, err = os.ReadFile(file); err == nil && len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			es, _ := os.ReadDir(dir)
			t.Fatalf("no download %s: %v (the directory holds %v)", file, err, es)
		}
	}
	if want := "2026-12-06T07:00:02.5Z stderr warning: disk slow\n"; string(got) != want {
		t.Errorf("downloaded %q, want the line shown %q", got, want)
	}
}
