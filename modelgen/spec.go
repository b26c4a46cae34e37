package modelgen

import (
	"fmt"
	"sort"

	"github.com/strata-llm/strata/gguf"
)

// Spec is the shape of a generated llama-architecture model.
type Spec struct {
	Name        string
	Embd        int // n_embd
	Layers      int // n_layer (block_count)
	FF          int // n_ff: the FFN width, per expert for MoE models
	Heads       int // n_head
	HeadsKV     int // n_head_kv (GQA when < Heads)
	Context     int // context_length
	Experts     int // n_expert, 0 for dense
	ExpertsUsed int // n_expert_used, 0 for dense
	// RouterSkew is the Zipf exponent s of the expert popularity the router
	// weights induce (see the package doc); 0 gives unstructured random
	// routing. Only meaningful for MoE specs.
	RouterSkew float64
	RopeBase   float32
	NormEps    float32
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
	// bench-dense has the shape of Llama 3.2 1B (without its 128k vocabulary):
	// 16 layers, n_embd 2048, n_ff 8192, 32 query heads sharing 8 KV heads.
	"bench-dense": {
		Name: "bench-dense", Embd: 2048, Layers: 16, FF: 8192, Heads: 32, HeadsKV: 8,
		Context: 4096, RopeBase: 500000, NormEps: 1e-5,
	},
	// bench-moe is ~6.2 GB at Q8_0: 16 layers of 64 experts, 4 used, each
	// expert 3×2048×896 weights (5.85 MiB at Q8_0), routed with Zipf skew.
	"bench-moe": {
		Name: "bench-moe", Embd: 2048, Layers: 16, FF: 896, Heads: 32, HeadsKV: 8,
		Context: 4096, Experts: 64, ExpertsUsed: 4, RouterSkew: 1.1, RopeBase: 500000, NormEps: 1e-5,
	},
}

// Preset returns the named spec: tiny-dense, tiny-moe, bench-dense or
// bench-moe.
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

// Validate checks the shape, and that every matrix row is whole blocks of t.
func (s Spec) Validate(t gguf.Type) error {
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
	}
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0:
	default:
		return fmt.Errorf("%w: %v (want f32, f16, q8_0 or q4_0)", ErrType, t)
	}
	for _, n := range []int{s.Embd, s.FF} {
		if uint64(n)%t.BlockSize() != 0 {
			return fmt.Errorf("%w: %s: row length %d is not a multiple of the %v block size %d", ErrSpec, s.Name, n, t, t.BlockSize())
		}
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
