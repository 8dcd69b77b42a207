package unikernel

import "path/filepath"

// Downloads is how many image downloads this runtime has begun.
func (r *Runtime) Downloads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downloads
}

// InstanceDir is the directory of instance key.
func (r *Runtime) InstanceDir(key string) string { return r.dirOf(key) }

// QemuPid is the pid of instance key's qemu as recorded in its directory
// (0 if none).
func (r *Runtime) QemuPid(key string) int {
	return readPid(filepath.Join(r.dirOf(key), fileQemuPid))
}
