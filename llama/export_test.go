package llama

// InterruptDecode interrupts decode number n only, as DecodeContext's
// cancellation does.
func (c *Context) InterruptDecode(n uint64) { c.interrupt(n) }

// DecodeNumber is the number of the last decode started.
func (c *Context) DecodeNumber() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// PinnedPath exposes pinnedPath.
var PinnedPath = pinnedPath

// Pools reports the context's CPU thread pools: whether it has them, and
// whether generation and batches share one.
func (c *Context) Pools() (has, shared bool) {
	return c.pool != nil && c.poolBatch != nil, c.pool == c.poolBatch
}

// LogFragment passes a fragment through the log sink as llama.cpp's
// callback does (level: ggml's, 1 debug to 5 continuation).
func LogFragment(level int, text string) {
	if !logSink.skip(level) {
		logSink.write(level, text)
	}
}

// NewSamplerChain builds p's sampler as one llama.cpp chain, without the
// fast paths NewSampler takes for greedy and top-k chains.
func NewSamplerChain(p SamplerParams) (*Sampler, error) { return newSampler(p, false) }
