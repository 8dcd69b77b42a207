package testharness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillWasmSandboxes kills the wasm sandbox processes a node engine with
// data directory dataDir left running (they outlive the engine, as
// containers do, for the next engine to adopt) and removes their empty
// cgroups: for a test's cleanup, after the node stopped.
func KillWasmSandboxes(dataDir string) {
	recs, _ := filepath.Glob(filepath.Join(dataDir, "wasm", "instances", "*", "instance.json"))
	for _, f := range recs {
		var rec struct {
			Pid    int    `json:"pid"`
			Cgroup string `json:"cgroup"`
		}
		data, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(data, &rec) != nil || rec.Pid <= 0 {
			continue
		}
		if cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(rec.Pid), "cmdline")); err == nil && strings.Contains(string(cmd), "wasm-run") {
			_ = syscall.Kill(rec.Pid, syscall.SIGKILL)
		}
		if rec.Cgroup == "" {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", rec.Cgroup))
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", rec.Cgroup))
		for _, d := range dirs {
			for range 50 { // the killed process leaves its group a moment later
				if err := os.Remove(d); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = os.Remove(filepath.Dir(d)) // the node's group, once empty
		}
	}
}
