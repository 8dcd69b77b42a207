package containerd_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	containerd "github.com/containerd/containerd"
	"google.golang.org/grpc"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
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
