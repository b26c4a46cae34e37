package engine

import "github.com/strata-llm/strata/llama"

// PagedExperts returns p changed so that a model loaded with it can have
// its MoE experts paged by a Budget: every expert tensor is placed in the
// plain CPU buffer type (llama.CPUMoE), which llama.cpp serves straight
// from its file mapping. Without it llama.cpp's CPU backend repacks Q4_0,
// Q4_K and IQ4_NL weights into interleaved copies in anonymous memory at
// load; the genome would then page file bytes that inference never reads,
// and the copies would sit in RAM outside any budget. Dense tensors keep
// their repacked layouts, so only the expert matmuls lose the repacked
// kernels (README: what -budget costs in prompt speed). Mapping is forced
// on: the genome pages the mapping.
func PagedExperts(p llama.ModelParams) llama.ModelParams {
	p.CPUMoE = true
	p.NoMmap = false
	return p
}
