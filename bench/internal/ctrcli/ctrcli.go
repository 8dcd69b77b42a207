// Package ctrcli drives containerd through its ctr command: the floor a
// deployment is measured against (ctr run) and the inspection and clean-up
// of a containerd namespace.
package ctrcli

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Namespace is a containerd namespace.
type Namespace string

func (ns Namespace) ctr(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"-n", string(ns)}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// RunOptions of a detached container.
type RunOptions struct {
	// Netns is a network namespace path the container joins (as a node
	// engine's container joins its node's namespace).
	Netns string
	Env   []string
	// LogPath receives the container's output (as the node engine's
	// containers log to a file).
	LogPath string
}

// RunDetached runs image as container id (ctr run -d) and returns once the
// task is started: ctr run -d returns after the task's Start succeeded.
// ctr refuses --rm with -d; remove the container with Remove.
func (ns Namespace) RunDetached(ctx context.Context, image, id string, o RunOptions) error {
	args := []string{"run", "-d"}
	if o.Netns != "" {
		args = append(args, "--with-ns", "network:"+o.Netns)
	}
	for _, e := range o.Env {
		args = append(args, "--env", e)
	}
	if o.LogPath != "" {
		args = append(args, "--log-uri", "file://"+o.LogPath)
	}
	_, err := ns.ctr(ctx, append(args, image, id)...)
	return err
}

// Version runs `ctr version`: ctr's start-up and one call to containerd,
// the part of a ctr run that is ctr's own.
func (ns Namespace) Version(ctx context.Context) error {
	_, err := ns.ctr(ctx, "version")
	return err
}

// TaskStatus is the status ctr shows for a task (RUNNING, STOPPED, ...),
// or "" when there is none.
func (ns Namespace) TaskStatus(ctx context.Context, id string) (string, error) {
	out, err := ns.ctr(ctx, "tasks", "ls")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == id {
			return f[2], nil
		}
	}
	return "", nil
}

// Pull fetches and unpacks an image over plain HTTP.
func (ns Namespace) Pull(ctx context.Context, ref string) error {
	_, err := ns.ctr(ctx, "images", "pull", "--plain-http", ref)
	return err
}

// Containers lists the containers matching a filter, e.g.
// `labels."thicket.node"==n1`; "" lists all.
func (ns Namespace) Containers(ctx context.Context, filter string) ([]string, error) {
	args := []string{"containers", "ls", "-q"}
	if filter != "" {
		args = append(args, filter)
	}
	out, err := ns.ctr(ctx, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// KillTasks sends SIGKILL to the tasks of the containers.
func (ns Namespace) KillTasks(ctx context.Context, ids []string) error {
	var first error
	for _, id := range ids {
		if _, err := ns.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", id); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Remove kills a container's task and deletes the task and the container.
func (ns Namespace) Remove(ctx context.Context, id string) error {
	ns.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", id)
	for range 50 { // the task takes a moment to stop
		if st, _ := ns.TaskStatus(ctx, id); st != "RUNNING" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.ctr(ctx, "tasks", "delete", "-f", id)
	_, err := ns.ctr(ctx, "containers", "delete", id)
	return err
}
