package llama

// #cgo CPPFLAGS: -I${SRCDIR}/../third_party/llama.cpp/include -I${SRCDIR}/../third_party/llama.cpp/src -I${SRCDIR}/../third_party/llama.cpp/ggml/include
// #cgo CXXFLAGS: -std=c++17
// #include "shim.h"
import "C"

import (
	// The vendored llama.cpp (third_party/llama.cpp) is compiled by these
	// cgo packages; importing them links the C into every program that
	// imports llama. They have no Go API. See DESIGN.md.
	_ "github.com/strata-llm/strata/llama/internal/ggml"
	_ "github.com/strata-llm/strata/llama/internal/ggmlcpu"
	_ "github.com/strata-llm/strata/llama/internal/llamacpp"
	_ "github.com/strata-llm/strata/llama/internal/llamamodels"
)
