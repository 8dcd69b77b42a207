package procstat

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	if kb, err := RSSKB(pid); err != nil || kb <= 0 {
		t.Fatalf("RSSKB = %d, %v", kb, err)
	}
	if kb, err := PSSKB(pid); err != nil || kb <= 0 {
		t.Fatalf("PSSKB = %d, %v", kb, err)
	}
	if _, err := CPUTicks(pid); err != nil {
		t.Fatal(err)
	}
	if pids, err := Find(func(args []string) bool { return len(args) > 0 && args[0] == os.Args[0] }); err != nil || !slices.Contains(pids, pid) {
		t.Errorf("Find(this program) = %v, %v: want %d among them", pids, err, pid)
	}
	stop := make(chan struct{})
	go func() { // keep one core busy
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	defer close(stop)
	u, err := Measure(context.Background(), []Group{{"self", []int{pid}}}, 600*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got := u["self"]
	if len(got.CPUPercent) != 3 || len(got.RSSMB) != 3 || len(got.PSSMB) != 3 {
		t.Fatalf("want 3 samples each, got %+v", got)
	}
	if got.TotalCPUPercent < 30 || got.TotalCPUPercent > 250 {
		t.Errorf("a busy goroutine measured at %.0f %% of a core", got.TotalCPUPercent)
	}
}
