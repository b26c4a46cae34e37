package llama

import (
	"fmt"
	"strings"

	"github.com/strata-llm/strata/gguf"
)

// maxExperts is LLAMA_MAX_EXPERTS in llama-hparams.h.
const maxExperts = 512

// validateFile checks a model file before llama.cpp reads it. llama.cpp
// reports most problems as exceptions, which become errors, but some it
// asserts on and so kills the process: a zero-length key or tensor name in
// its GGUF reader, an array of the wrong element type where it expects
// integers or strings, expert counts it cannot handle. Each rule here
// mirrors one such assertion at the pinned commit; a file that breaks one
// is refused with an error that names the key.
func validateFile(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
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
	arrays := map[string]string{
		"tokenizer.ggml.tokens":     "string",
		"tokenizer.ggml.merges":     "string",
		"tokenizer.ggml.scores":     "float32",
		"tokenizer.ggml.token_type": "int",
	}
	arch := f.Architecture()
	if arch != "" {
		for _, k := range []string{"attention.head_count", "attention.head_count_kv", "feed_forward_length", "rope.dimension_sections", "attention.sliding_window_pattern"} {
			arrays[arch+"."+k] = "int"
		}
	}
	nTokens := -1
	for _, kv := range f.KV {
		want, ok := arrays[kv.Key]
		if !ok {
			if strings.HasPrefix(kv.Key, "tokenizer.") || strings.HasPrefix(kv.Key, arch+".") {
				if _, isArr := arrayLen(kv.Value); isArr && !scalarArray(kv.Value) {
					return fmt.Errorf("llama: %s: metadata %q is an array of %T, which llama.cpp cannot read", path, kv.Key, kv.Value)
				}
			}
			continue
		}
		n, isArr := arrayLen(kv.Value)
		if !isArr {
			if want == "int" && strings.HasPrefix(kv.Key, arch+".") {
				continue // a scalar where an array may stand
			}
			return fmt.Errorf("llama: %s: metadata %q must be an array of %s, got %T", path, kv.Key, want, kv.Value)
		}
		if !elemIs(kv.Value, want) {
			return fmt.Errorf("llama: %s: metadata %q must be an array of %s, got %T", path, kv.Key, want, kv.Value)
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
				if n, _ := arrayLen(v); n != nTokens {
					return fmt.Errorf("llama: %s: metadata %q has %d entries for %d tokens", path, k, n, nTokens)
				}
			}
		}
	}

	// Expert counts (llama_model::load_hparams asserts).
	if arch != "" {
		nExp, hasExp := uintKey(f, arch+".expert_count")
		nUsed, _ := uintKey(f, arch+".expert_used_count")
		nGroups, _ := uintKey(f, arch+".expert_group_count")
		nGroupUsed, _ := uintKey(f, arch+".expert_group_used_count")
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

// uintKey reads an integer key of any width; ok is false when absent or
// not an integer.
func uintKey(f *gguf.File, key string) (uint64, bool) {
	return f.Uint(key)
}

func arrayLen(v any) (int, bool) {
	switch a := v.(type) {
	case []uint8:
		return len(a), true
	case []int8:
		return len(a), true
	case []uint16:
		return len(a), true
	case []int16:
		return len(a), true
	case []uint32:
		return len(a), true
	case []int32:
		return len(a), true
	case []uint64:
		return len(a), true
	case []int64:
		return len(a), true
	case []float32:
		return len(a), true
	case []float64:
		return len(a), true
	case []bool:
		return len(a), true
	case []string:
		return len(a), true
	}
	return 0, false
}

// scalarArray reports arrays llama.cpp's get_arr accepts at all.
func scalarArray(v any) bool {
	switch v.(type) {
	case []uint32, []int32, []float32, []string:
		return true
	}
	return false
}

func elemIs(v any, want string) bool {
	switch want {
	case "string":
		_, ok := v.([]string)
		return ok
	case "float32":
		_, ok := v.([]float32)
		return ok
	case "int":
		switch v.(type) {
		case []int32, []uint32:
			return true
		}
	}
	return false
}
