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
//	               n_ff 8192, 32 heads / 8 KV heads, Llama 3's
//	               128,256-token vocabulary                               1.50 B params
//	bench-moe      llama: n_embd 2048, 16 layers, 64 experts of n_ff 896,
//	               4 used, router realistic, Llama 3's vocabulary; 5.58
//	               MiB per expert at Q8_0, 6.28 GiB                        6.33 B params
//	bench-moe-uniform  bench-moe with router uniform                       6.33 B params
//	bench-moe-wide llama: n_embd 2048, 8 layers, 8 experts of n_ff 5632,
//	               2 used, router realistic, Llama 3's vocabulary; 35.06
//	               MiB per expert at Q8_0 (slices of 11.69), 2.80 GiB    2.82 B params
//
// The tiny presets are under 2 MiB at Q8_0, with the byte vocabulary and
// router zipf; their files are byte-identical to those modelgen wrote
// before vocabularies and router designs existed. The benchmark presets
// write the output head apart from token_embd (Llama 3.2 1B ties them), so
// bench-dense counts the 2048×128,256 matrix twice.
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
// Tensors lists the types a spec gets. bench-dense at Q4_K_M is 911 MiB
// (97 Q4_K, 17 Q6_K matrices), bench-moe 3.94 GiB. The generated values are
// the same as at any other type for the same seed; only their encoding
// differs.
//
// # Vocabulary
//
// Spec.Vocab picks the tokenizer. The zero value, VocabBytes, is a
// byte-level SentencePiece ("llama") vocabulary of 260 tokens: <unk> (0,
// UNKNOWN), <s> (1, CONTROL), </s> (2, CONTROL), the 256 byte tokens
// "<0x00>".."<0xFF>" (3..258, BYTE) and "▁" (259, NORMAL).
// add_space_prefix is false. llama.cpp's SPM tokenizer has no merges to
// apply, so every byte becomes its byte token, except that it first rewrites
// spaces to "▁", which maps to token 259 and detokenizes back to a space:
// text round-trips exactly (a literal "▁" in the input comes back as a
// space). llama.cpp logs "special_eos_id is not in special_eog_ids" on load,
// as it does for Llama 2; it then adds </s> as end of generation itself.
//
// The benchmark presets carry a real tokenizer instead, so that text
// becomes word pieces and the output head and the sampler cost what they
// cost in real models. llama.cpp's release ships vocabulary-only GGUFs of
// real tokenizers (models/ggml-vocab-*.gguf, for its tokenizer tests);
// modelgen embeds two, zstd-compressed under vocab/ (see vocab/README.md for
// their source, licences and checksums, scripts/update-vocab.sh to
// reproduce them):
//
//   - VocabLlama3: Llama 3's BPE, 128,256 tokens (ggml-vocab-llama-bpe,
//     tokenizer.ggml.pre "llama-bpe"; BOS 128000, EOS 128001);
//   - VocabQwen35: Qwen 3.5's BPE, 151,936 tokens (ggml-vocab-qwen35).
//
// Every tokenizer.* key of the file (model, pre, tokens, token_type,
// merges, BOS/EOS ids, chat template where there is one) is copied into
// the model as it is, <arch>.vocab_size is set to its token count and
// token_embd and output are sized by it. "Hello world" is two tokens with
// either. The file is checked against vocab/SHA256SUMS before use.
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
// Spec.Router picks how the router weights are drawn. With routers drawn
// at random, every expert is equally likely and which ones a token uses is
// a function of the token alone: every paging policy looks alike. Real MoE
// routing, in published traces (Qwen3, OLMoE, Mixtral), has per layer a
// few popular experts (the top eighth taking 25-45% of routings), touches
// most experts within a few hundred tokens, and keeps temporal locality:
// 25-45% of a token's experts were the previous token's, because the
// hidden state changes slowly. Three designs:
//
//   - RouterZipf (the zero value; the tiny presets): popularity alone.
//   - RouterRealistic (bench-moe): popularity, plus locality from context.
//   - RouterUniform (bench-moe-uniform): as close to uniform as a router
//     over text gets, with locality at chance.
//
// Popularity (RouterZipf, RouterRealistic). A unit vector u (drawn from
// the seed) is added to every token embedding: e_t = m·u + σ·z_t with z_t
// the token's own random part and m = σ·sqrt(n_embd), so u carries half
// the embedding's energy. After RMSNorm the FFN input x of every token has
// x·u ≈ κ = sqrt(n_embd/2), nearly the same for all tokens. The output head
// is drawn orthogonal to u, so this shared part does not bias the logits.
// Row e of blk.L.ffn_gate_inp is β_e·u + v_e. β_e = τ·ln(p_e)/κ, where p_e
// is a Zipf law p ∝ rank^-s over a random permutation of the experts drawn
// per layer, so each layer has its own hot set, and τ = 2/1.28. The shared
// part of every token's router logits is therefore τ·ln(p_e). v_e is a
// random vector orthogonal to u; for RouterZipf of norm 2·√2, so x·v_e is,
// across tokens, roughly N(0, 2²): the Gumbel-max argument makes top-1
// choice follow p_e, top-k is flatter. s is Spec.RouterSkew for RouterZipf
// (1.0 in the tiny presets), 0.6 for RouterRealistic.
//
// RouterZipf makes a token's experts a function of the token: a token that
// recurs reuses its experts. Measured in Go on tiny-moe, layer 0, over the
// 256 byte tokens with top-2 of 8 (TestRouterSkew, seed 3): expert counts
// 150 101 73 52 43 36 31 28 against a uniform 64 each, in the designed
// order. On 64 experts at s = 1.1 (the former bench-moe) it is far too
// skewed: through llama.cpp on a 1,471-token prompt the 8 hottest experts
// took 76% of each layer's routings and only 34 of 64 were touched.
//
// Context heads (RouterRealistic, RouterUniform). Layer 0 gets three
// attention heads that each copy one earlier token into a reserved part of
// the residual stream, and every router reads that part:
//
//  1. Sharp attention by offset. A context head's queries and keys read
//     only u, whose coordinate x·u is exactly κ at layer 0 (the token parts
//     z_t are drawn orthogonal to u with a fixed norm), so they are the same
//     for every token. Under RoPE (pairs (2i, 2i+1) turned by position·θ_i,
//     θ_i = base^(-2i/head_dim)) a key pair (A, A) and a query pair turned
//     back by d·θ_i score the token Δ positions back c·K(Δ-d), with
//     K(δ) = Σ cos(δ·θ_i) over the 8 fastest pairs (the others are 0: they
//     would add nearly the same score at every distance). With head dim 64
//     and base 500000, K(0) = 8, K(±1) = 7.16 and K(δ) ≤ 5.79 for every
//     other δ within 4096 tokens; c = 8 puts 99.6% of the head's attention
//     on the token d back (seen in llama.cpp's kq_soft_max). Validate
//     refuses a head dim and RoPE base for which this kernel is not sharp,
//     and architectures with QK-norm, which would undo the scale.
//  2. A reserved subspace. The top head_dim coordinates of the residual
//     stream are kept for the context heads: token embeddings and u are 0
//     there, and every other matrix that writes into the residual stream
//     (attn_output, ffn_down*) has those rows 0, so nothing else (above
//     all the part of attention and FFN outputs that is the same for every
//     token, which would act as a fixed expert preference) reaches them.
//     Each context head's values are one shared projection v(token) with
//     orthonormal rows (isotropic, so no expert is favoured), and its
//     output columns put γ·O_h·v into the reserved coordinates.
//  3. Routers read it. Every router row is β_e·u, plus a token part v_e of
//     fixed norm outside the reserved coordinates (logit std tokenStd),
//     plus, in the reserved coordinates, a row of a matrix with orthonormal
//     rows scaled to give the context part a logit std ctxStd.
//
// RouterRealistic's heads attend 0, 1 and 2 tokens back, all through the
// same O: the context part of the logits is a function of (t, t-1, t-2),
// of which token t-1 shares two thirds, and that is where the reuse comes
// from (s 0.6, tokenStd 0.7, ctxStd 3.5). RouterUniform's heads attend 1, 2
// and 3 back, each through its own random rotation O_h, so consecutive
// tokens share nothing (tokenStd 1.0, ctxStd 3.0, no popularity): spreading
// the logits over four tokens also spreads the weight of frequent tokens,
// which a router of the token alone would send to the same experts each
// time.
//
// Measured through llama.cpp (TestRouterCalibration: ffn_moe_topk on the
// 386 Llama 3 tokens of testdata/english.txt, every token's routing in every
// layer, Q8_0, seed 1), per layer:
//
//	                            top eighth     prev-token reuse  touched (300 tok)
//	realistic, test model       0.271-0.335    0.356-0.378       0.98-1.00
//	realistic, bench width      0.312-0.393    0.367-0.403       0.98-1.00
//	uniform, test model         0.196-0.212    0.055-0.069       1.00
//	uniform, bench width        0.225-0.271    0.061-0.081       1.00
//	zipf s=0 (token alone)      0.259-0.311    0.053-0.069       1.00
//
// The test model is bench-moe reduced (n_embd 256, 4 layers, 4 heads,
// n_ff 64, 64 experts, 4 used); "bench width" is bench-moe's n_embd 2048,
// 16 layers and 32 heads / 8 KV with n_ff 32. Seeds 2 and 3 of the test
// model gave realistic top eighth 0.317-0.411, reuse 0.346-0.405, touched
// 0.98-1.00; uniform 0.207-0.258 and 0.056-0.077. For comparison: uniform routing drawn independently for every
// token gives a top eighth of 0.167 over 386 tokens (sampling noise alone),
// and any router that is a linear function of the last few tokens about
// 0.21 on this text (Monte Carlo over its token sequence): that is the
// floor for RouterUniform, set by the text's frequent tokens.
//
// ExpertPopularity returns the designed Zipf shares, for comparing with a
// routing trace; for RouterRealistic the prior that tokens and context
// flatten.
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
