package containerd

// HasUsageSample reports whether the runtime keeps a CPU sample of the
// instance key (for tests).
func (r *Runtime) HasUsageSample(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.samples[ContainerID(r.cfg.NodeName, key)]
	return ok
}
