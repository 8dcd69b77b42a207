package testharness

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// CleanContainerd removes everything in a containerd namespace (tasks,
// containers, images, content, snapshots) and then the namespace, through
// the ctr command: what a run's nodes leave when they stop. A namespace
// that does not exist is clean.
func CleanContainerd(ctx context.Context, ns string) {
	ctr := func(args ...string) string {
		out, _ := exec.CommandContext(ctx, "ctr", append([]string{"-n", ns}, args...)...).Output()
		return string(out)
	}
	tasks := strings.Fields(ctr("tasks", "ls", "-q"))
	for _, id := range tasks {
		ctr("tasks", "kill", "-s", "SIGKILL", id)
	}
	if len(tasks) > 0 {
		time.Sleep(500 * time.Millisecond)
	}
	for _, id := range tasks {
		ctr("tasks", "delete", "-f", id)
	}
	for _, id := range strings.Fields(ctr("containers", "ls", "-q")) {
		ctr("containers", "delete", id)
	}
	for _, ref := range strings.Fields(ctr("images", "ls", "-q")) {
		ctr("images", "rm", ref)
	}
	// Content and snapshots go by containerd's garbage collection, which
	// may take its time: remove them, then the namespace.
	for range 3 {
		for _, dgst := range strings.Fields(ctr("content", "ls", "-q")) {
			ctr("content", "rm", dgst)
		}
		out := ctr("snapshots", "ls")
		for _, l := range strings.Split(out, "\n")[1:] {
			if f := strings.Fields(l); len(f) > 0 {
				ctr("snapshots", "rm", f[0])
			}
		}
		if len(strings.Fields(out)) <= 3 { // the header only
			break
		}
	}
	for range 25 {
		out, err := exec.CommandContext(ctx, "ctr", "namespaces", "rm", ns).CombinedOutput()
		if err == nil || strings.Contains(string(out), "not found") || ctx.Err() != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
