package modelgen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-llm/strata/gguf"
)

// Mix chooses the type of each weight matrix of a generated model the way
// a llama-quantize file type does, instead of one type for all of them.
// Benchmark models must cost what the files users run cost, and those are
// mostly llama-quantize's Q4_K_M: Q4_K for most matrices, Q6_K for the
// output head and the more sensitive half of attn_v and ffn_down.
type Mix uint8

const (
	// MixUniform gives every weight matrix Options.Type.
	MixUniform Mix = iota
	// MixQ4_K_M is llama-quantize's LLAMA_FTYPE_MOSTLY_Q4_K_M
	// (general.file_type 15) as third_party/llama.cpp/src/llama-quant.cpp
	// assigns it without an importance matrix; see the package doc.
	MixQ4_K_M
)

// String returns the mix's name as ParseWeights and `strata gen -type`
// take it: "uniform" or "q4_k_m".
func (m Mix) String() string {
	switch m {
	case MixUniform:
		return "uniform"
	case MixQ4_K_M:
		return "q4_k_m"
	}
	return fmt.Sprintf("mix(%d)", uint8(m))
}

// fileType returns general.file_type (enum llama_ftype) of a file written
// with the mix.
func (m Mix) fileType() uint32 {
	if m == MixQ4_K_M {
		return 15 // LLAMA_FTYPE_MOSTLY_Q4_K_M
	}
	return 0
}

// ParseWeights parses how a model's weights are written, as `strata gen
// -type` takes it: a type every matrix gets ("f32", "f16", "q8_0",
// "q4_0") or a mix ("q4_k_m"), in any case. It returns Options with Type
// or Mix set and everything else zero.
func ParseWeights(s string) (Options, error) {
	if strings.EqualFold(s, MixQ4_K_M.String()) {
		return Options{Mix: MixQ4_K_M}, nil
	}
	t, err := gguf.ParseType(s)
	if err != nil {
		return Options{}, fmt.Errorf("%w %q (want f32, f16, q8_0, q4_0 or q4_k_m)", ErrType, s)
	}
	if err := validType(t); err != nil {
		return Options{}, err
	}
	return Options{Type: t}, nil
}

// validType reports whether modelgen writes t uniformly.
func validType(t gguf.Type) error {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0:
		return nil
	}
	return fmt.Errorf("%w: %v (want f32, f16, q8_0 or q4_0, or a mix: q4_k_m)", ErrType, t)
}

// assign sets the type of every plan that llama-quantize would quantize
// (ps comes from Spec.tensors(gguf.TypeF32), in file order).
func (m Mix) assign(s Spec, ps []plan) {
	if m != MixQ4_K_M {
		return
	}
	// The state llama-quantize keeps (quantize_state_impl): attn_v tensors
	// are counted in file order against their total; ffn_down tensors
	// against n_layer_all, which is block_count (init_quantize_state_counters
	// sets n_ffn_down to it, not to a count of tensors).
	var nAttnV, iAttnV, iFFNDown int
	for _, p := range ps {
		if quantizable(p) && category(p.name) == catAttnV {
			nAttnV++
		}
	}
	nLayer := s.Layers
	// A 70B is the one model size the mix looks at: llama.cpp's llama
	// loader calls a dense 80-layer GQA model LLM_TYPE_70B.
	is70B := s.Architecture() == "llama" && s.Experts != 8 && s.Layers == 80 && s.Heads != s.HeadsKV
	for i := range ps {
		p := &ps[i]
		if !quantizable(*p) {
			continue
		}
		t := gguf.TypeQ4_K
		switch category(p.name) {
		case catOutput:
			// Rows that are not whole Q4_K blocks get Q8_0 rather than a
			// fallback of Q6_K.
			if p.dims[0]%gguf.TypeQ4_K.BlockSize() != 0 {
				t = gguf.TypeQ8_0
			} else {
				t = gguf.TypeQ6_K
			}
		case catTokenEmbd:
			// The base type: modelgen always writes output.weight, so the
			// embeddings are not tied to the output head (which would give
			// them the head's type).
		case catAttnV:
			if useMoreBits(iAttnV, nAttnV) {
				t = gguf.TypeQ6_K
			}
			if is70B && t == gguf.TypeQ4_K {
				t = gguf.TypeQ5_K
			}
			if s.Experts == 8 {
				t = gguf.TypeQ8_0
			}
			iAttnV++
		case catAttnK:
			if s.Experts == 8 {
				t = gguf.TypeQ8_0
			}
		case catFFNDown:
			// Dense models count ffn_down tensors; MoE models read the layer
			// from the name, because Mixtral's expert tensors are not in
			// layer order.
			layer := iFFNDown
			if s.Experts > 1 {
				layer = nameLayer(p.name)
			}
			if useMoreBits(layer, nLayer) {
				t = gguf.TypeQ6_K
			}
			iFFNDown++
		case catAttnOutput:
			if s.Experts == 8 {
				t = gguf.TypeQ5_K
			}
		}
		p.typ = fallback(t, p.dims[0])
	}
}

// useMoreBits is llama-quantize's use_more_bits: the first and last eighth
// of the layers and every third one between them.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// fallback is llama-quantize's tensor_type_fallback: a type whose blocks do
// not divide the row length is replaced by a 32-value type of about as many
// bits (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0), and by F16 when even that
// does not divide it.
func fallback(t gguf.Type, rowLen uint64) gguf.Type {
	if rowLen%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case gguf.TypeQ4_K:
		t = gguf.TypeQ5_0
	case gguf.TypeQ5_K:
		t = gguf.TypeQ5_1
	case gguf.TypeQ6_K:
		t = gguf.TypeQ8_0
	}
	if rowLen%t.BlockSize() != 0 {
		return gguf.TypeF16
	}
	return t
}

// quantizable is the part of llama-quantize's tensor_allows_quantization
// that concerns the tensors modelgen writes: matrices (2-D or more) whose
// name ends in "weight", except norms and MoE routers.
func quantizable(p plan) bool {
	return len(p.dims) >= 2 && strings.HasSuffix(p.name, "weight") &&
		!strings.Contains(p.name, "_norm.weight") && !strings.Contains(p.name, "ffn_gate_inp.weight")
}

// tensorCategory is llama-quantize's tensor_category, for the tensors
// modelgen writes.
type tensorCategory int

const (
	catOther tensorCategory = iota
	catOutput
	catTokenEmbd
	catAttnV
	catAttnK
	catAttnQ
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
)

// category is llama-quantize's tensor_get_category: substring tests in its
// order, so "ffn_down" covers ffn_down, ffn_down_exps and ffn_down_shexp.
func category(name string) tensorCategory {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

// nameLayer returns N of a "blk.N." tensor name. modelgen names every layer
// tensor so; -1 for another name.
func nameLayer(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	n, _, ok := strings.Cut(rest, ".")
	if !ok {
		return -1
	}
	l, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return l
}
