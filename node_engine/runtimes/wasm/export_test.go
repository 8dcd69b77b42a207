package wasm

// Downloads is how many module downloads this runtime has begun.
func (r *Runtime) Downloads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downloads
}

// Compilations is how many modules this runtime has compiled.
func (r *Runtime) Compilations() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.compilations
}

// CgroupPath is the cgroup of instance key's sandbox, relative to the
// hierarchies' roots.
func (r *Runtime) CgroupPath(key string) string { return r.cgroupPath(key) }

// Pid is the process of instance key's running sandbox (0 if none).
func (r *Runtime) Pid(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if inst := r.insts[key]; inst != nil && inst.run != nil && inst.run.running {
		return inst.run.pid
	}
	return 0
}
