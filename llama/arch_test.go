package llama_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// archPresets are the generated models of architectures other than llama:
// two real MoE layouts (qwen3moe; deepseek with a dense leading layer and
// shared experts) and mellum, an architecture only llama.cpp v0.5.0 knows.
var archPresets = []string{"tiny-qwen3moe", "tiny-deepseek", "tiny-mellum"}

// archPrompt is longer than tiny-mellum's 8-token sliding window.
const archPrompt = "The quick brown fox jumps over"

// TestArchLoad checks that llama.cpp builds each preset under its own
// architecture with the shape modelgen wrote.
func TestArchLoad(t *testing.T) {
	for _, preset := range archPresets {
		t.Run(preset, func(t *testing.T) {
			spec, err := modelgen.Preset(preset)
			if err != nil {
				t.Fatal(err)
			}
			m := load(t, testModel(t, preset, gguf.TypeQ8_0), llama.ModelParams{})
			arch := spec.Architecture()
			if got := m.Architecture(); got != arch {
				t.Errorf("architecture: got %q, want %q", got, arch)
			}
			if got := m.Description(); !strings.HasPrefix(got, arch+" ") {
				t.Errorf("description: got %q, want it to start with %q", got, arch+" ")
			}
			for _, c := range []struct {
				name      string
				got, want int
			}{
				{"layers", m.Layers(), spec.Layers},
				{"n_embd", m.EmbeddingSize(), spec.Embd},
				{"heads", m.Heads(), spec.Heads},
				{"kv heads", m.HeadsKV(), spec.HeadsKV},
				{"experts", m.ExpertCount(), spec.Experts},
				{"experts used", m.ExpertUsed(), spec.ExpertsUsed},
				{"params", int(m.ParamCount()), int(spec.Params())},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
				}
			}
			for key, want := range map[string]int{
				"expert_feed_forward_length": spec.ExpertWidth(),
				"leading_dense_block_count":  spec.DenseLayers,
				"expert_shared_count":        spec.SharedExperts,
				"attention.sliding_window":   spec.SlidingWindow,
			} {
				v, ok := m.Meta(arch + "." + key)
				if want == 0 && !ok {
					continue
				}
				if v != fmt.Sprint(want) {
					t.Errorf("%s.%s: got %q (present %v), want %d", arch, key, v, ok, want)
				}
			}
		})
	}
}

// TestArchGreedy generates greedily on each preset in two contexts: the
// tokens must be the same, and varied (random weights still give a live
// model, not NaN logits, which greedy-sample token 0 forever).
func TestArchGreedy(t *testing.T) {
	for _, preset := range archPresets {
		t.Run(preset, func(t *testing.T) {
			m := load(t, testModel(t, preset, gguf.TypeQ8_0), llama.ModelParams{})
			prompt, err := m.Vocab().Tokenize(archPrompt, true, false)
			if err != nil {
				t.Fatal(err)
			}
			a := greedyStable(t, m, prompt, 16)
			t.Logf("%s: %v", preset, a)
		})
	}
}

// TestArchExpertLayers watches the router through the eval callback: routed
// experts appear in exactly the layers modelgen.Spec.MoELayers names (not in
// tiny-deepseek's dense layer 0, whose FFN, like the shared experts, is no
// expert), each token getting ExpertsUsed distinct valid ids.
func TestArchExpertLayers(t *testing.T) {
	for _, preset := range archPresets {
		t.Run(preset, func(t *testing.T) {
			spec, _ := modelgen.Preset(preset)
			m := load(t, testModel(t, preset, gguf.TypeQ8_0), llama.ModelParams{})
			var layers []int
			c := newContext(t, m, llama.ContextParams{NCtx: 128, Observer: &llama.Observer{
				Prefixes: []string{"ffn_moe_topk"},
				Func: func(tn *llama.Tensor) bool {
					layers = append(layers, tn.Layer())
					ids, err := tn.Int32s()
					if err != nil {
						t.Errorf("Int32s(%s): %v", tn.Name(), err)
						return true
					}
					if sh := tn.Shape(); sh[0] != int64(spec.ExpertsUsed) || len(ids) != int(sh[0]*sh[1]) {
						t.Errorf("%s: got shape %v and %d ids, want %d ids per token", tn.Name(), sh, len(ids), spec.ExpertsUsed)
						return true
					}
					for tok := 0; tok+spec.ExpertsUsed <= len(ids); tok += spec.ExpertsUsed {
						row := ids[tok : tok+spec.ExpertsUsed]
						for j, id := range row {
							if id < 0 || int(id) >= spec.Experts || slices.Contains(row[:j], id) {
								t.Errorf("%s token %d: got experts %v, want %d distinct ids in [0, %d)", tn.Name(), tok/spec.ExpertsUsed, row, spec.ExpertsUsed, spec.Experts)
								break
							}
						}
					}
					return true
				},
			}})
			want := spec.MoELayers()
			if spec.DenseLayers > 0 && slices.Contains(want, 0) {
				t.Fatalf("MoELayers() = %v includes dense layer 0", want)
			}
			prompt, err := m.Vocab().Tokenize(archPrompt, true, false)
			if err != nil {
				t.Fatal(err)
			}
			greedy(t, c, prompt, 3) // one prompt decode, then three single-token decodes
			if len(layers) != 4*len(want) {
				t.Fatalf("got ffn_moe_topk in layers %v over 4 decodes, want %v each time", layers, want)
			}
			for d := 0; d < 4; d++ {
				if got := layers[d*len(want) : (d+1)*len(want)]; !slices.Equal(got, want) {
					t.Errorf("decode %d: got ffn_moe_topk in layers %v, want %v", d, got, want)
				}
			}
		})
	}
}

// TestArchSlidingWindow checks that llama.cpp honours tiny-mellum's sliding
// window: the same weights without attention.sliding_window give the same
// logits while the prompt fits in the window and different ones once it
// does not.
func TestArchSlidingWindow(t *testing.T) {
	spec, _ := modelgen.Preset("tiny-mellum")
	full := spec
	full.Name, full.SlidingWindow = "tiny-mellum-full", 0
	dir := t.TempDir()
	var models [2]*llama.Model
	for i, s := range []modelgen.Spec{spec, full} {
		path := filepath.Join(dir, s.Name+".gguf")
		if err := modelgen.Write(path, s, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		models[i] = load(t, path, llama.ModelParams{})
	}
	if _, ok := models[1].Meta("mellum.attention.sliding_window"); ok {
		t.Fatal("model without a window: got attention.sliding_window, want none")
	}
	// maxDiff decodes tokens in a fresh context of each model and returns
	// the largest difference between the two last-token logits.
	maxDiff := func(tokens []llama.Token) float64 {
		var logits [2][]float32
		for i, m := range models {
			c := newContext(t, m, llama.ContextParams{NCtx: 128})
			b, err := llama.NewBatch(len(tokens), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.AddSequence(tokens, 0, 0); err != nil {
				t.Fatal(err)
			}
			if err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
			l, err := c.Logits(-1)
			if err != nil {
				t.Fatal(err)
			}
			logits[i] = slices.Clone(l)
		}
		var d float64
		for j := range logits[0] {
			d = max(d, math.Abs(float64(logits[0][j]-logits[1][j])))
		}
		return d
	}
	tokens, err := models[0].Vocab().Tokenize(archPrompt+" the lazy dog", true, false)
	if err != nil {
		t.Fatal(err)
	}
	w := spec.SlidingWindow
	if len(tokens) < 2*w {
		t.Fatalf("prompt of %d tokens, want at least %d", len(tokens), 2*w)
	}
	in, past := maxDiff(tokens[:w]), maxDiff(tokens)
	t.Logf("largest logit difference with and without the window: %g for %d tokens, %g for %d", in, w, past, len(tokens))
	if in > 1e-3 {
		t.Errorf("%d tokens (within the window): logits differ by %g, want equal", w, in)
	}
	if past < 1e-2 {
		t.Errorf("%d tokens (past the window of %d): logits differ by %g, want a clear difference", len(tokens), w, past)
	}
}
