// Package ggmlcpu compiles ggml's CPU backend from third_party/llama.cpp,
// with every architecture's kernels (the generated arch-*.c/cpp files carry
// build constraints). It has no Go API: package llama imports it.
//
// The defines are the ones upstream's CMake sets by default
// (ggml/src/ggml-cpu/CMakeLists.txt): GGML_USE_CPU_REPACK (Q4_0, Q4_K, IQ4_NL
// weights repacked into interleaved layouts at load; without it prompts run
// at 0.52x upstream on Q4_K_M), GGML_USE_LLAMAFILE (tinyBLAS sgemm for
// prompt-sized matrix products). Threads come from ggml's own thread pool,
// not OpenMP. The SIMD level comes from CGO_CFLAGS/CGO_CXXFLAGS (-march);
// llama.SystemInfo reports what was compiled in.
package ggmlcpu

// #cgo CPPFLAGS: -I${SRCDIR}/../../../third_party/llama.cpp/ggml/include -I${SRCDIR}/../../../third_party/llama.cpp/ggml/src -I${SRCDIR}/../../../third_party/llama.cpp/ggml/src/ggml-cpu
// #cgo CPPFLAGS: -DGGML_USE_CPU_REPACK -DGGML_USE_LLAMAFILE -DNDEBUG
// #cgo linux CPPFLAGS: -D_GNU_SOURCE
// #cgo darwin CPPFLAGS: -D_DARWIN_C_SOURCE -DGGML_USE_ACCELERATE -DACCELERATE_NEW_LAPACK -DACCELERATE_LAPACK_ILP64
// #cgo darwin LDFLAGS: -framework Accelerate
// #cgo !amd64,!386,!arm64,!arm,!riscv64,!ppc64,!ppc64le,!loong64,!s390x CPPFLAGS: -DGGML_CPU_GENERIC
// #cgo CXXFLAGS: -std=c++17
// #cgo linux LDFLAGS: -lm -lpthread
import "C"

import _ "github.com/strata-llm/strata/llama/internal/ggml"
