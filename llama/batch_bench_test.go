package llama_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/strata-llm/strata/llama"
)

// BenchmarkBatchedDecode measures what batching buys llama.cpp itself on
// this machine: generation steps of 1, 2 and 4 sequences, one token each,
// in a context shaped as the engine shapes a server's (4 sequences, each
// its own KV stream, as llama-server's slots are). Each iteration runs
// the three widths in turn, then 4 sequences in one unified KV cache, so
// that they share the machine's weather. It reports each width's
// aggregate tokens/s and its ratio to one sequence's, the ceiling for
// what concurrent streams through any server built on this llama.cpp can
// gain over one stream (strata serve's 4-stream figure is judged against
// it), and the unified cache against the streams (unified/split): in one
// cache every sequence's attention spans the cells of all four, which
// the 512-token prompts make show. gap/consecutive is four sequences
// with ids 0, 1, 2 and 4 against 0 to 3: llama.cpp decodes only
// consecutive ids of split streams in one pass, which is why the engine
// keeps them so. Logits are computed for every token,
// as a server samples each one.
//
//	STRATA_BENCH_MODEL=$PWD/models/bench-dense-q4_0.gguf go test -run - -bench BatchedDecode -benchtime 3x ./llama/
func BenchmarkBatchedDecode(b *testing.B) {
	m := load(b, benchModel(b), llama.ModelParams{})
	for _, prompt := range []int{8, 512} {
		b.Run(fmt.Sprintf("prompt=%d", prompt), func(b *testing.B) { batchedDecode(b, m, prompt) })
	}
}

// batchedDecode is BenchmarkBatchedDecode with sequences of prompt tokens
// before the steps.
func batchedDecode(b *testing.B, m *llama.Model, prompt int) {
	const (
		seqs  = 4
		steps = 64
	)
	nb := seqs * prompt
	params := llama.ContextParams{
		NCtx: (seqs + 1) * (prompt + 2*steps + 16), NBatch: nb, NUbatch: min(nb, 512), NSeqMax: seqs + 1,
		Threads: runtime.NumCPU(),
	}
	split := newContext(b, m, params) // one stream more, for the gap
	params.NCtx, params.NSeqMax, params.KVUnified = seqs*(prompt+2*steps+16), seqs, true
	unified := newContext(b, m, params)
	batch, err := llama.NewBatch(nb, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer batch.Close()
	toks := make([]llama.Token, prompt)
	for i := range toks {
		toks[i] = llama.Token(10 + i%100)
	}
	// runSeqs prefills the sequences ids and decodes steps steps of a
	// token each, returning the time of the steps.
	runSeqs := func(c *llama.Context, ids []int32) time.Duration {
		c.ClearMemory(true)
		batch.Clear()
		for _, s := range ids {
			if err := batch.AddSequence(toks, 0, s); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Decode(batch); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range steps {
			batch.Clear()
			for _, s := range ids {
				if err := batch.Add(llama.Token(20+i), int32(prompt+i), s, true); err != nil {
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
	seqIDs := []int32{0, 1, 2, 3}
	run := func(c *llama.Context, n int) time.Duration { return runSeqs(c, seqIDs[:n]) } // sequences 0 to n-1
	widths := []int{1, 2, seqs}
	for _, n := range widths {
		run(split, n) // warm up: every width's graph built once
	}
	run(unified, seqs)
	gapIDs := []int32{0, 1, 2, 4}
	runSeqs(split, gapIDs)
	total := make([]time.Duration, len(widths))
	var totalUnified, totalGap time.Duration
	for b.Loop() {
		for i, n := range widths {
			total[i] += run(split, n)
		}
		totalUnified += run(unified, seqs)
		totalGap += runSeqs(split, gapIDs)
	}
	rate := func(n int, d time.Duration) float64 {
		return float64(n*steps*b.N) / d.Seconds()
	}
	for i, n := range widths {
		b.ReportMetric(rate(n, total[i]), fmt.Sprintf("t/s_x%d", n))
		if i > 0 {
			b.ReportMetric(rate(n, total[i])/rate(1, total[0]), fmt.Sprintf("x%d/x1", n))
		}
	}
	b.ReportMetric(rate(seqs, totalUnified)/rate(seqs, total[len(widths)-1]), "unified/split")
	b.ReportMetric(rate(seqs, totalGap)/rate(seqs, total[len(widths)-1]), "gap/consecutive")
}
