package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// wasmPage is the size of a WebAssembly memory page.
const wasmPage = 64 << 10

// linearMemory backs one instance's linear memory and enforces its memory
// limit. wazero's own limit (RuntimeConfig.WithMemoryLimitPages) is per
// wazero runtime and applied when a module is compiled, so it would need a
// runtime and a compilation per limit, and it fails a memory.grow without
// telling anyone. Enforcing the limit here keeps one compiled module per
// content whatever the instances' limits, and records the refused growth
// so that the instance's Detail can name the limit. It also tracks the
// memory's size for Usage without racing with the module.
type linearMemory struct {
	limit uint64 // bytes; 0 = none beyond the module's own maximum
	// buf and allocated are used only by the goroutine running the module
	// (through wazero).
	buf       []byte
	allocated bool
	mapped    bool // buf is the mmap reservation of the whole limit

	size    atomic.Uint64 // current length in bytes
	refused atomic.Uint64 // largest refused length in bytes (0 = none)
}

// newLinearMemory returns the memory of a module limited to limit bytes
// (0: none). Under a limit, it reserves the whole limit as address space
// at once (mmap, no swap reserved): growing then never copies, and only the
// pages the module touches count against its cgroup's memory limit.
func newLinearMemory(limit uint64) *linearMemory {
	m := &linearMemory{limit: limit}
	if limit > 0 {
		if b, err := unix.Mmap(-1, 0, int(limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE); err == nil {
			m.buf = b[:0]
			m.mapped = true
		}
	}
	return m
}

// Allocate implements experimental.MemoryAllocator: an instance has one
// memory (wazero does not support multi-memory).
func (m *linearMemory) Allocate(capacity, _ uint64) experimental.LinearMemory {
	if m.mapped {
		return m
	}
	if m.limit > 0 && capacity > m.limit {
		capacity = m.limit
	}
	m.buf = make([]byte, 0, capacity)
	return m
}

// Reallocate implements experimental.LinearMemory: it grows the memory to
// size bytes, or returns nil (memory.grow fails) past the limit. The first
// allocation (the module's declared minimum) is never refused, as wazero
// cannot fail it; Start checks it against the limit instead.
func (m *linearMemory) Reallocate(size uint64) []byte {
	first := !m.allocated
	m.allocated = true
	if !first && m.limit > 0 && size > m.limit {
		if size > m.refused.Load() {
			m.refused.Store(size)
		}
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		grown := make([]byte, size, growCap(uint64(cap(m.buf)), size, m.limit))
		copy(grown, m.buf)
		m.buf = grown
	}
	m.size.Store(size)
	return m.buf
}

// growCap is the capacity to allocate for a memory of size bytes that has
// capacity old: doubling (as append does) to make repeated memory.grow
// cheap, within the limit.
func growCap(old, size, limit uint64) uint64 {
	c := max(old*2, size)
	if limit > 0 && c > limit {
		c = max(limit, size)
	}
	return c
}

// Free implements experimental.LinearMemory. A mapped memory stays
// mapped: it ends with the sandbox process, which runs one module.
func (m *linearMemory) Free() {
	if !m.mapped {
		m.buf = nil
	}
}

// Size is the memory's current size in bytes.
func (m *linearMemory) Size() uint64 { return m.size.Load() }

// Refused is the largest size in bytes a memory.grow asked for and was
// refused (0 if none).
func (m *linearMemory) Refused() uint64 { return m.refused.Load() }

var _ experimental.MemoryAllocator = (*linearMemory)(nil)
