package llama

import (
	"fmt"
	"strings"

	"github.com/strata-llm/strata/gguf"
)

// maxExperts and maxLayers are LLAMA_MAX_EXPERTS and LLAMA_MAX_LAYERS in
// third_party/llama.cpp/src/llama-hparams.h.
const (
	maxExperts = 1024
	maxLayers  = 512
)

// Validate checks an opened GGUF file for what llama.cpp's loader cannot
// survive, before LoadModel hands the file to llama.cpp (and for `strata
// inspect`, so that a file the loader refuses is never reported as fine).
// llama.cpp reports most problems as exceptions, which become errors, but
// some it asserts on and so kills the process: a zero-length key or tensor
// name in its GGUF reader, an array of the wrong element type where it
// expects integers or strings, layer and expert counts it cannot handle.
// Each rule here mirrors one such assertion of the vendored release; a
// file that breaks one is refused with an error that names the key.
func Validate(f *gguf.File) error {
	path := f.Path
	// An adapter has no hyperparameters of its own; llama.cpp fails on
	// the first one it misses, which says nothing of why.
	if t, _ := f.String("general.type"); t == "adapter" {
		kind, _ := f.String("adapter.type")
		return fmt.Errorf("llama: %s is an adapter (%s), not a model: load it beside its base model (strata run/serve -lora, Model.LoadAdapter)", path, orDefault(kind, "general.type adapter"))
	}
	// The gguf reader already refuses what llama.cpp's gguf reader asserts
	// on (empty or duplicate keys and tensor names, a bad alignment); the
	// rules below are about what llama.cpp's model loader asserts on.
	for _, t := range f.Tensors {
		// A zero extent passes llama.cpp's shape checks in places and
		// then trips ggml's asserts (ggml_mul_mat_id on an empty expert
		// tensor); no model has one.
		for i, d := range t.Dims {
			if d == 0 {
				return fmt.Errorf("llama: %s: tensor %q has extent 0 in dimension %d", path, t.Name, i)
			}
		}
	}

	// Arrays llama.cpp reads with fixed element types (get_arr asserts).
	// intArray stands for int32 or uint32, which llama.cpp accepts alike.
	const intArray = gguf.ValueInt32
	arrays := map[string]gguf.ValueType{
		"tokenizer.ggml.tokens":     gguf.ValueString,
		"tokenizer.ggml.merges":     gguf.ValueString,
		"tokenizer.ggml.scores":     gguf.ValueFloat32,
		"tokenizer.ggml.token_type": intArray,
	}
	arch := f.Architecture()
	if arch != "" {
		for _, k := range []string{"attention.head_count", "attention.head_count_kv", "feed_forward_length", "rope.dimension_sections", "attention.sliding_window_pattern"} {
			arrays[arch+"."+k] = intArray
		}
	}
	nTokens := -1
	for _, kv := range f.KV {
		elem, n, isArr := gguf.ArrayOf(kv.Value)
		if elem == gguf.ValueUint32 {
			elem = intArray
		}
		want, ok := arrays[kv.Key]
		if !ok {
			readable := elem == intArray || elem == gguf.ValueFloat32 || elem == gguf.ValueString
			if isArr && !readable && (strings.HasPrefix(kv.Key, "tokenizer.") || strings.HasPrefix(kv.Key, arch+".")) {
				return fmt.Errorf("llama: %s: metadata %q is an array of %T, which llama.cpp cannot read", path, kv.Key, kv.Value)
			}
			continue
		}
		if !isArr && want == intArray && strings.HasPrefix(kv.Key, arch+".") {
			continue // a scalar where an array may stand
		}
		if !isArr || elem != want {
			name := want.String()
			if want == intArray {
				name = "int32 or uint32"
			}
			return fmt.Errorf("llama: %s: metadata %q must be an array of %s, got %T", path, kv.Key, name, kv.Value)
		}
		if kv.Key == "tokenizer.ggml.tokens" {
			nTokens = n
			// llama_vocab::load asserts a one-to-one token/id map.
			uniq := make(map[string]struct{}, n)
			for i, tok := range kv.Value.([]string) {
				if _, dup := uniq[tok]; dup {
					return fmt.Errorf("llama: %s: token %d %q appears twice in tokenizer.ggml.tokens", path, i, tok)
				}
				uniq[tok] = struct{}{}
			}
		}
	}
	if nTokens >= 0 {
		for _, k := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.token_type"} {
			if v, ok := f.Value(k); ok {
				if _, n, _ := gguf.ArrayOf(v); n != nTokens {
					return fmt.Errorf("llama: %s: metadata %q has %d entries for %d tokens", path, k, n, nTokens)
				}
			}
		}
	}

	// Layer and expert counts (llama_model::load_hparams asserts).
	if arch != "" {
		if n, ok := f.Uint(arch + ".block_count"); ok && (n == 0 || n > maxLayers) {
			return fmt.Errorf("llama: %s: %s.block_count %d is outside llama.cpp's range 1..%d", path, arch, n, maxLayers)
		}
		if n, ok := f.Uint(arch + ".nextn_predict_layers"); ok {
			if nl, _ := f.Uint(arch + ".block_count"); n > nl {
				return fmt.Errorf("llama: %s: %s.nextn_predict_layers %d exceeds block_count %d", path, arch, n, nl)
			}
		}
		nExp, hasExp := f.Uint(arch + ".expert_count")
		nUsed := maxUint(f, arch+".expert_used_count")
		nGroups, _ := f.Uint(arch + ".expert_group_count")
		nGroupUsed, _ := f.Uint(arch + ".expert_group_used_count")
		switch {
		case nExp > maxExperts:
			return fmt.Errorf("llama: %s: %s.expert_count %d exceeds llama.cpp's limit %d", path, arch, nExp, maxExperts)
		case nUsed > nExp:
			return fmt.Errorf("llama: %s: %s.expert_used_count %d exceeds expert_count %d", path, arch, nUsed, nExp)
		case hasExp && nExp > 0 && nUsed == 0:
			return fmt.Errorf("llama: %s: %s.expert_count is %d but expert_used_count is 0", path, arch, nExp)
		case nExp > 0 && nGroups >= nExp:
			return fmt.Errorf("llama: %s: %s.expert_group_count %d must be below expert_count %d", path, arch, nGroups, nExp)
		case nExp > 0 && nGroups > 1 && (nExp%nGroups != 0 || nGroupUsed == 0 || nGroupUsed >= nGroups):
			return fmt.Errorf("llama: %s: %s expert groups (%d, %d used) do not divide %d experts", path, arch, nGroups, nGroupUsed, nExp)
		case nExp == 0 && (nGroups != 0):
			return fmt.Errorf("llama: %s: %s.expert_group_count %d without experts", path, arch, nGroups)
		}
	}
	return nil
}

// maxUint is the largest value of an unsigned key that may be a scalar or
// a per-layer array (llama.cpp's get_key_or_arr), 0 when absent.
func maxUint(f *gguf.File, key string) uint64 {
	if n, ok := f.Uint(key); ok {
		return n
	}
	v, ok := f.Value(key)
	if !ok {
		return 0
	}
	var m uint64
	switch a := v.(type) {
	case []uint32:
		for _, x := range a {
			m = max(m, uint64(x))
		}
	case []int32:
		for _, x := range a {
			m = max(m, uint64(max(x, 0)))
		}
	}
	return m
}
