// Package cgroup places processes of the node engine's own making (wasm
// sandboxes) in control groups with CPU, memory and pids limits, reads
// their usage and kills them, on cgroup v2 (one unified hierarchy) or v1
// (one hierarchy per controller, as on hosts that still mount them so).
//
// A group is named by a path relative to the hierarchies' roots, e.g.
// "thicket-wasm/node1-1a2b3c4d/svc.0": the same path in the cpu, cpuacct,
// memory and pids hierarchies on v1, one directory on v2, as containerd
// places a container's task at /<namespace>/<id>.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Period is the CFS period CPU limits are expressed in (100 ms), as for
// containers.
const Period = 100_000

// Limits of a group; zero means no limit.
type Limits struct {
	// MilliCPU is CPU time in thousandths of a core (cpu.max, or
	// cpu.cfs_quota_us on v1).
	MilliCPU int64
	// MemoryBytes bounds the group's memory (memory.max, or
	// memory.limit_in_bytes on v1); swap is not allowed on top.
	MemoryBytes int64
	// Pids bounds the group's processes and threads (pids.max).
	Pids int64
}

// Stats is what a group used.
type Stats struct {
	// CPU is the CPU time the group's processes used, in total.
	CPU time.Duration
	// WorkingSet is the group's memory use minus its inactive page cache
	// (as the kubelet and the containerd runtime count it), in bytes.
	WorkingSet uint64
	// OOMKills is how often the kernel killed a process of the group for
	// exceeding its memory limit.
	OOMKills uint64
}

// controllers are the v1 hierarchies a group lives in.
var controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// Host is the cgroup layout of this machine.
type Host struct {
	// v2 is the mount point of the unified hierarchy when it holds the
	// controllers; "" on v1.
	v2 string
	// v1 maps each controller to its hierarchy's mount point.
	v1 map[string]string
}

// Detect reads /proc/self/mountinfo: cgroup v2 when the unified hierarchy
// offers the cpu, memory and pids controllers, else the v1 hierarchies of
// cpu, cpuacct, memory and pids. It fails when neither is there (e.g. a
// container that does not see the host's cgroups writable).
func Detect() (*Host, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	h := ParseMountinfo(data)
	if h.v2 != "" {
		ctl, err := os.ReadFile(filepath.Join(h.v2, "cgroup.controllers"))
		if err != nil || !hasAll(strings.Fields(string(ctl)), "cpu", "memory", "pids") {
			h.v2 = ""
		}
	}
	if h.v2 == "" {
		for _, c := range controllers {
			if h.v1[c] == "" {
				return nil, fmt.Errorf("cgroup: neither a cgroup v2 hierarchy with the cpu, memory and pids controllers nor a v1 %s hierarchy is mounted", c)
			}
		}
	}
	return h, nil
}

// DetectOrMount is Detect, and when this mount namespace shows no usable
// cgroup hierarchy (a process started by "ip netns exec", which mounts a
// fresh /sys), mounts them under dir, private to this mount namespace:
// cgroup2 when it has the cpu, memory and pids controllers, else the v1
// hierarchies of cpu, cpuacct, memory and pids with the controllers each
// is mounted with on this host (/proc/cgroups). Groups are the same as
// the host's: a hierarchy mounted again is the same hierarchy.
func DetectOrMount(dir string) (*Host, error) {
	h, err := Detect()
	if err == nil {
		return h, nil
	}
	if merr := mountHierarchies(dir); merr != nil {
		return nil, fmt.Errorf("%w; mounting them under %s: %v", err, dir, merr)
	}
	return Detect()
}

func mountHierarchies(dir string) error {
	v2 := filepath.Join(dir, "unified")
	if err := os.MkdirAll(v2, 0o700); err != nil {
		return err
	}
	if err := mountOnce("cgroup2", v2, ""); err != nil {
		return err
	}
	if ctl, err := os.ReadFile(filepath.Join(v2, "cgroup.controllers")); err == nil && hasAll(strings.Fields(string(ctl)), "cpu", "memory", "pids") {
		return nil
	}
	// v1: the controllers of each hierarchy, as /proc/cgroups numbers them.
	data, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return err
	}
	byHier := map[string][]string{}
	hierOf := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[1] == "0" || f[3] != "1" {
			continue
		}
		byHier[f[1]] = append(byHier[f[1]], f[0])
		hierOf[f[0]] = f[1]
	}
	done := map[string]bool{}
	for _, c := range controllers {
		hier := hierOf[c]
		if hier == "" {
			return fmt.Errorf("no v1 hierarchy has the %s controller", c)
		}
		if done[hier] {
			continue
		}
		done[hier] = true
		opts := strings.Join(byHier[hier], ",")
		target := filepath.Join(dir, strings.ReplaceAll(opts, ",", "_"))
		if err := os.MkdirAll(target, 0o700); err != nil {
			return err
		}
		if err := mountOnce("cgroup", target, opts); err != nil {
			return err
		}
	}
	return nil
}

// mountOnce mounts a cgroup file system at target unless one is there.
func mountOnce(fstype, target, opts string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(target, &st); err == nil && (st.Type == 0x63677270 || st.Type == 0x27e0eb) { // CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC
		return nil
	}
	if err := syscall.Mount("cgroup", target, fstype, syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount %s %s at %s: %w", fstype, opts, target, err)
	}
	return nil
}

// ParseMountinfo finds the cgroup mounts in the text of a mountinfo file.
func ParseMountinfo(data []byte) *Host {
	h := &Host{v1: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue // a bind mount of a sub-group: not a hierarchy's root
		}
		switch qf[0] {
		case "cgroup2":
			if h.v2 == "" {
				h.v2 = pf[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				for _, c := range controllers {
					if opt == c && h.v1[c] == "" {
						h.v1[c] = pf[4]
					}
				}
			}
		}
	}
	return h
}

// V2 reports whether groups are made on cgroup v2.
func (h *Host) V2() bool { return h.v2 != "" }

// Group is one control group.
type Group struct {
	host *Host
	path string
}

// Open returns the group at path (relative to the hierarchies' roots)
// without making it: to read, kill or delete a group made earlier.
func (h *Host) Open(path string) *Group {
	return &Group{host: h, path: filepath.Clean("/" + path)}
}

// Path is the group's path relative to the hierarchies' roots.
func (g *Group) Path() string { return g.path }

// dirs are the group's directories, one per hierarchy (deduplicated when
// controllers share one).
func (g *Group) dirs() []string {
	if g.host.v2 != "" {
		return []string{filepath.Join(g.host.v2, g.path)}
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range controllers {
		d := filepath.Join(g.host.v1[c], g.path)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// dir is the group's directory in controller c's hierarchy.
func (g *Group) dir(c string) string {
	if g.host.v2 != "" {
		return filepath.Join(g.host.v2, g.path)
	}
	return filepath.Join(g.host.v1[c], g.path)
}

// Create makes the group at path with limits l (or sets l on it if it
// exists). On v2 it enables the cpu, memory and pids controllers in the
// ancestors' subtrees first.
func (h *Host) Create(path string, l Limits) (*Group, error) {
	g := h.Open(path)
	if h.v2 != "" {
		if err := h.enableControllers(g.path); err != nil {
			return nil, err
		}
	}
	for _, d := range g.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: create %s: %w", g.path, err)
		}
	}
	if h.v2 == "" {
		// v1 charges memory to the group that allocated it: move what a
		// process added later already holds along with it.
		_ = os.WriteFile(filepath.Join(g.dir("memory"), "memory.move_charge_at_immigrate"), []byte("3"), 0)
	}
	if err := g.Set(l); err != nil {
		_ = g.Delete()
		return nil, err
	}
	return g, nil
}

// enableControllers writes +cpu +memory +pids into cgroup.subtree_control
// of every ancestor of path, from the root down.
func (h *Host) enableControllers(path string) error {
	parts := strings.Split(strings.Trim(filepath.Dir(path), "/"), "/")
	dir := h.v2
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			if parts[i] == "" {
				break
			}
			dir = filepath.Join(dir, parts[i])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("cgroup: create %s: %w", dir, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0); err != nil {
			return fmt.Errorf("cgroup: enable the cpu, memory and pids controllers in %s: %w", dir, err)
		}
	}
	return nil
}

// Set applies limits l to the group.
func (g *Group) Set(l Limits) error {
	type file struct{ ctl, name, value string }
	var files []file
	quota, mem, pids := "max", "max", "max"
	if l.MilliCPU > 0 {
		quota = strconv.FormatInt(max(l.MilliCPU*Period/1000, 1000), 10) // the kernel's minimum is 1 ms
	}
	if l.MemoryBytes > 0 {
		mem = strconv.FormatInt(l.MemoryBytes, 10)
	}
	if l.Pids > 0 {
		pids = strconv.FormatInt(l.Pids, 10)
	}
	if g.host.v2 != "" {
		files = []file{
			{"cpu", "cpu.max", quota + " " + strconv.Itoa(Period)},
			{"memory", "memory.max", mem},
			{"memory", "memory.swap.max", "0"},
			{"pids", "pids.max", pids},
		}
	} else {
		if quota == "max" {
			quota = "-1"
		}
		if mem == "max" {
			mem = "-1"
		}
		files = []file{
			{"cpu", "cpu.cfs_period_us", strconv.Itoa(Period)},
			{"cpu", "cpu.cfs_quota_us", quota},
			{"memory", "memory.limit_in_bytes", mem},
			{"memory", "memory.memsw.limit_in_bytes", mem}, // no swap on top (absent without swap accounting)
			{"pids", "pids.max", pids},
		}
	}
	for _, f := range files {
		p := filepath.Join(g.dir(f.ctl), f.name)
		err := os.WriteFile(p, []byte(f.value), 0)
		if err != nil && (f.name == "memory.swap.max" || f.name == "memory.memsw.limit_in_bytes") && errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cgroup: %s = %s: %w", p, f.value, err)
		}
	}
	return nil
}

// Add moves process pid into the group (in every hierarchy).
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs() {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: add process %d to %s: %w", pid, d, err)
		}
	}
	return nil
}

// Procs lists the group's processes (empty, not an error, when the group
// is gone).
func (g *Group) Procs() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(g.dir("memory"), "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Has reports whether process pid is in the group.
func (g *Group) Has(pid int) bool {
	procs, _ := g.Procs()
	for _, p := range procs {
		if p == pid {
			return true
		}
	}
	return false
}

// Stat reads the group's usage.
func (g *Group) Stat() (Stats, error) {
	var s Stats
	if g.host.v2 != "" {
		dir := g.dir("cpu")
		cpu, err := readKeyed(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return s, err
		}
		s.CPU = time.Duration(cpu["usage_usec"]) * time.Microsecond
		cur, err := readUint(filepath.Join(dir, "memory.current"))
		if err != nil {
			return s, err
		}
		ms, err := readKeyed(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return s, err
		}
		s.WorkingSet = sub(cur, ms["inactive_file"])
		ev, err := readKeyed(filepath.Join(dir, "memory.events"))
		if err != nil {
			return s, err
		}
		s.OOMKills = ev["oom_kill"]
		return s, nil
	}
	ns, err := readUint(filepath.Join(g.dir("cpuacct"), "cpuacct.usage"))
	if err != nil {
		return s, err
	}
	s.CPU = time.Duration(ns)
	mdir := g.dir("memory")
	cur, err := readUint(filepath.Join(mdir, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	ms, err := readKeyed(filepath.Join(mdir, "memory.stat"))
	if err != nil {
		return s, err
	}
	s.WorkingSet = sub(cur, ms["total_inactive_file"])
	oc, err := readKeyed(filepath.Join(mdir, "memory.oom_control"))
	if err != nil {
		return s, err
	}
	s.OOMKills = oc["oom_kill"]
	return s, nil
}

// Kill sends SIGKILL to every process of the group until none is left
// (at most a few seconds).
func (g *Group) Kill() error {
	if g.host.v2 != "" {
		// cgroup.kill (Linux 5.14) kills the whole group at once, forks
		// in flight included; fall back to the loop below without it.
		_ = os.WriteFile(filepath.Join(g.dir("cpu"), "cgroup.kill"), []byte("1"), 0)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs, err := g.Procs()
		if err != nil {
			return err
		}
		if len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %s still has processes %v after SIGKILL", g.path, procs)
		}
		for _, p := range procs {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Delete removes the group's directories (it must be empty of processes;
// a process that just died may hold it a moment, so it tries for a few
// seconds). A group already gone is not an error.
func (g *Group) Delete() error {
	var errs []error
	for _, d := range g.dirs() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("cgroup: remove %s: %w", d, err))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// DeleteParent removes the group's parent directories up to (not
// including) the hierarchies' roots when they are empty; a parent that
// still holds groups stays.
func (g *Group) DeleteParent(levels int) {
	p := g.path
	for i := 0; i < levels; i++ {
		p = filepath.Dir(p)
		if p == "/" {
			return
		}
		for _, d := range g.host.Open(p).dirs() {
			_ = os.Remove(d)
		}
	}
}

func readUint(file string) (uint64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", file, err)
	}
	return v, nil
}

// readKeyed reads a file of "key value" lines (cpu.stat, memory.stat,
// memory.events, memory.oom_control).
func readKeyed(file string) (map[string]uint64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return ParseKeyed(data), nil
}

// ParseKeyed parses "key value" lines; lines of another form are skipped.
func ParseKeyed(data []byte) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
