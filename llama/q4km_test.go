package llama_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// TestQ4_K_M loads models modelgen writes with its Q4_K_M mix into
// llama.cpp: a dense one and MoE ones whose rows are whole super-blocks (so
// the K-quants themselves are used, not their fallbacks), one with 8
// experts (attn_output Q5_K, attn_k/attn_v Q8_0), and tiny-moe, whose rows
// of 128 take the Q5_0 and Q5_1 fallbacks. llama.cpp must call each a
// "Q4_K - Medium" file, hold exactly the tensor bytes modelgen planned
// (which it would not if it read any tensor as another type), compute
// logits close to those of the same weights at F32 (which it would not if
// it decoded any block differently from gguf), and generate greedily the
// same varied tokens in two contexts.
func TestQ4_K_M(t *testing.T) {
	base := modelgen.Spec{Name: "q4km-dense", Embd: 256, Layers: 4, FF: 512, Heads: 4, HeadsKV: 2,
		Context: 256, RopeBase: 10000, NormEps: 1e-5}
	moe := base
	moe.Name, moe.Experts, moe.ExpertsUsed, moe.RouterSkew = "q4km-moe", 4, 2, 1
	moe8 := moe
	moe8.Name, moe8.Experts = "q4km-moe8", 8
	tiny, err := modelgen.Preset("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec modelgen.Spec
		// types the mix must have used, so the test covers their decoding
		types []gguf.Type
	}{
		{base, []gguf.Type{gguf.TypeQ4_K, gguf.TypeQ6_K}},
		{moe, []gguf.Type{gguf.TypeQ4_K, gguf.TypeQ6_K}},
		{moe8, []gguf.Type{gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K, gguf.TypeQ8_0}},
		{tiny, []gguf.Type{gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0}},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			dir := t.TempDir()
			opts := modelgen.Options{Mix: modelgen.MixQ4_K_M, Seed: 1}
			path := filepath.Join(dir, "q4_k_m.gguf")
			if err := modelgen.Write(path, tc.spec, opts); err != nil {
				t.Fatal(err)
			}
			tensors, err := modelgen.Tensors(tc.spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			var planned uint64
			used := map[gguf.Type]bool{}
			for _, x := range tensors {
				used[x.Type] = true
				row, _ := x.Type.RowBytes(x.Dims[0])
				rows := uint64(1)
				for _, d := range x.Dims[1:] {
					rows *= d
				}
				planned += row * rows
			}
			for _, typ := range tc.types {
				if !used[typ] {
					t.Errorf("the mix used no %v tensor (used %v)", typ, used)
				}
			}

			m := load(t, path, llama.ModelParams{})
			if got := m.Description(); !strings.HasSuffix(got, " Q4_K - Medium") {
				t.Errorf("description: got %q, want it to end in \" Q4_K - Medium\"", got)
			}
			if got := m.Size(); got != planned {
				t.Errorf("tensor bytes: got %d, want %d as planned", got, planned)
			}

			prompt, err := m.Vocab().Tokenize(archPrompt, true, false)
			if err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(dir, "f32.gguf")
			if err := modelgen.Write(ref, tc.spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			want := promptLogits(t, newContext(t, load(t, ref, llama.ModelParams{}), llama.ContextParams{NCtx: 128}), prompt)
			got := promptLogits(t, newContext(t, m, llama.ContextParams{NCtx: 128}), prompt)
			r := correlation(got, want)
			t.Logf("correlation of the last prompt position's logits with F32's: %.4f", r)
			if r < 0.95 {
				t.Errorf("logits against the same weights at F32: got correlation %.4f, want at least 0.95", r)
			}

			greedyStable(t, m, prompt, 16)
		})
	}
}

// promptLogits decodes prompt in a fresh sequence and returns a copy of the
// logits at its last position.
func promptLogits(tb testing.TB, c *llama.Context, prompt []llama.Token) []float32 {
	tb.Helper()
	b, err := llama.NewBatch(len(prompt), 1)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	c.ClearMemory(true)
	if err := b.AddSequence(prompt, 0, 0); err != nil {
		tb.Fatal(err)
	}
	if err := c.Decode(b); err != nil {
		tb.Fatalf("decode prompt: %v", err)
	}
	l, err := c.Logits(-1)
	if err != nil {
		tb.Fatal(err)
	}
	return slices.Clone(l)
}

// correlation returns Pearson's correlation of a and b.
func correlation(a, b []float32) float64 {
	var ma, mb float64
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := float64(a[i])-ma, float64(b[i])-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	return sab / math.Sqrt(saa*sbb)
}
