package containerd_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// callCounter counts the calls of a connection to containerd, by method.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) note(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[method]++
}

// options are the dial options that count the calls.
func (c *callCounter) options() []grpc.DialOption {
	c.calls = map[string]int{}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.note(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.note(method)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}
}

// take returns the calls counted since the last take, by method.
func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// containerLists is how many of calls list containers.
func containerLists(calls map[string]int) int {
	n := 0
	for m, k := range calls {
		if strings.HasPrefix(m, "/containerd.services.containers.v1.Containers/List") {
			n += k
		}
	}
	return n
}

// idleList lists n times and checks that every instance of want is
// listed with its state and spec each time.
func idleList(t *testing.T, rt *ctrd.Runtime, n int, want map[string]string) {
	t.Helper()
	for range n {
		sts, err := rt.List(testCtx(t))
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := map[string]string{}
		for _, st := range sts {
			got[st.Key] = st.Status
			if st.Spec.Key != st.Key || st.Spec.Code != imageRef {
				t.Errorf("%s: listed spec %+v", st.Key, st.Spec)
			}
			if st.Status == wire.StatusRunning && st.StartedAt.IsZero() {
				t.Errorf("%s: RUNNING without a start time", st.Key)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List = %v, want %v", got, want)
		}
	}
}

// TestIdleListAsksForTasksOnly: while nothing changes, List asks containerd
// for the tasks only, once per List whatever the number of instances; a
// Start, a Remove, a task that exits or is deleted (by anyone), and time
// make it list the containers again. Logs of an unchanged log file read
// nothing from containerd either.
func TestIdleListAsksForTasksOnly(t *testing.T) {
	var count callCounter
	rt := newRuntime(t, ctrd.WithDialOptions(count.options()...))
	ctx := testCtx(t)
	count.take() // New's List (adoption)
	const n = 3
	want := map[string]string{}
	for i := range n {
		s := spec(fmt.Sprintf("idle.%d", i), testharness.FreePort(t))
		if err := rt.Start(ctx, s); err != nil {
			t.Fatalf("Start: %v", err)
		}
		want[s.Key] = wire.StatusRunning
	}
	idleList(t, rt, 1, want) // after the Starts: the containers are listed
	if lists := containerLists(count.take()); lists != 1 {
		t.Errorf("first List after the Starts listed the containers %d times, want 1", lists)
	}

	const idle = 20
	idleList(t, rt, idle, want)
	for range idle {
		for key := range want {
			if _, err := rt.Logs(ctx, key, 8<<10); err != nil {
				t.Fatalf("Logs(%s): %v", key, err)
			}
		}
	}
	// Usage right after a List: measured for every instance, from the
	// listed tasks and the cgroups, without asking containerd again.
	idleList(t, rt, 1, want)
	for key := range want {
		u, err := rt.Usage(ctx, key)
		if err != nil || u.MemoryMB <= 0 {
			t.Errorf("Usage(%s) = %+v, %v; want some memory", key, u, err)
		}
	}
	calls := count.take()
	if lists := containerLists(calls); lists != 0 {
		t.Errorf("%d idle Lists listed the containers %d times, want 0 (calls: %v)", idle, lists, calls)
	}
	if got := calls["/containerd.services.tasks.v1.Tasks/List"]; got != idle+1 {
		t.Errorf("%d idle Lists listed the tasks %d times, want %d (calls: %v)", idle+1, got, idle+1, calls)
	}
	total := 0
	for _, k := range calls {
		total += k
	}
	if total != idle+1 {
		t.Errorf("%d idle Lists, %d Logs and %d Usage made %d calls to containerd, want %d (calls: %v)", idle+1, idle*n, n, total, idle+1, calls)
	}

	// A Remove: listed again, without the instance.
	if err := rt.Remove(ctx, "idle.0"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	delete(want, "idle.0")
	count.take()
	idleList(t, rt, 3, want)
	if lists := containerLists(count.take()); lists != 1 {
		t.Errorf("Lists after a Remove listed the containers %d times, want 1", lists)
	}

	// A task killed behind the runtime's back: its exit is listed at once.
	id1 := ctrd.ContainerID(rt.Config().NodeName, "idle.1")
	c, err := rt.Client().LoadContainer(nsCtx(t), id1)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(nsCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(nsCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(nsCtx(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	want["idle.1"] = wire.StatusFailed
	count.take()
	idleList(t, rt, 3, want)
	if lists := containerLists(count.take()); lists != 1 {
		t.Errorf("Lists after a task exited listed the containers %d times, want 1", lists)
	}

	// The container deleted behind the runtime's back (its task first):
	// gone from the next List.
	if _, err := task.Delete(nsCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(nsCtx(t), containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	delete(want, "idle.1")
	idleList(t, rt, 1, want)
}

// TestTaskStateMissedIsNotAnExit: containerd asks each shim for its
// task's state within 2 s when it lists tasks, and a shim of a busy
// machine misses that: the task is then left out of the list, or listed
// with the status UNKNOWN. A running task whose exit the runtime is still
// waiting for is listed RUNNING all the same (not FAILED, which the engine
// would restart).
func TestTaskStateMissedIsNotAnExit(t *testing.T) {
	var mu sync.Mutex
	tamper := func(*tasks.ListTasksResponse) {}
	intercept := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if resp, ok := reply.(*tasks.ListTasksResponse); ok && err == nil {
			mu.Lock()
			tamper(resp)
			mu.Unlock()
		}
		return err
	})
	rt := newRuntime(t, ctrd.WithDialOptions(intercept))
	ctx := testCtx(t)
	s := spec("busy.0", testharness.FreePort(t))
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	id := ctrd.ContainerID(rt.Config().NodeName, s.Key)
	for _, tc := range []struct {
		name string
		f    func(*tasks.ListTasksResponse)
	}{
		{"left out", func(r *tasks.ListTasksResponse) {
			r.Tasks = slices.DeleteFunc(r.Tasks, func(p *tasktypes.Process) bool { return p.ID == id })
		}},
		{"unknown", func(r *tasks.ListTasksResponse) {
			for _, p := range r.Tasks {
				if p.ID == id {
					p.Status, p.Pid = tasktypes.Status_UNKNOWN, 0
				}
			}
		}},
	} {
		mu.Lock()
		tamper = tc.f
		mu.Unlock()
		for range 3 {
			st, ok := runtimetest.Find(t, rt, s.Key)
			if !ok || st.Status != wire.StatusRunning {
				t.Errorf("%s: listed %v %s %q; want RUNNING", tc.name, ok, st.Status, st.Detail)
			}
		}
	}
	mu.Lock()
	tamper = func(*tasks.ListTasksResponse) {}
	mu.Unlock()
	// Its real exit is listed.
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	if _, ok := runtimetest.Find(t, rt, s.Key); ok {
		t.Errorf("removed instance still listed")
	}
}
