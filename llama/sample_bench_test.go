package llama_test

import (
	"testing"

	"github.com/strata-llm/strata/llama"
)

// BenchmarkSample measures picking one token from a decode's logits, which
// a generating loop pays once per token outside llama_decode: over a real
// vocabulary (bench-dense has Llama 3's 128,256 tokens) it is what
// separates a fast GPU's tokens/s from the decode's own. "fast" is
// NewSampler, "chain" the same stages as one llama.cpp chain, as
// llama-server samples.
//
//	STRATA_BENCH_MODEL=$PWD/models/bench-dense-q4_0.gguf go test -run - -bench Sample ./llama/
func BenchmarkSample(b *testing.B) {
	m := load(b, benchModel(b), llama.ModelParams{})
	c := newContext(b, m, llama.ContextParams{NCtx: 64, NBatch: 8, Threads: 2})
	batch, err := llama.NewBatch(1, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	if err := batch.Add(1, 0, 0, true); err != nil {
		b.Fatal(err)
	}
	if err := c.Decode(batch); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		p    llama.SamplerParams
	}{
		{"greedy", llama.SamplerParams{Greedy: true}},
		{"top-k=40,top-p=0.95,min-p=0.05,temp=0.8", llama.SamplerParams{TopK: 40, TopP: 0.95, MinP: 0.05, Temperature: 0.8, Seed: 1}},
		{"temp=1", llama.SamplerParams{Temperature: 1, Seed: 1}}, // every token a candidate: no fast path
	} {
		for _, path := range []struct {
			name string
			new  func(llama.SamplerParams) (*llama.Sampler, error)
		}{{"fast", llama.NewSampler}, {"chain", llama.NewSamplerChain}} {
			b.Run(tt.name+"/"+path.name, func(b *testing.B) {
				s, err := path.new(tt.p)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.ReportMetric(float64(m.Vocab().Size()), "vocab")
				for b.Loop() {
					if _, err := s.Sample(c, -1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
