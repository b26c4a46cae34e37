package llama

// #cgo CPPFLAGS: -I${SRCDIR}/../third_party/llama.cpp/include -I${SRCDIR}/../third_party/llama.cpp/ggml/include
// #cgo CXXFLAGS: -std=c++17
// #include "shim.h"
import "C"

import (
	// The pinned ollama module compiles llama.cpp and ggml (base + CPU
	// backend) as cgo packages; importing them links the C into this
	// binary. Strata never uses their Go APIs. See DESIGN.md.
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
	_ "github.com/ollama/ollama/ml/backend/ggml/ggml/src"
)
