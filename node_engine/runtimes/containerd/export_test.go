package containerd

// HasUsageSample reports whether the runtime keeps a CPU sample of the
// instance key (for tests).
func (r *Runtime) HasUsageSample(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.samples[ContainerID(r.cfg.NodeName, key)]
	return ok
}

// SetImageFilter limits the images the collector sees (tests share the
// namespace with other runs), and makes a Start's image collectable at
// once.
func (r *Runtime) SetImageFilter(f func(name string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.imageFilter = f
	recentUse = 0
}
