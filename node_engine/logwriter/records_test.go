package logwriter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/logline"
)

func TestLogRecords(t *testing.T) {
	long := strings.Repeat("y", logline.MaxBytes+5)
	tests := []struct {
		name   string
		writes []struct{ stream, data string }
		want   string // records as "stream tag text" lines
	}{
		{"lines split across writes", []struct{ stream, data string }{{"stdout", "sta"}, {"stdout", "rting\nready\n"}},
			"stdout F starting\nstdout F ready\n"},
		{"streams kept apart", []struct{ stream, data string }{{"stdout", "half "}, {"stderr", "fatal\n"}, {"stdout", "done\n"}},
			"stderr F fatal\nstdout F half done\n"},
		{"last line without newline written at close", []struct{ stream, data string }{{"stderr", "bye"}},
			"stderr F bye\n"},
		{"empty line", []struct{ stream, data string }{{"stdout", "\n"}}, "stdout F \n"},
		{"long line in parts", []struct{ stream, data string }{{"stdout", long + "\n"}},
			"stdout P " + long[:logline.MaxBytes] + "\nstdout F yyyyy\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			rec := NewRecords(&buf)
			tm := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
			rec.now = func() time.Time { return tm }
			streams := map[string]*Stream{"stdout": rec.Stream("stdout"), "stderr": rec.Stream("stderr")}
			for _, w := range tt.writes {
				if n, err := streams[w.stream].Write([]byte(w.data)); n != len(w.data) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			for _, s := range streams {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			prefix := tm.Format(time.RFC3339Nano) + " "
			var got strings.Builder
			for _, l := range strings.SplitAfter(buf.String(), "\n") {
				if l != "" && !strings.HasPrefix(l, prefix) {
					t.Fatalf("record %q has no time prefix %q", l, prefix)
				}
				got.WriteString(strings.TrimPrefix(l, prefix))
			}
			if got.String() != tt.want {
				t.Errorf("records:\n%q\nwant\n%q", got.String(), tt.want)
			}
		})
	}
}
