package measure

import "testing"

// The summary lines TestJobPoolChanges logs (e2e/jobchanges_test.go) are
// what JobsLive reports: the format is shared by the two.
func TestJobsLiveLine(t *testing.T) {
	for _, tc := range []struct{ line, what, moved, optimum, took string }{
		{"      2→3                              moved  95, optimum 100, every instance on its new set after 200ms", "2→3", "95", "100", "200ms"},
		{"  node killed (instances [2 4])        moved 187, optimum 187, every instance on its new set after 10.1s", "node killed (instances [2 4])", "187", "187", "10.1s"},
	} {
		m := jobsLiveLine.FindStringSubmatch(tc.line)
		if m == nil || m[1] != tc.what || m[2] != tc.moved || m[3] != tc.optimum || m[4] != tc.took {
			t.Errorf("%q: %q", tc.line, m)
		}
	}
	if jobsLiveLine.MatchString("--- PASS: TestJobPoolChanges (120.3s)") {
		t.Error("a test result line parsed as a change")
	}
}
