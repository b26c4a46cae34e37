// Package llama is Strata's cgo layer over llama.cpp's C API (llama.h), and
// the only code in Strata that includes a llama.cpp header.
//
// llama.cpp itself is the release vendored in third_party/llama.cpp,
// compiled by the cgo packages under llama/internal, so `go build` of any
// program importing this package needs only a C/C++ compiler. Set
// CGO_CFLAGS and CGO_CXXFLAGS to "-O3 -march=native" (build.sh does) or
// ggml's CPU code runs without SIMD; SystemInfo shows what was compiled
// in. A process uses it as:
//
//	m, err := llama.LoadModel(path, llama.ModelParams{})
//	ctx, err := llama.NewContext(m, llama.ContextParams{NCtx: 2048, Threads: 4})
//	batch, err := llama.NewBatch(512, 1)
//	smp, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
//	// fill batch, ctx.Decode(batch), tok, err := smp.Sample(ctx, -1), repeat
//
// and closes each object (Close is explicit and idempotent; a finalizer
// only reports a leak). Objects are owned: Model.Close refuses with
// ErrInUse while a Context is open, Adapter.Close while a Context has the
// adapter applied; adapters still open die with their Model.
//
// The decode loop is allocation-free: batches write into C arrays through
// Go views, logits are returned as views of llama.cpp's buffer, and
// sampling happens in C. llama.cpp's log goes to log/slog (SetLogger).
package llama
