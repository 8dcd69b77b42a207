package keyed

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSerialisesPerKey: one key's holders never overlap, another key's run
// meanwhile, and no mutex is left behind.
func TestSerialisesPerKey(t *testing.T) {
	var k Mutex
	var inA atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := k.Lock("a")
			if inA.Add(1) != 1 {
				t.Error("two holders of key a at once")
			}
			time.Sleep(time.Millisecond)
			inA.Add(-1)
			unlock()
		}()
	}
	unlockA := k.Lock("a")
	done := make(chan struct{})
	go func() { k.Lock("b")(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("key b waited for key a")
	}
	unlockA()
	wg.Wait()
	if len(k.m) != 0 {
		t.Errorf("%d mutexes left behind", len(k.m))
	}
}
