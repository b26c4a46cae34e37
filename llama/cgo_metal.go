//go:build darwin && arm64

package llama

// On Apple silicon the Metal backend is compiled in (its shaders embedded)
// and registered by ggml's backend registry.
import _ "github.com/strata-llm/strata/llama/internal/ggmlmetal"
