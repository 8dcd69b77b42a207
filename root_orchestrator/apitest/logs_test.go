package apitest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestInstanceLogsSinceTail: the root answers an instance's log as lines
// with their time and stream, and ?since and ?tail select them; a bad
// parameter is a 400 (issue 23, item 6).
func TestInstanceLogsSinceTail(t *testing.T) {
	p := placeOne(t, "logapp")
	r, admin, svc, app := p.r, p.admin, p.svc, p.app
	now := time.Now().UTC()
	log := []byte("plain line of an older node\n")
	log = wire.AppendLogRecord(log, now.Add(-20*time.Minute), wire.StreamStdout, false, []byte("starting"))
	log = wire.AppendLogRecord(log, now.Add(-5*time.Minute), wire.StreamStderr, false, []byte("warning: slow"))
	log = wire.AppendLogRecord(log, now.Add(-time.Minute), wire.StreamStdout, false, []byte("serving"))
	p.sync([]wire.InstanceStatus{{Key: wire.InstanceKey(svc, 0), Status: wire.StatusRunning, NodeID: "n1", Node: "n1", Logs: string(log)}})

	get := func(query string) api.Logs {
		t.Helper()
		var l api.Logs
		r.must("GET", "/api/service/"+svc+"/instance/0/logs"+query, admin, nil, &l)
		return l
	}
	l := get("")
	if l.Logs != "plain line of an older node\nstarting\nwarning: slow\nserving\n" || len(l.Lines) != 4 {
		t.Fatalf("the whole log: %q, %+v", l.Logs, l.Lines)
	}
	if w := l.Lines[2]; w.Stream != "stderr" || w.Text != "warning: slow" || !w.Time.Equal(now.Add(-5*time.Minute)) {
		t.Errorf("a stderr line: %+v", w)
	}
	if p := l.Lines[0]; !p.Time.IsZero() || p.Stream != "" {
		t.Errorf("a plain line: %+v, want no time and no stream", p)
	}
	for _, tt := range []struct{ query, want string }{
		{"?tail=1", "serving\n"},
		{"?lines=2", "warning: slow\nserving\n"},
		{"?since=10m", "warning: slow\nserving\n"},
		{"?since=10m&tail=1", "serving\n"},
		{"?since=" + url.QueryEscape(now.Add(-2*time.Minute).Format(time.RFC3339Nano)), "serving\n"},
	} {
		if got := get(tt.query).Logs; got != tt.want {
			t.Errorf("%s: %q, want %q", tt.query, got, tt.want)
		}
	}
	for _, bad := range []string{"?tail=0", "?since=soon", "?since=-1m"} {
		if resp := r.do("GET", "/api/service/"+svc+"/instance/0/logs"+bad, admin, nil); resp.Status != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", bad, resp)
		}
	}
	// The instance document shows the text, without the records' prefixes.
	var svcs []api.Service
	r.must("GET", "/api/services/"+app.ApplicationID, admin, nil, &svcs)
	if got := svcs[0].InstanceList[0].Logs; got != "plain line of an older node\nstarting\nwarning: slow\nserving\n" {
		t.Errorf("the instance document's logs: %q", got)
	}
}
