// Package gobench runs Go benchmarks of the workspace and parses their
// output lines ("BenchmarkX-2  1000  1234 ns/op  5678 placements/s").
package gobench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Metric is one value of a benchmark line with its unit.
type Metric struct {
	Value float64
	Unit  string
}

// Result is one benchmark line.
type Result struct {
	// Name without the "Benchmark" prefix and the -GOMAXPROCS suffix,
	// e.g. "PickNode1000" or "PickCluster/100x10".
	Name    string
	Package string
	N       int64
	Metrics []Metric
	Line    string
}

// Metric returns the value of a unit, ok false when the line has none.
func (r Result) Metric(unit string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// Run runs `go test -run ^$ -bench . <args> <pkgs>` in dir and returns the
// parsed results and the whole output.
func Run(ctx context.Context, goBin, dir string, args []string, pkgs ...string) ([]Result, string, error) {
	return RunEnv(ctx, goBin, dir, nil, args, pkgs...)
}

// RunEnv is Run with env added to the environment of go test.
func RunEnv(ctx context.Context, goBin, dir string, env, args []string, pkgs ...string) ([]Result, string, error) {
	argv := append(append([]string{"test", "-run", "^$", "-bench", "."}, args...), pkgs...)
	cmd := exec.CommandContext(ctx, goBin, argv...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	res := Parse(string(out))
	if err != nil {
		return res, string(out), fmt.Errorf("go %s: %w", strings.Join(argv, " "), err)
	}
	return res, string(out), nil
}

// Parse reads the benchmark lines of go test's output; "pkg:" lines name
// the package of the lines after them.
func Parse(out string) []Result {
	var res []Result
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a name alone (a failing or logging benchmark)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		r := Result{Name: trimName(f[0]), Package: pkg, N: n, Line: line}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.Metrics = append(r.Metrics, Metric{v, f[i+1]})
		}
		res = append(res, r)
	}
	return res
}

// trimName drops "Benchmark" and the "-<GOMAXPROCS>" suffix.
func trimName(s string) string {
	s = strings.TrimPrefix(s, "Benchmark")
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			s = s[:i]
		}
	}
	return s
}

// ByName groups results by name (several with -count), in first-seen order.
func ByName(res []Result) (names []string, by map[string][]Result) {
	by = map[string][]Result{}
	for _, r := range res {
		if _, ok := by[r.Name]; !ok {
			names = append(names, r.Name)
		}
		by[r.Name] = append(by[r.Name], r)
	}
	return names, by
}
