package unikernel

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat
// (USER_HZ, 100 on every Linux architecture).
const clockTicks = 100

// procIs reports whether process pid is alive (not a zombie) and its
// command line contains marker: it is the process we think it is, not
// another one that got its pid.
func procIs(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
		return false
	}
	state, err := procState(pid)
	return err == nil && state != 'Z' && state != 'X'
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (fields[0] is the state).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

func procState(pid int) (byte, error) {
	f, err := procStat(pid)
	if err != nil || len(f) == 0 || f[0] == "" {
		return 0, fmt.Errorf("process %d: no state: %w", pid, err)
	}
	return f[0][0], nil
}

// procCPUTicks is the process's user plus system time in clock ticks.
func procCPUTicks(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return ut + st, nil
}

// procRSSKiB is the process's resident set (VmRSS) in KiB.
func procRSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(v)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// readPid reads a pid file.
func readPid(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// kill sends SIGKILL to pid if it is still the process marked by marker.
func kill(pid int, marker string) {
	if procIs(pid, marker) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
