package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// cfsPeriod is the CFS period CPU limits are expressed in (100 ms).
const cfsPeriod = 100_000

// maxErrorLabel bounds the failure message kept in a label.
const maxErrorLabel = 1024

// Start creates the instance if needed and starts it.
//
//   - No container yet: the image is pulled unless present, the container is
//     created and its task started (a fresh log file).
//   - The container exists with the same spec: a running task is left alone
//     (Start is idempotent); an exited one is deleted and a new task started
//     on the same container and root filesystem (a restart; the log file is
//     appended to).
//   - The container exists with another spec: it is removed (as by Remove)
//     and created anew from spec.
//
// Start returns once the task runs, or the error that kept it from running.
// A failure after the container was created stays visible in List as FAILED
// with the error as Detail.
func (r *Runtime) Start(ctx context.Context, spec wire.InstanceSpec) error {
	if spec.Key == "" {
		return errors.New("containerd runtime: start: instance spec has no key")
	}
	if spec.Code == "" {
		return fmt.Errorf("containerd runtime: start %s: no image (code)", spec.Key)
	}
	if r.cfg.UsernsRemap.Size > 0 && spec.Security != nil && spec.Security.Privileged {
		return fmt.Errorf("containerd runtime: start %s: this node runs containers in user namespaces (--userns-remap), and a privileged container cannot run in one", spec.Key)
	}
	id := ContainerID(r.cfg.NodeName, spec.Key)
	unlock := r.instances.Lock(id)
	defer unlock()
	r.markStarting(id, 1)
	defer r.markStarting(id, -1)

	c, err := r.client.LoadContainer(ctx, id)
	switch {
	case err == nil:
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("start %s: container %s: %w", spec.Key, id, err)
		}
		if stored, ok := storedSpec(info); !ok || !wire.SameSpec(stored, spec) {
			r.log.Info("instance spec changed; replacing its container", "instance", spec.Key, "container", id)
			if err := r.remove(ctx, id, c); err != nil {
				return fmt.Errorf("start %s: replace container %s: %w", spec.Key, id, err)
			}
			c = nil
		}
	case errdefs.IsNotFound(err):
		c = nil
	default:
		return fmt.Errorf("start %s: load container %s: %w", spec.Key, id, err)
	}

	fresh := c == nil
	if fresh {
		img, err := r.ensureImage(ctx, spec.Code)
		if err != nil {
			return fmt.Errorf("start %s: %w", spec.Key, err)
		}
		c, err = r.create(ctx, id, spec, img)
		if err != nil {
			r.markReady(img.Name(), nil) // removed meanwhile? check again next time
			return fmt.Errorf("start %s: %w", spec.Key, err)
		}
	}
	if err := r.startTask(ctx, c, spec, fresh); err != nil {
		return fmt.Errorf("start %s: %w", spec.Key, err)
	}
	return nil
}

// ensureImage returns the image ref, pulled and unpacked into the
// snapshotter unless it already is.
func (r *Runtime) ensureImage(ctx context.Context, code string) (containerd.Image, error) {
	named, err := reference.ParseDockerRef(code)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", code, err)
	}
	ref := named.String()
	unlock := r.pulls.Lock(ref)
	defer unlock()
	r.mu.Lock()
	known, ok := r.ready[ref]
	if r.used == nil {
		r.used = map[string]time.Time{}
	}
	r.used[ref] = time.Now()
	r.mu.Unlock()
	if ok && time.Since(known.at) < readyFor {
		return known.img, nil
	}

	img, err := r.client.GetImage(ctx, ref)
	switch {
	case err == nil:
		unpacked, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if !unpacked {
			if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
				return nil, fmt.Errorf("unpack %s: %w", ref, err)
			}
		}
		r.markReady(ref, img)
		return img, nil
	case !errdefs.IsNotFound(err):
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}

	t0 := time.Now()
	pctx, cancel := context.WithTimeoutCause(ctx, r.cfg.PullTimeout, fmt.Errorf("took longer than %v", r.cfg.PullTimeout))
	defer cancel()
	img, err = r.client.Pull(pctx, ref,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.cfg.Snapshotter),
		containerd.WithResolver(r.resolver),
	)
	if err != nil {
		if cause := context.Cause(pctx); cause != nil && ctx.Err() == nil {
			err = cause
		}
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	r.log.Info("pulled image", "image", ref, "took", time.Since(t0).Round(time.Millisecond))
	r.markReady(ref, img)
	return img, nil
}

// markReady remembers that ref is pulled and unpacked (img nil: forget it).
func (r *Runtime) markReady(ref string, img containerd.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if img == nil {
		delete(r.ready, ref)
		return
	}
	if r.ready == nil {
		r.ready = map[string]readyImage{}
	}
	r.ready[ref] = readyImage{img, time.Now()}
}

// create creates container id for spec from img.
func (r *Runtime) create(ctx context.Context, id string, spec wire.InstanceSpec, img containerd.Image) (containerd.Container, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	labels := map[string]string{
		LabelNode:     r.cfg.NodeName,
		LabelInstance: spec.Key,
		LabelService:  spec.ServiceID,
	}
	snapshot, specOpts := containerd.WithNewSnapshot(id, img), r.specOpts(spec, img)
	if m := r.cfg.UsernsRemap; m.Size > 0 {
		// The image's files, chowned into the range once per image.
		snapshot = containerd.WithRemappedSnapshot(id, img, m.HostID, m.HostID)
		ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostID, Size: m.Size}}
		specOpts = append(specOpts, oci.WithUserNamespace(ids, ids), bindSysUnlessOwnNetNS)
	}
	c, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		snapshot,
		containerd.WithRuntime(runcRuntime, nil),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(labels),
		containerd.WithContainerExtension(specExtension, &anypb.Any{TypeUrl: specTypeURL, Value: specJSON}),
	)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	return c, nil
}

// specOpts builds the OCI spec of spec's container: the image's config with
// docker run semantics for Cmd, the environment, the sandbox (sandboxOpts),
// resource limits and the network.
func (r *Runtime) specOpts(spec wire.InstanceSpec, img containerd.Image) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		// Cmd, when given, replaces the image's CMD and keeps its ENTRYPOINT.
		oci.WithImageConfigArgs(img, spec.Cmd),
		oci.WithHostname(hostname(spec.Key)),
		oci.WithAnnotations(map[string]string{LabelInstance: spec.Key}),
	}
	if len(spec.Environment) > 0 {
		opts = append(opts, oci.WithEnv(spec.Environment))
	}
	if !r.cfg.NoSandbox {
		opts = append(opts, sandboxOpts(spec.Security, r.cfg.PidsLimit)...)
	}
	if mb := spec.Resources.MemoryMB; mb > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(mb)<<20))
	}
	if m := spec.Resources.MilliCPU; m > 0 {
		quota := m * cfsPeriod / 1000
		if quota < 1000 { // the kernel's minimum quota is 1 ms
			quota = 1000
		}
		shares := uint64(m) * 1024 / 1000
		if shares < 2 {
			shares = 2
		}
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod), oci.WithCPUShares(shares))
	}
	// Its job directory, read-only (the engine replaces the file in it).
	if dir := spec.Labels[runtimes.LabelJobsDir]; dir != "" {
		opts = append(opts, oci.WithMounts([]specs.Mount{{Destination: runtimes.JobsMountPoint, Type: "bind", Source: dir,
			Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}}))
	}
	// The instance's own network namespace (made by the net manager), else
	// the node's (Config.NetNS), else a new one with loopback only
	// (Config.IsolateNetwork: containerd's default), else the host's.
	netns := spec.Labels[runtimes.LabelNetNS]
	if netns == "" {
		netns = r.cfg.NetNS
	}
	switch {
	case netns == "" && r.cfg.IsolateNetwork:
		// containerd's default spec: a new network namespace.
	case netns == "":
		opts = append(opts,
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithHostHostsFile,
			oci.WithHostResolvconf,
		)
	default:
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}))
	}
	return opts
}

// startTask starts c's task: a running one is left alone, an exited one is
// deleted and replaced.
func (r *Runtime) startTask(ctx context.Context, c containerd.Container, spec wire.InstanceSpec, fresh bool) error {
	id := c.ID()
	task, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		st, err := task.Status(ctx)
		if err != nil {
			return fmt.Errorf("task %s: status: %w", id, err)
		}
		switch st.Status {
		case containerd.Running, containerd.Paused, containerd.Pausing:
			started, _ := r.startedAt(ctx, c)
			r.watch(id, spec, started)
			return nil
		case containerd.Created:
			// Created by an engine that stopped before starting it: start it.
		default:
			// Exited (or unknown): a restart.
			r.unwatch(id)
			r.forgetUsage(id)
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("task %s: delete exited task: %w", id, err)
			}
			task = nil
		}
	case errdefs.IsNotFound(err):
		task = nil
	default:
		return fmt.Errorf("task %s: %w", id, err)
	}

	if task == nil {
		logPath := r.logPath(id)
		if fresh {
			if err := runtimes.RemoveLog(logPath); err != nil {
				return fmt.Errorf("task %s: %w", id, err)
			}
		}
		uri, err := logURI(r.cfg.LogWriter, logPath)
		if err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
		task, err = c.NewTask(ctx, cio.LogURI(uri))
		if err != nil {
			r.recordFailure(c, err)
			return fmt.Errorf("create task %s: %w", id, err)
		}
	}
	// Taken before the start: a process that exits at once has exited
	// before task.Start returns, and its exit must not precede its start.
	started := time.Now().UTC()
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			r.log.Warn("delete task that failed to start", "container", id, "err", derr)
		}
		r.recordFailure(c, err)
		return fmt.Errorf("start task %s: %w", id, err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelStarted: started.Format(time.RFC3339Nano), labelError: ""}); err != nil {
		r.log.Warn("label started task", "container", id, "err", err)
	}
	r.watch(id, spec, started)
	return nil
}

// recordFailure keeps why c could not start in a label, for List.
func (r *Runtime) recordFailure(c containerd.Container, cause error) {
	msg := cause.Error()
	if len(msg) > maxErrorLabel {
		msg = msg[:maxErrorLabel]
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	if _, err := c.SetLabels(ctx, map[string]string{labelError: msg, labelStarted: ""}); err != nil {
		r.log.Warn("label failed container", "container", c.ID(), "err", err)
	}
}

// startedAt is when c's current task was started, from its label.
func (r *Runtime) startedAt(ctx context.Context, c containerd.Container) (time.Time, error) {
	labels, err := c.Labels(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(labels[labelStarted]), nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// storedSpec is the spec kept with a container.
func storedSpec(info containers.Container) (wire.InstanceSpec, bool) {
	var spec wire.InstanceSpec
	ext, ok := info.Extensions[specExtension]
	if !ok || ext == nil {
		return spec, false
	}
	if err := json.Unmarshal(ext.GetValue(), &spec); err != nil {
		return spec, false
	}
	return spec, true
}

// exitDetail describes an exit code.
func exitDetail(code int) string {
	if code > 128 && code < 128+65 {
		return "exited with code " + strconv.Itoa(code) + " (signal " + strconv.Itoa(code-128) + ")"
	}
	return "exited with code " + strconv.Itoa(code)
}
