package httpapi

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestLogQuery(t *testing.T) {
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	var log []byte
	for i, ago := range []time.Duration{30 * time.Minute, 12 * time.Minute, 9 * time.Minute, 5 * time.Minute, time.Minute} {
		stream := wire.StreamStdout
		if i%2 == 1 {
			stream = wire.StreamStderr
		}
		log = wire.AppendLogRecord(log, now.Add(-ago), stream, false, []byte(ago.String()))
	}
	all := wire.ParseLog("plain\n" + string(log)) // a line without a time first
	tests := []struct {
		query string
		want  string // texts, space separated
		err   string
	}{
		{"", "plain 30m0s 12m0s 9m0s 5m0s 1m0s", ""},
		{"tail=2", "5m0s 1m0s", ""},
		{"lines=3", "9m0s 5m0s 1m0s", ""},
		{"tail=1000", "plain 30m0s 12m0s 9m0s 5m0s 1m0s", ""},
		{"since=10m", "9m0s 5m0s 1m0s", ""},
		{"since=10m&tail=1", "1m0s", ""},
		{"since=" + url.QueryEscape(now.Add(-12*time.Minute).Format(time.RFC3339)), "12m0s 9m0s 5m0s 1m0s", ""},
		{"since=0s", "", ""},
		{"tail=0", "", "tail must be a positive integer"},
		{"tail=x", "", "tail must be a positive integer"},
		{"lines=-1", "", "lines must be a positive integer"},
		{"since=yesterday", "", "since must be a duration"},
		{"since=-5m", "", "since must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.query)
			q, err := parseLogQuery(v, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range q.pick(append([]wire.LogLine(nil), all...)) {
				got = append(got, l.Text)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("lines %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}
