// Package machine describes the machine a benchmark ran on.
package machine

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Description is what a reader needs to compare numbers across machines.
type Description struct {
	CPU        string
	Cores      int
	MemoryGiB  float64
	Kernel     string
	GoVersion  string
	Containerd string
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute averages when the
	// run started: other work on the machine skews every number.
	LoadAverage string
	Date        time.Time
}

// Describe reads the description from /proc and the tools on PATH.
func Describe(ctx context.Context) Description {
	d := Description{CPU: "unknown", Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC()}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		d.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			d.MemoryGiB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		d.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		d.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	d.Containerd = containerdVersion(ctx)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			d.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return d
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// containerdVersion is the server version ctr reports.
func containerdVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "ctr", "version").Output()
	if err != nil {
		return "unknown"
	}
	server := false
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "Server:" {
			server = true
		}
		if v, ok := strings.CutPrefix(l, "Version:"); ok && server {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
