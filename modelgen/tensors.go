package modelgen

import (
	"fmt"
	"math"

	"github.com/strata-llm/strata/gguf"
)

// fillKind says how a tensor's values are drawn.
type fillKind int

const (
	fillUniform  fillKind = iota // zero-mean uniform with std plan.std
	fillOnes                     // RMSNorm weights
	fillEmbed                    // token embeddings, with the common direction for skewed routing
	fillRouter                   // ffn_gate_inp: popularity bias plus token-dependent directions
	fillOutput                   // output.weight: uniform, orthogonal to the common direction
	fillContextQ                 // layer 0's attn_q with the context heads' queries (calibrated routers)
	fillContextK                 // layer 0's attn_k with the context heads' keys
	fillContextV                 // layer 0's attn_v with the context heads' values
	fillContextO                 // layer 0's attn_output with the context heads' outputs
)

// plan is one tensor of a generated model.
type plan struct {
	name  string
	typ   gguf.Type
	dims  []uint64 // ggml order: row length first
	kind  fillKind
	std   float32
	layer int
	// residual marks the matrices that write into the residual stream
	// (attn_output, ffn_down*): their rows are its coordinates, per expert
	// for stacked experts.
	residual bool
}

func (p plan) rowLen() int { return int(p.dims[0]) }

func (p plan) rows() int {
	n := 1
	for _, d := range p.dims[1:] {
		n *= int(d)
	}
	return n
}

func (p plan) elements() int64 { return int64(p.rowLen()) * int64(p.rows()) }

// Scale of the matrices that write into the residual stream (attn_output,
// ffn_down). It is small so that the residual stays dominated by the token
// embedding through all layers: activations stay sane, and the router of
// every layer sees mostly the token (see the package doc).
const outScale = 0.2

func invSqrt(n int) float32 { return float32(1 / math.Sqrt(float64(n))) }

// tensors lists the model's tensors in file order: embeddings, output, then
// layer by layer, each MoE layer's stacked expert tensors adjacent.
func (s Spec) tensors(t gguf.Type) []plan {
	n, ff, v := uint64(s.Embd), uint64(s.FF), uint64(s.Vocab.size())
	kv := uint64(s.HeadsKV * s.HeadDim())
	arch := archs[s.Architecture()]
	ps := []plan{
		{name: "token_embd.weight", typ: t, dims: []uint64{n, v}, kind: fillEmbed, std: 1},
		{name: "output_norm.weight", typ: gguf.TypeF32, dims: []uint64{n}, kind: fillOnes},
		{name: "output.weight", typ: t, dims: []uint64{n, v}, kind: fillOutput, std: invSqrt(s.Embd)},
	}
	for l := 0; l < s.Layers; l++ {
		b := func(x string) string { return fmt.Sprintf("blk.%d.%s.weight", l, x) }
		// A calibrated router design has context heads in layer 0 (see the
		// package doc); otherwise the attention matrices are plain uniform.
		qk, kk, vk, ok := fillUniform, fillUniform, fillUniform, fillUniform
		if l == 0 && s.design() != nil {
			qk, kk, vk, ok = fillContextQ, fillContextK, fillContextV, fillContextO
		}
		ps = append(ps,
			plan{name: b("attn_norm"), typ: gguf.TypeF32, dims: []uint64{n}, kind: fillOnes},
			plan{name: b("attn_q"), typ: t, dims: []uint64{n, n}, kind: qk, std: invSqrt(s.Embd), layer: l},
			plan{name: b("attn_k"), typ: t, dims: []uint64{n, kv}, kind: kk, std: invSqrt(s.Embd), layer: l},
			plan{name: b("attn_v"), typ: t, dims: []uint64{n, kv}, kind: vk, std: invSqrt(s.Embd), layer: l},
		)
		if arch.qkNorm {
			hd := uint64(s.HeadDim())
			ps = append(ps,
				plan{name: b("attn_q_norm"), typ: gguf.TypeF32, dims: []uint64{hd}, kind: fillOnes},
				plan{name: b("attn_k_norm"), typ: gguf.TypeF32, dims: []uint64{hd}, kind: fillOnes},
			)
		}
		ps = append(ps,
			plan{name: b("attn_output"), typ: t, dims: []uint64{n, n}, kind: ok, std: outScale * invSqrt(s.Embd), layer: l, residual: true},
			plan{name: b("ffn_norm"), typ: gguf.TypeF32, dims: []uint64{n}, kind: fillOnes},
		)
		if !s.moeLayer(l) {
			ps = append(ps, ffn(b, "", t, n, ff)...)
			continue
		}
		e, eff := uint64(s.Experts), uint64(s.ExpertWidth())
		ps = append(ps,
			// The router stays F32 so its structure is not blurred by
			// quantization; it is n_embd × n_expert floats, small.
			plan{name: b("ffn_gate_inp"), typ: gguf.TypeF32, dims: []uint64{n, e}, kind: fillRouter, layer: l},
			plan{name: b("ffn_gate_exps"), typ: t, dims: []uint64{n, eff, e}, std: invSqrt(s.Embd)},
			plan{name: b("ffn_up_exps"), typ: t, dims: []uint64{n, eff, e}, std: invSqrt(s.Embd)},
			plan{name: b("ffn_down_exps"), typ: t, dims: []uint64{eff, n, e}, std: outScale * invSqrt(int(eff)), residual: true},
		)
		if s.SharedExperts > 0 {
			ps = append(ps, ffn(b, "_shexp", t, n, uint64(s.SharedExperts)*eff)...)
		}
	}
	return ps
}

// ffn plans a dense SwiGLU FFN of width ff: ffn_gate, ffn_up and ffn_down
// with the given name suffix ("" for a dense layer, "_shexp" for shared
// experts, which are the same three matrices).
func ffn(b func(string) string, suffix string, t gguf.Type, n, ff uint64) []plan {
	return []plan{
		{name: b("ffn_gate" + suffix), typ: t, dims: []uint64{n, ff}, std: invSqrt(int(n))},
		{name: b("ffn_up" + suffix), typ: t, dims: []uint64{n, ff}, std: invSqrt(int(n))},
		{name: b("ffn_down" + suffix), typ: t, dims: []uint64{ff, n}, std: outScale * invSqrt(int(ff)), residual: true},
	}
}
