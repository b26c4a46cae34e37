// Package modelgen writes GGUF models with seeded random weights that
// llama.cpp loads: small dense and MoE models for tests, and realistically
// shaped ones for benchmarks and paging studies, in the layouts of several
// architectures.
//
// # Presets
//
//	tiny-dense     llama: n_embd 128, 4 layers, n_ff 256, 4 heads / 2 KV   0.66 M params
//	tiny-moe       llama: as tiny-dense, 8 experts of n_ff 128, 2 used,
//	               skew 1.0                                                1.84 M params
//	tiny-qwen3moe  qwen3moe: tiny-moe with QK-norm                         1.84 M params
//	tiny-deepseek  deepseek: layer 0 dense (n_ff 256), layers 1-3 with 16
//	               experts of n_ff 64, 4 used, + 2 shared experts          1.76 M params
//	tiny-mellum    mellum: tiny-qwen3moe's tensors, 8-token sliding
//	               window on layers 0-2                                    1.84 M params
//	bench-dense    llama: Llama 3.2 1B shape: n_embd 2048, 16 layers,
//	               n_ff 8192, 32 heads / 8 KV heads                        0.97 B params
//	bench-moe      llama: n_embd 2048, 16 layers, 64 experts of n_ff 896,
//	               4 used, skew 1.1; 5.85 MiB per expert at Q8_0, ~6.2 GB  5.8 B params
//
// The tiny presets are under 2 MiB at Q8_0.
//
// # Architectures
//
// Spec.Arch picks general.architecture, and with it the key prefix and the
// tensors llama.cpp's loader for that architecture
// (third_party/llama.cpp/src/models/<arch>.cpp) requires:
//
//   - llama (the default): attention, then a dense FFN (ffn_gate, ffn_up,
//     ffn_down) or, with Experts, a router (ffn_gate_inp) and stacked
//     experts (ffn_{gate,up,down}_exps) in every layer.
//   - qwen3moe: as llama with experts in every layer, plus per-head RMSNorm
//     of Q and K (attn_q_norm, attn_k_norm) and expert_feed_forward_length.
//   - deepseek (DeepSeekMoE): the first DenseLayers layers
//     (leading_dense_block_count) have a dense FFN of width FF and no
//     experts; the others have routed experts of width ExpertFF plus
//     SharedExperts shared experts (expert_shared_count), stored as one
//     always-active FFN ffn_{gate,up,down}_shexp of width SharedExperts ×
//     ExpertFF. It is the simplest llama.cpp architecture with both
//     features (glm4moe adds a score-correction bias and sigmoid routing,
//     deepseek2 multi-head latent attention).
//   - mellum: qwen3moe's tensors plus sliding-window attention
//     (attention.sliding_window) on three of every four layers. It is in
//     llama.cpp v0.5.0 but not in the ollama-era llama.cpp.
//
// Spec.MoELayers lists the layers that hold experts. Dense layers and shared
// experts are ordinary weights: every token uses them, so they have no expert
// pages.
//
// Matrices (token_embd and output included) take Options.Type: F32, F16,
// Q8_0 or Q4_0, encoded by package gguf exactly as ggml's reference
// quantizers would. Norm weights (all 1) and MoE routers stay F32.
//
// # Q4_K_M
//
// Options.Mix = MixQ4_K_M (`strata gen -type q4_k_m`) writes the file
// llama-quantize's Q4_K_M would make of the same weights without an
// importance matrix, the format most GGUF users run: the types are chosen
// per tensor as llama_tensor_get_type in
// third_party/llama.cpp/src/llama-quant.cpp chooses them, and encoded by
// package gguf with ggml's reference algorithms
// (llama/quant_test.go holds them to ggml itself):
//
//   - every matrix Q4_K, norms and routers F32 as before;
//   - output.weight Q6_K (Q8_0 if its rows are not whole super-blocks of
//     256); token_embd.weight Q4_K, since modelgen always writes an output
//     head (tied embeddings would take the head's type);
//   - attn_v Q6_K where use_more_bits(i, n) (i < n/8 || i >= 7n/8 ||
//     (i-n/8)%3 == 2) holds, i counting attn_v tensors in file order and n
//     their total; on an LLM_TYPE_70B (llama, 80 layers, GQA) the others
//     Q5_K;
//   - every tensor named ffn_down* (dense, _exps, _shexp) Q6_K where
//     use_more_bits(i, n_layer) holds, with n_layer the block count, i the
//     layer parsed from the name for MoE models and the running count of
//     ffn_down tensors for dense ones (the same thing for modelgen's
//     layouts);
//   - models with exactly 8 experts: attn_k and attn_v Q8_0, attn_output
//     Q5_K;
//   - a row length that is not a multiple of the chosen type's block falls
//     back as llama-quantize's tensor_type_fallback does: Q4_K → Q5_0,
//     Q5_K → Q5_1, Q6_K → Q8_0, then F16 if not even 32 divides it
//     (bench-moe's ffn_down_exps, rows of 896, are Q5_0 and Q8_0; every
//     matrix of the tiny presets, rows of 128, is a 32-value type);
//   - general.file_type 15 (LLAMA_FTYPE_MOSTLY_Q4_K_M) and
//     general.quantization_version 2, which llama-quantize adds.
//
// Tensors lists the types a spec gets. bench-dense at Q4_K_M is 558 MiB
// (97 Q4_K, 17 Q6_K matrices), bench-moe 3.60 GiB. The generated values are
// the same as at any other type for the same seed; only their encoding
// differs.
//
// # Vocabulary
//
// A byte-level SentencePiece ("llama") vocabulary of 260 tokens: <unk> (0,
// UNKNOWN), <s> (1, CONTROL), </s> (2, CONTROL), the 256 byte tokens
// "<0x00>".."<0xFF>" (3..258, BYTE) and "▁" (259, NORMAL).
// add_space_prefix is false. llama.cpp's SPM tokenizer has no merges to
// apply, so every byte becomes its byte token, except that it first rewrites
// spaces to "▁", which maps to token 259 and detokenizes back to a space:
// text round-trips exactly (a literal "▁" in the input comes back as a
// space). llama.cpp logs "special_eos_id is not in special_eog_ids" on load,
// as it does for Llama 2; it then adds </s> as end of generation itself.
//
// # Weights
//
// Every tensor is cut into slabs of whole rows (about 1 M values); each slab
// is drawn from its own PCG stream seeded by (seed, tensor name, slab index),
// so slabs are drawn in parallel and the same spec, type and seed give a
// byte-identical file whatever the number of workers. Values are zero-mean
// uniform (cheaper to draw than normal; random weights need no particular
// shape) with std 1/sqrt(fan_in) for Q, K, V, gate and up projections and the
// output head, and 0.2/sqrt(fan_in) for attn_output and ffn_down, the
// matrices that write into the residual stream. Token embeddings have std 1.
// The residual stream thus stays dominated by the token embedding through all
// layers: activations stay near unit RMS (no NaN, no blow-up), and greedy
// decoding produces varied tokens (it falls into cycles of a few to tens of
// tokens, as a random model does).
//
// # Router design (the MoE presets)
//
// With routers drawn at random every expert is equally likely and every
// paging policy looks alike. Real MoE routing traces show a few hot experts
// per layer and a token tending to the same experts each time it occurs. The
// router weights induce both:
//
//  1. A common direction. A unit vector u (drawn from the seed) is added to
//     every token embedding: e_t = m·u + σ·z_t with z_t the token's own
//     random part and m = σ·sqrt(n_embd), so u carries half the embedding's
//     energy. After RMSNorm the FFN input x of every token has x·u ≈ κ =
//     sqrt(n_embd/2), nearly the same for all tokens. The output head is
//     drawn orthogonal to u, so this shared part does not bias the logits.
//
//  2. Per-expert popularity along u. Row e of blk.L.ffn_gate_inp is
//     β_e·u + v_e. β_e = τ·ln(p_e)/κ, where p_e is a Zipf law
//     p ∝ rank^-s (s = Spec.RouterSkew: 1.0 for the tiny presets, 1.1 for
//     bench-moe) over a random permutation of the experts drawn per layer,
//     so each layer has its own hot set. The shared part of every token's router
//     logits is therefore τ·ln(p_e).
//
//  3. Token-dependent directions. v_e is a random vector orthogonal to u of
//     norm 2·√2, so x·v_e is, across tokens, roughly N(0, 2²) and
//     independent between experts, but fixed for a given token. With τ =
//     2/1.28 this noise has the spread of a Gumbel variable of scale τ, and
//     by the Gumbel-max argument top-1 choice follows p_e; top-k is flatter.
//
// The result: which experts a token uses is a deterministic function of the
// token (and, weakly, of its context through attention), so a token that
// recurs — as tokens do in text, with their own Zipf frequencies — reuses
// its experts (temporal locality), while over all tokens a few experts per
// layer take most of the traffic (skew). Measured in Go on tiny-moe, layer
// 0, over the 256 byte tokens with top-2 of 8 (TestRouterSkew, seed 3):
// expert counts 150 101 73 52 43 36 31 28 against a uniform 64 each, in the
// designed order. Later layers see the popularity slightly flattened, as the
// layers' own outputs dilute the common direction.
//
// Measured through llama.cpp itself (the ffn_moe_topk tensors of the eval
// callback, one 344-byte English prompt of two repeated sentences):
// tiny-moe (Q8_0, seed 3): the hottest of 8 experts takes 23–26% of
// routings in every layer (uniform: 12.5%), and a repeated token gets the
// same expert pair as at its first occurrence 246–313 times out of 314.
// bench-moe (Q8_0, seed 1, 172 tokens): the 8 hottest of 64 experts take
// 68–83% of routings per layer (uniform: 12.5%), and a repeated token gets
// exactly the same set of 4 experts in 37–100% of cases depending on the
// layer (highest in the first layers).
//
// ExpertPopularity returns the designed shares, for comparing with a routing
// trace.
//
// # LoRA
//
// WriteLoRA writes an adapter (general.type "adapter", adapter.type "lora",
// adapter.lora.alpha = rank) with blk.N.attn_q.weight.lora_a/lora_b and
// blk.N.attn_v.weight.lora_a/lora_b, shaped as llama-adapter.cpp requires
// (lora_a [n_in, r], lora_b [r, n_out] in ggml order), both non-zero.
//
// Files are written atomically: to a temporary file in the target directory,
// synced and renamed, so an interrupted run never leaves a partial model.
package modelgen
