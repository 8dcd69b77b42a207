package wire

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseLog(t *testing.T) {
	t1 := time.Date(2026, 12, 6, 6, 30, 0, 123456789, time.UTC)
	t2 := t1.Add(time.Second)
	rec := func(t time.Time, stream string, partial bool, text string) string {
		return string(AppendLogRecord(nil, t, stream, partial, []byte(text)))
	}
	long := strings.Repeat("x", 10)
	tests := []struct {
		name string
		log  string
		want []LogLine
	}{
		{"empty", "", nil},
		{"records", rec(t1, StreamStdout, false, "starting") + rec(t2, StreamStderr, false, "fatal: no"),
			[]LogLine{{t1, StreamStdout, "starting"}, {t2, StreamStderr, "fatal: no"}}},
		{"empty line", rec(t1, StreamStdout, false, ""), []LogLine{{t1, StreamStdout, ""}}},
		{"parts joined, streams apart", rec(t1, StreamStdout, true, long) + rec(t1, StreamStderr, false, "e") + rec(t2, StreamStdout, false, "end"),
			[]LogLine{{t1, StreamStdout, long + "end"}, {t1, StreamStderr, "e"}}},
		{"trailing part kept", rec(t1, StreamStdout, true, "half"), []LogLine{{t1, StreamStdout, "half"}}},
		{"plain lines (older node, console)", "hello\nworld\n", []LogLine{{Text: "hello"}, {Text: "world"}}},
		{"not a record", "2026-12-06 not a time\n" + t1.Format(time.RFC3339Nano) + " stdin F x\n" + t1.Format(time.RFC3339Nano) + " stdout X x",
			[]LogLine{{Text: "2026-12-06 not a time"}, {Text: t1.Format(time.RFC3339Nano) + " stdin F x"}, {Text: t1.Format(time.RFC3339Nano) + " stdout X x"}}},
		{"text with spaces and a mixed log", "boot\n" + rec(t1, StreamStdout, false, " a  b "),
			[]LogLine{{Text: "boot"}, {t1, StreamStdout, " a  b "}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseLog(tt.log)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLog(%q)\n got %+v\nwant %+v", tt.log, got, tt.want)
			}
		})
	}
}

func TestAppendLogRecordFormat(t *testing.T) {
	tm := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	got := string(AppendLogRecord([]byte("x"), tm, StreamStderr, true, []byte("oops")))
	if want := "x2026-01-02T02:04:05.0000006Z stderr P oops\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
