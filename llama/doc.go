// Package llama is Strata's cgo layer over llama.cpp's C API (llama.h), and
// the only code in Strata that includes a llama.cpp header.
//
// llama.cpp itself is compiled from the pinned github.com/ollama/ollama
// module (see DESIGN.md); build.sh links its headers under
// third_party/llama.cpp and sets the native SIMD flags. A process uses it
// as:
//
//	m, err := llama.LoadModel(path, llama.ModelParams{})
//	ctx, err := llama.NewContext(m, llama.ContextParams{NCtx: 2048, Threads: 4})
//	batch, err := llama.NewBatch(512, 1)
//	smp, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
//	// fill batch, ctx.Decode(batch), tok, err := smp.Sample(ctx, -1), repeat
//
// and closes each object (Close is explicit and idempotent; a finalizer
// only reports a leak). Objects are owned: a Context must be closed before
// its Model, adapters die with their Model.
//
// The decode loop is allocation-free: batches write into C arrays through
// Go views, logits are returned as views of llama.cpp's buffer, and
// sampling happens in C. llama.cpp's log goes to log/slog (SetLogger).
package llama
