// Package llamamodels compiles libllama's per-architecture model graphs
// (third_party/llama.cpp/src/models), sixteen to a generated file as
// upstream's unity build groups them. It is a package of its own so that
// its build runs beside llamacpp's on a second core.
package llamamodels

// #cgo CPPFLAGS: -I${SRCDIR}/../../../third_party/llama.cpp/include -I${SRCDIR}/../../../third_party/llama.cpp/src -I${SRCDIR}/../../../third_party/llama.cpp/ggml/include -DNDEBUG
// #cgo CXXFLAGS: -std=c++17
import "C"

import _ "github.com/strata-llm/strata/llama/internal/llamacpp"
