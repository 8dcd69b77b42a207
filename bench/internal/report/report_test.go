package report

import (
	"errors"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	r := Report{Mode: "short", Command: "thicket-bench -short",
		Targets: []Target{
			{What: "deploy", Target: "floor + ≤ 150 ms", Measured: "floor + 90 ms", Verdict: Met},
			{What: "failover", Target: "≤ 5 s", Measured: "6.1 s", Verdict: Missed, Note: "grace 3 s"},
		},
		Sections: []Section{{Title: "Deploy", Tables: []Table{{Header: []string{"a", "b"}, Rows: [][]string{{"x|y", "1\n2"}}}},
			Err: errors.New("boom")}},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| deploy |  | floor + ≤ 150 ms | floor + 90 ms | met |",
		"| failover |  | ≤ 5 s | 6.1 s | **MISSED** — grace 3 s |",
		"**Targets missed in this run:** failover.",
		"## Deploy", "**The measurement failed:** boom", `| x\|y | 1 … |`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestFormats(t *testing.T) {
	for got, want := range map[string]string{
		Ms(87.4): "87 ms", Ms(1240): "1.24 s", Ms(3.21): "3.2 ms", MB(12.345): "12.3 MB",
		Pct(0.456): "0.46 %", Pct(85.2): "85 %", Ratio(1.846): "×1.85", Rate(5123.4): "5123/s",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
