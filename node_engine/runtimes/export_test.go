package runtimes

// Len is the number of files whose tail is kept (for tests).
func (c *LogTails) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
