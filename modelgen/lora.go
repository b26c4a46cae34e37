package modelgen

import (
	"fmt"

	"github.com/strata-llm/strata/gguf"
)

// LoRATargets are the model tensors the generated adapter modifies.
var LoRATargets = []string{"attn_q", "attn_v"}

// WriteLoRA writes a LoRA adapter for the model spec describes, atomically
// like Write. For every layer and target W of shape [n_in, n_out] it holds
// W.lora_a of shape [n_in, rank] and W.lora_b of shape [rank, n_out] (ggml
// order), as llama-adapter.cpp expects, both F32 and both non-zero, with
// adapter.lora.alpha = rank so the scale alpha/rank is 1: the update B·A·x
// has about half the magnitude of W·x, enough to change the logits.
// opts.Type is ignored; opts.Seed selects the weights.
func WriteLoRA(path string, spec Spec, opts Options, rank int) error {
	if err := spec.Validate(gguf.TypeF32); err != nil {
		return err
	}
	if rank <= 0 || rank > spec.Embd {
		return fmt.Errorf("%w: lora rank %d, want 1..%d", ErrSpec, rank, spec.Embd)
	}
	w := &gguf.Writer{}
	for _, kv := range []gguf.KV{
		{Key: "general.architecture", Value: spec.Architecture()},
		{Key: "general.type", Value: "adapter"},
		{Key: "general.name", Value: fmt.Sprintf("strata-%s-lora-r%d", spec.Name, rank)},
		{Key: "adapter.type", Value: "lora"},
		{Key: "adapter.lora.alpha", Value: float32(rank)},
		{Key: "strata.seed", Value: opts.Seed},
	} {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	n, r := uint64(spec.Embd), uint64(rank)
	out := map[string]uint64{"attn_q": n, "attn_k": uint64(spec.HeadsKV * spec.HeadDim()), "attn_v": uint64(spec.HeadsKV * spec.HeadDim()), "attn_output": n}
	var plans []plan
	for l := 0; l < spec.Layers; l++ {
		for _, t := range LoRATargets {
			base := fmt.Sprintf("blk.%d.%s.weight", l, t)
			plans = append(plans,
				plan{name: base + ".lora_a", typ: gguf.TypeF32, dims: []uint64{n, r}, std: invSqrt(spec.Embd)},
				plan{name: base + ".lora_b", typ: gguf.TypeF32, dims: []uint64{r, out[t]}, std: 0.5 * invSqrt(rank)},
			)
		}
	}
	for _, p := range plans {
		if err := w.AddTensor(p.name, p.typ, p.dims...); err != nil {
			return err
		}
	}
	g := newGenerator(spec, Options{Seed: opts.Seed ^ 0x4c6f5241, Workers: opts.Workers}, plans)
	return writeAtomic(path, w, g.data, opts.Progress)
}
