package sla

import (
	"strings"
	"testing"
)

func TestCompletionsValidation(t *testing.T) {
	n := func(i int) *int { return &i }
	const f = "microservices[0]."
	tests := []struct {
		name      string
		oneShot   bool
		comp      int
		backoff   *int
		field     string // "" when valid
		msg       string
		wantRetry int
	}{
		{"one-shot without completions", true, 0, nil, "", "", 0},
		{"completions, default backoff", true, 4, nil, "", "", DefaultBackoffLimit},
		{"completions, no retries", true, 4, n(0), "", "", 0},
		{"completions, most", true, MaxCompletions, n(MaxBackoffLimit), "", "", MaxBackoffLimit},
		{"long-running with completions", false, 4, nil, f + "completions", "only for one_shot", 0},
		{"negative completions", true, -1, nil, f + "completions", "between 1 and", 0},
		{"too many completions", true, MaxCompletions + 1, nil, f + "completions", "between 1 and", 0},
		{"backoff without completions", true, 0, n(3), f + "backoff_limit", "with completions", 0},
		{"negative backoff", true, 4, n(-1), f + "backoff_limit", "between 0 and", 0},
		{"too large backoff", true, 4, n(MaxBackoffLimit + 1), f + "backoff_limit", "between 0 and", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validSLA(t).Applications[0].Microservices[0]
			m.OneShot, m.Completions, m.BackoffLimit = tt.oneShot, tt.comp, tt.backoff
			errs := ValidateMicroservice("microservices[0]", &m)
			if tt.field == "" {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				if got := m.Retries(); got != tt.wantRetry {
					t.Errorf("Retries() = %d, want %d", got, tt.wantRetry)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("errors %v, want one on %s containing %q", errs, tt.field, tt.msg)
			}
		})
	}
}

func TestCompletionsDecode(t *testing.T) {
	b := mutateJSON(t, func(doc map[string]any) {
		m := msJSON(doc, 0)
		m["one_shot"], m["completions"], m["backoff_limit"] = true, 3, 0
	})
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	m := s.Applications[0].Microservices[0]
	if m.Completions != 3 || m.BackoffLimit == nil || *m.BackoffLimit != 0 || m.Retries() != 0 {
		t.Errorf("decoded completions %d, backoff_limit %v", m.Completions, m.BackoffLimit)
	}
	b = mutateJSON(t, func(doc map[string]any) { msJSON(doc, 0)["completions"] = "3" })
	if errs := check(b); errs.First().Field != "applications[0].microservices[0].completions" {
		t.Errorf("string completions: %v", errs)
	}
}
