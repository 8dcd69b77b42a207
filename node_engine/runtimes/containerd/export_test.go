package containerd

import "google.golang.org/grpc"

// WithDialOptions adds options to the runtime's connection to containerd
// (for tests: interceptors counting the calls).
func WithDialOptions(opts ...grpc.DialOption) func(*Config) {
	return func(c *Config) { c.dialOptions = append(c.dialOptions, opts...) }
}

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

// CgroupPath is the cgroup Usage reads for the instance key (for tests).
func (r *Runtime) CgroupPath(key string) string {
	return cgroupPath(r.cfg.Namespace, ContainerID(r.cfg.NodeName, key))
}

// ReadsCgroup reports whether Usage reads the instance's cgroup itself
// rather than asking containerd (for tests).
func (r *Runtime) ReadsCgroup(key string) bool {
	_, _, ok := r.cgroupUsage(ContainerID(r.cfg.NodeName, key))
	return ok
}

// SetNativeSyscalls replaces the table of the native architecture's
// system calls (nil: keep the profile's names as they are) until restore.
func SetNativeSyscalls(names []string) (restore func()) {
	old := nativeSyscalls
	nativeSyscalls = names
	return func() { nativeSyscalls = old }
}
