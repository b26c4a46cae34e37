package modelgen

import (
	"fmt"
	"sort"

	"github.com/strata-llm/strata/gguf"
)

// Spec is the shape of a generated model.
type Spec struct {
	Name string
	// Arch is general.architecture, which llama.cpp builds the model as:
	// "llama" (also when empty), "qwen3moe", "deepseek" or "mellum".
	// Empty means "llama" so that specs written before Arch existed give
	// the same bytes as before. Validate refuses a feature the chosen
	// architecture's loader does not read.
	Arch        string
	Embd        int // n_embd
	Layers      int // n_layer (block_count)
	FF          int // n_ff: the FFN width of dense layers; per expert too unless ExpertFF is set
	Heads       int // n_head
	HeadsKV     int // n_head_kv (GQA when < Heads)
	Context     int // context_length
	Experts     int // n_expert, 0 for dense
	ExpertsUsed int // n_expert_used, 0 for dense
	// ExpertFF is expert_feed_forward_length, the width of each routed
	// expert when it differs from FF; 0 means FF. Fine-grained MoE models
	// (DeepSeek, Qwen3) have experts far narrower than their dense FFNs.
	ExpertFF int
	// DenseLayers is leading_dense_block_count: the first DenseLayers
	// layers have a dense FFN of width FF and no router or experts, as in
	// DeepSeek and GLM-4.5. MoELayers lists the others.
	DenseLayers int
	// SharedExperts is expert_shared_count: every MoE layer also has one
	// always-active FFN of width SharedExperts × ExpertFF
	// (ffn_{gate,up,down}_shexp). It is dense weight that every token
	// uses, not an expert: it has no router row and no expert page.
	SharedExperts int
	// SlidingWindow is attention.sliding_window: where non-zero, llama.cpp
	// gives some layers sliding-window attention over that many tokens, in
	// the architecture's own pattern (mellum: three of every four layers).
	SlidingWindow int
	// Router is the routing the router weights are designed to give (see
	// the package doc, "Router design"): RouterZipf (the zero value, the
	// tiny presets), RouterRealistic or RouterUniform.
	Router Router
	// RouterSkew is, for RouterZipf, the Zipf exponent s of the expert
	// popularity the router weights induce; 0 gives unstructured random
	// routing. The other routers are calibrated as a whole and need it 0.
	// Only meaningful for MoE specs.
	RouterSkew float64
	// Vocab is the tokenizer: VocabBytes (the zero value, 260 tokens) or
	// a real one (VocabLlama3, VocabQwen35), which sizes token_embd and
	// the output head.
	Vocab Vocab
	// ChatTemplate, when set, is written as tokenizer.chat_template in
	// place of the vocabulary's own (the byte vocabulary has none).
	ChatTemplate string
	RopeBase     float32
	NormEps      float32
}

// archInfo is what an architecture's llama.cpp loader
// (third_party/llama.cpp/src/models/<arch>.cpp) requires and reads.
type archInfo struct {
	moe       bool // throws unless every non-dense layer has experts
	qkNorm    bool // requires attn_q_norm and attn_k_norm (per-head RMSNorm)
	expertFF  bool // reads expert_feed_forward_length
	denseLead bool // reads leading_dense_block_count
	shared    bool // requires expert_shared_count and the shexp tensors
	swa       bool // reads attention.sliding_window
}

// archs are the architectures modelgen writes. llama is the classic layout;
// qwen3moe is Qwen3-30B-A3B's (QK-norm, MoE in every layer); deepseek is
// DeepSeekMoE's (dense leading layers, shared plus routed experts, plain
// attention: the simplest loader with both); mellum is a llama.cpp v0.5.0
// architecture (JetBrains Mellum MoE: qwen3moe's tensors plus
// sliding-window attention), absent from the ollama-era llama.cpp.
var archs = map[string]archInfo{
	"llama":    {},
	"qwen3moe": {moe: true, qkNorm: true, expertFF: true},
	"deepseek": {moe: true, expertFF: true, denseLead: true, shared: true},
	"mellum":   {moe: true, qkNorm: true, expertFF: true, swa: true},
}

// Architectures lists the architectures Spec.Arch may name.
func Architectures() []string {
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var presets = map[string]Spec{
	"tiny-dense": {
		Name: "tiny-dense", Embd: 128, Layers: 4, FF: 256, Heads: 4, HeadsKV: 2,
		Context: 2048, RopeBase: 10000, NormEps: 1e-5,
	},
	"tiny-moe": {
		Name: "tiny-moe", Embd: 128, Layers: 4, FF: 128, Heads: 4, HeadsKV: 2,
		Context: 2048, Experts: 8, ExpertsUsed: 2, RouterSkew: 1.0, RopeBase: 10000, NormEps: 1e-5,
	},
	// bench-dense has the shape of Llama 3.2 1B, its 128,256-token
	// vocabulary included: 16 layers, n_embd 2048, n_ff 8192, 32 query
	// heads sharing 8 KV heads, and a 2048×128,256 output head (written
	// apart from token_embd; Llama 3.2 1B ties the two).
	"bench-dense": {
		Name: "bench-dense", Embd: 2048, Layers: 16, FF: 8192, Heads: 32, HeadsKV: 8,
		Context: 4096, RopeBase: 500000, NormEps: 1e-5, Vocab: VocabLlama3,
	},
	// bench-moe is 6.28 GiB at Q8_0: Llama 3's vocabulary, 16 layers of 64
	// experts, 4 used, each expert 3×2048×896 weights (5.58 MiB at Q8_0),
	// with routing calibrated to published traces of real MoE models.
	"bench-moe": {
		Name: "bench-moe", Embd: 2048, Layers: 16, FF: 896, Heads: 32, HeadsKV: 8,
		Context: 4096, Experts: 64, ExpertsUsed: 4, Router: RouterRealistic, RopeBase: 500000, NormEps: 1e-5,
		Vocab: VocabLlama3,
	},
	// bench-moe-uniform is bench-moe with a near-uniform router, the hard
	// case for paging (GLM-5-class and gpt-oss models route close to
	// uniformly).
	"bench-moe-uniform": {
		Name: "bench-moe-uniform", Embd: 2048, Layers: 16, FF: 896, Heads: 32, HeadsKV: 8,
		Context: 4096, Experts: 64, ExpertsUsed: 4, Router: RouterUniform, RopeBase: 500000, NormEps: 1e-5,
		Vocab: VocabLlama3,
	},
	// bench-moe-wide has few, wide experts: 8 layers of 8 experts, 2 used,
	// each expert 3×2048×5632 weights (Mixtral's ratio of expert width to
	// n_embd), 11.69 MiB a slice at Q8_0, so that a slice holds whole
	// 2 MiB-aligned blocks, as the experts of large real models do.
	"bench-moe-wide": {
		Name: "bench-moe-wide", Embd: 2048, Layers: 8, FF: 5632, Heads: 32, HeadsKV: 8,
		Context: 4096, Experts: 8, ExpertsUsed: 2, Router: RouterRealistic, RopeBase: 500000, NormEps: 1e-5,
		Vocab: VocabLlama3,
	},
	// tiny-qwen3moe is tiny-moe in Qwen3-MoE's layout: per-head QK-norm,
	// expert_feed_forward_length, NEOX RoPE (llama.cpp's choice for the
	// architecture).
	"tiny-qwen3moe": {
		Name: "tiny-qwen3moe", Arch: "qwen3moe", Embd: 128, Layers: 4, FF: 128, Heads: 4, HeadsKV: 2,
		Context: 2048, Experts: 8, ExpertsUsed: 2, RouterSkew: 1.0, RopeBase: 1000000, NormEps: 1e-6,
	},
	// tiny-deepseek has DeepSeekMoE's layout: layer 0 dense (n_ff 256),
	// layers 1-3 with 16 fine-grained experts of n_ff 64, 4 used, plus 2
	// shared experts (one always-on FFN of n_ff 128).
	"tiny-deepseek": {
		Name: "tiny-deepseek", Arch: "deepseek", Embd: 128, Layers: 4, FF: 256, Heads: 4, HeadsKV: 4,
		Context: 2048, Experts: 16, ExpertsUsed: 4, ExpertFF: 64, DenseLayers: 1, SharedExperts: 2,
		RouterSkew: 1.0, RopeBase: 10000, NormEps: 1e-6,
	},
	// tiny-mellum is a llama.cpp v0.5.0 architecture: tiny-qwen3moe's
	// tensors with an 8-token sliding window on layers 0-2 (layer 3 attends
	// to everything), so a short generation already crosses the window.
	"tiny-mellum": {
		Name: "tiny-mellum", Arch: "mellum", Embd: 128, Layers: 4, FF: 128, Heads: 4, HeadsKV: 2,
		Context: 2048, Experts: 8, ExpertsUsed: 2, SlidingWindow: 8, RouterSkew: 1.0, RopeBase: 1000000, NormEps: 1e-6,
	},
}

// Preset returns the named spec (see PresetNames and the package doc).
func Preset(name string) (Spec, error) {
	s, ok := presets[name]
	if !ok {
		return Spec{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownPreset, name, PresetNames())
	}
	return s, nil
}

// PresetNames lists the preset names in order.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HeadDim returns n_embd / n_head.
func (s Spec) HeadDim() int { return s.Embd / s.Heads }

// Architecture returns general.architecture: Arch, or "llama" when empty.
func (s Spec) Architecture() string {
	if s.Arch == "" {
		return "llama"
	}
	return s.Arch
}

// ExpertWidth returns the FFN width of one routed expert: ExpertFF, or FF
// when ExpertFF is 0.
func (s Spec) ExpertWidth() int {
	if s.ExpertFF > 0 {
		return s.ExpertFF
	}
	return s.FF
}

// MoELayers returns, in order, the layers that hold experts (a router and
// stacked ffn_{gate,up,down}_exps tensors): none for a dense model, every
// layer after the DenseLayers leading dense ones otherwise. A paging layer
// offers expert pages for these layers only; the dense layers' FFNs and the
// shared experts are ordinary weights.
func (s Spec) MoELayers() []int {
	if s.Experts == 0 || s.DenseLayers >= s.Layers {
		return nil
	}
	out := make([]int, 0, s.Layers-s.DenseLayers)
	for l := s.DenseLayers; l < s.Layers; l++ {
		out = append(out, l)
	}
	return out
}

// moeLayer reports whether layer l holds experts.
func (s Spec) moeLayer(l int) bool { return s.Experts > 0 && l >= s.DenseLayers }

// Validate checks the shape, that the architecture reads every feature the
// spec uses and has every one it requires, and that every matrix row is
// whole blocks of t.
func (s Spec) Validate(t gguf.Type) error {
	if err := s.validShape(); err != nil {
		return err
	}
	if err := validType(t); err != nil {
		return err
	}
	for _, n := range []int{s.Embd, s.FF, s.ExpertWidth(), s.SharedExperts * s.ExpertWidth()} {
		if uint64(n)%t.BlockSize() != 0 {
			return fmt.Errorf("%w: %s: row length %d is not a multiple of the %v block size %d", ErrSpec, s.Name, n, t, t.BlockSize())
		}
	}
	return nil
}

// validate checks the spec for a file written with opts: Validate(opts.Type)
// for a uniform file; for a mix, the shape alone, since a mix falls back to
// a type that fits any row length, as llama-quantize does.
func (s Spec) validate(opts Options) error {
	switch {
	case opts.Mix == MixUniform:
		return s.Validate(opts.Type)
	case opts.Mix != MixQ4_K_M:
		return fmt.Errorf("%w: %v (known: %s)", ErrType, opts.Mix, MixQ4_K_M)
	case opts.Type != gguf.TypeF32:
		// TypeF32 is the zero value: a Type set alongside a mix would be
		// silently overridden, so it is refused.
		return fmt.Errorf("%w: Type %v with Mix %v: the mix chooses every tensor's type, leave Type zero", ErrType, opts.Type, opts.Mix)
	}
	return s.validShape()
}

// validShape checks the shape, and that the architecture reads every
// feature the spec uses and has every one it requires.
func (s Spec) validShape() error {
	arch, ok := archs[s.Architecture()]
	if !ok {
		return fmt.Errorf("%w %q in %s (known: %v)", ErrArch, s.Arch, s.Name, Architectures())
	}
	switch {
	case s.Embd <= 0 || s.Layers <= 0 || s.FF <= 0 || s.Heads <= 0 || s.HeadsKV <= 0 || s.Context <= 0:
		return fmt.Errorf("%w: %s: sizes must be positive: %+v", ErrSpec, s.Name, s)
	case s.Embd%s.Heads != 0:
		return fmt.Errorf("%w: %s: n_embd %d not divisible by n_head %d", ErrSpec, s.Name, s.Embd, s.Heads)
	case s.Heads%s.HeadsKV != 0:
		return fmt.Errorf("%w: %s: n_head %d not divisible by n_head_kv %d", ErrSpec, s.Name, s.Heads, s.HeadsKV)
	case s.HeadDim()%2 != 0:
		return fmt.Errorf("%w: %s: head dim %d must be even for RoPE", ErrSpec, s.Name, s.HeadDim())
	case s.Experts < 0 || s.Experts > 256 || (s.Experts > 0) != (s.ExpertsUsed > 0) || s.ExpertsUsed > s.Experts:
		return fmt.Errorf("%w: %s: experts %d used %d (need 0 < used <= experts <= 256, or both 0)", ErrSpec, s.Name, s.Experts, s.ExpertsUsed)
	case s.RouterSkew < 0:
		return fmt.Errorf("%w: %s: router skew %g is negative", ErrSpec, s.Name, s.RouterSkew)
	case s.Router != RouterZipf && s.Router != RouterRealistic && s.Router != RouterUniform:
		return fmt.Errorf("%w %q in %s (known: %v)", ErrRouter, string(s.Router), s.Name, Routers())
	case s.Router != RouterZipf && s.Experts == 0:
		return fmt.Errorf("%w: %s: router %s on a dense spec", ErrRouter, s.Name, s.Router)
	case s.Router != RouterZipf && s.RouterSkew != 0:
		return fmt.Errorf("%w: %s: router skew %g with router %s, which is calibrated as a whole (leave RouterSkew 0)", ErrSpec, s.Name, s.RouterSkew, s.Router)
	case s.design() != nil && arch.qkNorm:
		// Per-head RMSNorm of Q and K would undo the context heads' scores.
		return fmt.Errorf("%w: %s: router %s is not designed for architecture %s (QK-norm)", ErrRouter, s.Name, s.Router, s.Architecture())
	case s.design() != nil && !s.ctxKernelSharp():
		return fmt.Errorf("%w: %s: router %s: head dim %d and RoPE base %g give context heads no sharp attention within %d tokens",
			ErrSpec, s.Name, s.Router, s.HeadDim(), s.RopeBase, s.Context)
	case s.design() != nil && (s.HeadsKV < len(s.design().offsets) || s.Embd < 2*s.HeadDim()):
		return fmt.Errorf("%w: %s: router %s needs %d KV heads and n_embd at least twice the head dim, got %d KV heads, n_embd %d, head dim %d",
			ErrSpec, s.Name, s.Router, len(s.design().offsets), s.HeadsKV, s.Embd, s.HeadDim())
	case s.Vocab.size() == 0:
		return fmt.Errorf("%w %q in %s (known: bytes %v)", ErrVocab, string(s.Vocab), s.Name, Vocabularies())
	case s.ExpertFF < 0 || s.DenseLayers < 0 || s.SharedExperts < 0 || s.SlidingWindow < 0:
		return fmt.Errorf("%w: %s: expert ff %d, dense layers %d, shared experts %d, sliding window %d: none may be negative",
			ErrSpec, s.Name, s.ExpertFF, s.DenseLayers, s.SharedExperts, s.SlidingWindow)
	case arch.moe && s.Experts == 0:
		return fmt.Errorf("%w: %s: architecture %s needs experts", ErrSpec, s.Name, s.Architecture())
	case s.ExpertFF > 0 && !arch.expertFF:
		return fmt.Errorf("%w: %s: architecture %s has no expert_feed_forward_length (ExpertFF %d)", ErrSpec, s.Name, s.Architecture(), s.ExpertFF)
	case s.ExpertFF > 0 && s.Experts == 0:
		return fmt.Errorf("%w: %s: ExpertFF %d without experts", ErrSpec, s.Name, s.ExpertFF)
	case s.DenseLayers > 0 && !arch.denseLead:
		return fmt.Errorf("%w: %s: architecture %s has no leading dense layers (DenseLayers %d)", ErrSpec, s.Name, s.Architecture(), s.DenseLayers)
	case s.DenseLayers > 0 && s.DenseLayers >= s.Layers:
		return fmt.Errorf("%w: %s: %d dense layers leave none of %d for experts", ErrSpec, s.Name, s.DenseLayers, s.Layers)
	case s.SharedExperts > 0 && !arch.shared:
		return fmt.Errorf("%w: %s: architecture %s has no shared experts (SharedExperts %d)", ErrSpec, s.Name, s.Architecture(), s.SharedExperts)
	case arch.shared && s.SharedExperts == 0:
		// llama.cpp would create shexp tensors of width 0.
		return fmt.Errorf("%w: %s: architecture %s needs shared experts", ErrSpec, s.Name, s.Architecture())
	case s.SlidingWindow > 0 && !arch.swa:
		return fmt.Errorf("%w: %s: architecture %s has no sliding-window attention (SlidingWindow %d)", ErrSpec, s.Name, s.Architecture(), s.SlidingWindow)
	}
	return nil
}

// Params returns the number of weights of the model the spec describes.
func (s Spec) Params() int64 {
	var n int64
	for _, t := range s.tensors(gguf.TypeF32) {
		n += t.elements()
	}
	return n
}
