package llama_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// TestSamplerFastPaths checks that the greedy and top-k paths, which read
// the logits without llama_sampler_sample, choose what the llama.cpp chain
// chooses: at each step of a generation both sample the same logits, with
// the same seed, and must agree. STRATA_BENCH_MODEL runs it over a real
// vocabulary as well.
func TestSamplerFastPaths(t *testing.T) {
	models := []string{testModel(t, "tiny-dense", gguf.TypeQ8_0)}
	if p := os.Getenv("STRATA_BENCH_MODEL"); p != "" {
		models = append(models, p)
	}
	params := []llama.SamplerParams{
		{Greedy: true},
		{TopK: 1, Temperature: 0.8, Seed: 3},
		{TopK: 40, Temperature: 0.8, Seed: 7},
		{TopK: 40, TopP: 0.95, MinP: 0.05, Temperature: 0.8, Seed: 11},
		{TopK: 200, TopP: 0.9, Temperature: 1.5, Seed: 13},
		{TopK: 100000, Temperature: 1, Seed: 17}, // beyond the fast path's k
	}
	for _, path := range models {
		m := load(t, path, llama.ModelParams{})
		c := newContext(t, m, llama.ContextParams{NCtx: 128, NBatch: 16, Threads: 2})
		batch, err := llama.NewBatch(16, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { batch.Close() })
		for i, p := range params {
			t.Run(fmt.Sprintf("%s/%d", m.Description(), i), func(t *testing.T) {
				fast, err := llama.NewSampler(p)
				if err != nil {
					t.Fatal(err)
				}
				defer fast.Close()
				chain, err := llama.NewSamplerChain(p)
				if err != nil {
					t.Fatal(err)
				}
				defer chain.Close()
				c.ClearMemory(true)
				batch.Clear()
				if err := batch.AddSequence([]llama.Token{1, 20, 30, 40}, 0, 0); err != nil {
					t.Fatal(err)
				}
				if err := c.Decode(batch); err != nil {
					t.Fatal(err)
				}
				for pos := int32(4); pos < 40; pos++ {
					a, err := fast.Sample(c, -1)
					if err != nil {
						t.Fatal(err)
					}
					b, err := chain.Sample(c, -1)
					if err != nil {
						t.Fatal(err)
					}
					if a != b {
						t.Fatalf("%+v: position %d: the fast path chose %d, the chain %d", p, pos, a, b)
					}
					batch.Clear()
					if err := batch.Add(a, pos, 0, true); err != nil {
						t.Fatal(err)
					}
					if err := c.Decode(batch); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}
