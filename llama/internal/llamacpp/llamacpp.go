// Package llamacpp compiles libllama's core (model loader, context, KV
// caches, vocabularies, samplers) from third_party/llama.cpp. It has no Go
// API: package llama imports it. The model graphs are in llamamodels.
package llamacpp

// #cgo CPPFLAGS: -I${SRCDIR} -I${SRCDIR}/../../../third_party/llama.cpp/include -I${SRCDIR}/../../../third_party/llama.cpp/src -I${SRCDIR}/../../../third_party/llama.cpp/ggml/include -DNDEBUG
// #cgo CXXFLAGS: -std=c++17
import "C"

import _ "github.com/strata-llm/strata/llama/internal/ggml"
