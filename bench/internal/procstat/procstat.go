// Package procstat measures processes from /proc: resident memory (VmRSS)
// and CPU time (utime + stime), sampled over a window.
package procstat

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/stats"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// RSSKB is a process's resident set size in kB.
func RSSKB(pid int) (int64, error) { return kbField(pid, "status", "VmRSS") }

// PSSKB is a process's proportional set size in kB (Pss of
// /proc/<pid>/smaps_rollup): its resident pages, each shared page divided
// by the number of processes that map it. Summed over processes that share
// pages (several copies of one program), it counts each page once; RSS
// counts it in each.
func PSSKB(pid int) (int64, error) { return kbField(pid, "smaps_rollup", "Pss") }

// kbField reads the "<field>: <n> kB" line of /proc/<pid>/<file>.
func kbField(pid int, file, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("pid %d: no %s in %s", pid, field, file)
}

// Find returns the processes whose command line (/proc/<pid>/cmdline)
// satisfies match, by pid.
func Find(match func(args []string) bool) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		if match(strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// CPUTicks is a process's user + system CPU time in clock ticks.
func CPUTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: malformed stat", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: malformed stat times", pid)
	}
	return ut + st, nil
}

// Group is a set of processes measured together (their sum).
type Group struct {
	Name string
	PIDs []int
}

// Usage of a group over a window: one sample per interval.
type Usage struct {
	// CPUPercent of one core in each interval.
	CPUPercent stats.Samples
	// RSSMB is the summed resident memory at the end of each interval, MiB.
	RSSMB stats.Samples
	// PSSMB is the summed proportional set size (PSSKB) at the end of
	// each interval, MiB.
	PSSMB stats.Samples
	// TotalCPUPercent is the CPU use over the whole window.
	TotalCPUPercent float64
}

// Measure samples the groups every interval for the window and returns
// each group's usage, by name. A process that exits fails the measurement.
func Measure(ctx context.Context, groups []Group, window, interval time.Duration) (map[string]Usage, error) {
	ticks := func(g Group) (uint64, error) {
		var sum uint64
		for _, pid := range g.PIDs {
			t, err := CPUTicks(pid)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", g.Name, err)
			}
			sum += t
		}
		return sum, nil
	}
	mem := func(g Group, kb func(int) (int64, error)) (float64, error) {
		var sum int64
		for _, pid := range g.PIDs {
			v, err := kb(pid)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", g.Name, err)
			}
			sum += v
		}
		return float64(sum) / 1024, nil
	}
	start := make([]uint64, len(groups))
	prev := make([]uint64, len(groups))
	for i, g := range groups {
		t, err := ticks(g)
		if err != nil {
			return nil, err
		}
		start[i], prev[i] = t, t
	}
	out := make(map[string]Usage, len(groups))
	t0 := time.Now()
	last := t0
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for time.Since(t0) < window {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tk.C:
		}
		now := time.Now()
		dt := now.Sub(last).Seconds()
		last = now
		for i, g := range groups {
			t, err := ticks(g)
			if err != nil {
				return nil, err
			}
			r, err := mem(g, RSSKB)
			if err != nil {
				return nil, err
			}
			p, err := mem(g, PSSKB)
			if err != nil {
				return nil, err
			}
			u := out[g.Name]
			u.CPUPercent = append(u.CPUPercent, float64(t-prev[i])/clockTicks/dt*100)
			u.RSSMB = append(u.RSSMB, r)
			u.PSSMB = append(u.PSSMB, p)
			out[g.Name] = u
			prev[i] = t
		}
	}
	elapsed := time.Since(t0).Seconds()
	for i, g := range groups {
		u := out[g.Name]
		u.TotalCPUPercent = float64(prev[i]-start[i]) / clockTicks / elapsed * 100
		out[g.Name] = u
	}
	return out, nil
}
