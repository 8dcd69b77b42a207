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

// CompiledModules is how many compiled modules this runtime holds.
func (r *Runtime) CompiledModules() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.compiled)
}
