package llama_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// BenchmarkBatchedDecode measures what batching buys llama.cpp itself on
// this machine: generation steps of 1, 2 and 4 sequences, one token each,
// in one context shaped as the engine shapes a server's (a unified KV
// cache for 4 sequences). Each iteration runs the three widths in turn,
// so they share the machine's weather, and reports each width's aggregate
// tokens/s and its ratio to one sequence's. The ratio is the ceiling for
// what concurrent streams through any server built on this llama.cpp can
// gain over one stream; strata serve's 4-stream figure is judged against
// it. Logits are computed for every token, as a server samples each one.
//
//	STRATA_BENCH_MODEL=$PWD/models/bench-dense-q4_0.gguf go test -run - -bench BatchedDecode -benchtime 3x ./llama/
func BenchmarkBatchedDecode(b *testing.B) {
	path := os.Getenv("STRATA_BENCH_MODEL")
	if path == "" {
		path = testModel(b, "tiny-dense", gguf.TypeQ8_0)
	}
	m := load(b, path, llama.ModelParams{})
	const (
		seqs   = 4
		steps  = 64
		prompt = 8
	)
	c := newContext(b, m, llama.ContextParams{
		NCtx: seqs * (prompt + 2*steps + 16), NBatch: 512, NUbatch: 512, NSeqMax: seqs,
		Threads: runtime.NumCPU(), KVUnified: true,
	})
	batch, err := llama.NewBatch(512, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	toks := make([]llama.Token, prompt)
	for i := range toks {
		toks[i] = llama.Token(10 + i)
	}
	// run prefills n sequences and decodes steps steps of n tokens,
	// returning the time of the steps.
	run := func(n int) time.Duration {
		c.ClearMemory(true)
		batch.Clear()
		for s := range n {
			if err := batch.AddSequence(toks, 0, int32(s)); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Decode(batch); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range steps {
			batch.Clear()
			for s := range n {
				if err := batch.Add(llama.Token(20+i), int32(prompt+i), int32(s), true); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Decode(batch); err != nil {
				b.Fatal(err)
			}
		}
		c.Synchronize()
		return time.Since(start)
	}
	widths := []int{1, 2, seqs}
	for _, n := range widths {
		run(n) // warm up: every width's graph built once
	}
	total := make([]time.Duration, len(widths))
	for b.Loop() {
		for i, n := range widths {
			total[i] += run(n)
		}
	}
	rate := func(i int) float64 {
		return float64(widths[i]*steps*b.N) / total[i].Seconds()
	}
	for i, n := range widths {
		b.ReportMetric(rate(i), fmt.Sprintf("t/s_x%d", n))
		if i > 0 {
			b.ReportMetric(rate(i)/rate(0), fmt.Sprintf("x%d/x1", n))
		}
	}
}
