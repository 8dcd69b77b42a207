// Package hostinfo measures the node: its capacity (cores, memory) and its
// current CPU and memory use, from /proc.
package hostinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Memory returns total and available memory in MB.
func Memory() (totalMB, availableMB int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("read meminfo: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			totalMB = kb / 1024
		case "MemAvailable:":
			availableMB = kb / 1024
		}
	}
	return totalMB, availableMB, nil
}

// MilliCPU is the node's CPU capacity in thousandths of a core.
func MilliCPU() int64 { return int64(runtime.NumCPU()) * 1000 }

// CPUMeter measures CPU use between calls.
type CPUMeter struct {
	mu          sync.Mutex
	busy, total uint64
}

// Percent returns the share of CPU time spent busy since the last call (0
// on the first call).
func (m *CPUMeter) Percent() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var total, idle uint64
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	busy := total - idle
	m.mu.Lock()
	defer m.mu.Unlock()
	var pct float64
	if m.total > 0 && total > m.total {
		pct = float64(busy-m.busy) * 100 / float64(total-m.total)
	}
	m.busy, m.total = busy, total
	return pct
}
