// Package gguf reads, validates and writes GGUF files, the model format of
// llama.cpp, in pure Go.
//
// Read parses a file through an io.ReaderAt and its size. It reads the
// header, the metadata and the tensor infos, and checks what llama.cpp's
// gguf_init_from_file checks, plus that every tensor's data lies inside the
// file; it never reads tensor data. Every count and length read from the file
// is checked against the bytes left and against the absolute limits in
// limits.go before anything is allocated: a sparse file is as large as its
// header claims, so only absolute limits keep what Read allocates bounded
// (about MaxMetadataBytes plus the tensor table) for a file of any size.
// Every error is a *FormatError naming the field and its absolute file
// offset and wrapping a sentinel from errors.go. Tensors carry absolute byte ranges, and
// File.ExpertRanges gives the slices of the stacked MoE expert tensors that
// belong to one expert — the unit the genome pages.
//
// Writer writes a file whose tensor data is streamed through a callback in
// declaration order; Encode produces F32, F16, Q8_0, Q4_0, Q5_0 and Q5_1
// bytes identical to ggml's reference quantizers, and Q4_K, Q5_K and Q6_K
// by the same algorithms as ggml's quantize_row_q4_K_ref, q5_K_ref and
// q6_K_ref, in float32 without fused multiply-add (byte-identical to ggml
// built without FMA contraction; ggml built with -march=native and FMA
// rounds some sub-block fits differently). Those are all the types
// llama-quantize's Q4_K_M mix writes, fallbacks for short rows included.
//
// # Why not github.com/gpustack/gguf-parser-go
//
// The issue asked to evaluate gguf-parser-go (v0.28.1) first. It is a
// careful parser — it bounds string and array lengths by the bytes left and
// has a fuzz target — but Strata keeps its own reader, for these reasons,
// each checked against v0.28.1 by feeding it small crafted files:
//
//   - it panics on general.alignment = 0 (integer divide by zero) and on a
//     general.alignment that is not a uint32 (a panic from its typed getter),
//     where Strata needs an error: the reader runs on files from outside;
//   - it accepts what llama.cpp rejects — an alignment that is not a power of
//     two (48), nested arrays, duplicate keys, tensors not laid out at the
//     aligned running offset — so "parses" would not mean "llama.cpp loads";
//   - its errors do not name the file offset, which the issue requires;
//   - it reads through a path or an io.ReadSeeker, not io.ReaderAt + size,
//     so it cannot parse a region of an existing mapping or a shared *os.File
//     without seeking it;
//   - it pulls in ~10 modules (an HTTP client, ring buffer, x/tools, …) for
//     remote and Ollama-registry parsing that Strata has no use for.
//
// What it does well was kept as a reference: its tensor-type table matched
// ours (verified against ggml.c type_traits), and its memory estimator is a
// possible later addition. It is not a dependency.
//
// A File is immutable once Read returns and is safe for concurrent use. A
// Writer is used by one goroutine at a time.
package gguf
