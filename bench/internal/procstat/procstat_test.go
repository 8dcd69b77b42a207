package procstat

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	if kb, err := RSSKB(pid); err != nil || kb <= 0 {
		t.Fatalf("RSSKB = %d, %v", kb, err)
	}
	if _, err := CPUTicks(pid); err != nil {
		t.Fatal(err)
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
	if len(got.CPUPercent) != 3 || len(got.RSSMB) != 3 {
		t.Fatalf("want 3 samples each, got %+v", got)
	}
	if got.TotalCPUPercent < 30 || got.TotalCPUPercent > 250 {
		t.Errorf("a busy goroutine measured at %.0f %% of a core", got.TotalCPUPercent)
	}
}
