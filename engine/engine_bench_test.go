package engine_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-llm/strata/bus"
	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

// benchModel is STRATA_BENCH_MODEL (e.g. models/bench-dense-q4_0.gguf,
// for figures that mean something) or a generated tiny model.
func benchModel(b *testing.B) string {
	if p := os.Getenv("STRATA_BENCH_MODEL"); p != "" {
		return p
	}
	return tinyModel(b, "tiny-dense")
}

// generateAll runs req through e, reading every delta, and fails b unless
// it generated req.MaxTokens tokens.
func generateAll(b *testing.B, e *engine.Engine, req engine.Request) engine.Result {
	b.Helper()
	st, err := e.Generate(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	for range st.Deltas() {
	}
	r := st.Result()
	if r.Err != nil || r.CompletionTokens != req.MaxTokens {
		b.Fatalf("%d of %d tokens: %v", r.CompletionTokens, req.MaxTokens, r.Err)
	}
	return r
}

// BenchmarkEngineTokenLoop measures one stream through the Engine, with
// no bus subscriber and with one taking every artifact: tokens/s of the
// token loop and the Go allocations each generated token costs. The
// allocations per token are marginal — a 144-token request's minus a
// 16-token one's, over the 128 tokens between — so the per-request work
// (tokenizing, the sampler, the events) is not charged to tokens.
//
//	STRATA_BENCH_MODEL=models/bench-dense-q4_0.gguf go test -run - -bench TokenLoop -benchtime 3x ./engine/
func BenchmarkEngineTokenLoop(b *testing.B) {
	path := benchModel(b)
	for _, tc := range []struct {
		name string
		sub  bool
	}{{"events=none", false}, {"events=subscriber", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			bs := bus.New()
			var seen atomic.Uint64
			if tc.sub {
				mod := bus.ModuleFuncs{ModuleName: "count", Artifact: func(bus.Artifact) { seen.Add(1) }}
				if _, err := bs.SubscribeArtifact(bus.Prefix(""), mod); err != nil {
					b.Fatal(err)
				}
			}
			e, err := engine.Open(context.Background(), engine.Config{Model: path, Threads: runtime.NumCPU(), ContextSize: 512, Parallel: 1, Bus: bs})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			gen := func(n int) (time.Duration, int) {
				r := generateAll(b, e, engine.Request{Tokens: []llama.Token{1, 2, 3, 4, 5, 6, 7, 8}, MaxTokens: n, IgnoreEOS: true})
				return r.Generation, n - 1
			}
			mallocs := func(n int) uint64 {
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				gen(n)
				runtime.ReadMemStats(&m1)
				return m1.Mallocs - m0.Mallocs
			}
			gen(16) // warm up: graphs built, buffers grown
			var d time.Duration
			toks := 0
			for b.Loop() {
				dd, n := gen(128)
				d += dd
				toks += n
			}
			b.StopTimer()
			b.ReportMetric(float64(toks)/d.Seconds(), "tokens/s")
			short, long := mallocs(16), mallocs(144)
			b.ReportMetric((float64(long)-float64(short))/128, "allocs/tok")
			if tc.sub && seen.Load() == 0 {
				b.Fatal("the subscriber saw no events")
			}
		})
	}
}

// BenchmarkEngineVsLoop puts one stream through the Engine beside the
// bare Generator loop (greedy sample, decode) on the same model and
// threads, a 128-token generation of each in turn per iteration, so
// that both meet the same load on a shared machine. engine/loop is what
// the Engine keeps of the loop's tokens/s: its scheduler, batch, event
// and channel work, and the context it opens for Parallel sequences (one
// KV stream each). strata serve adds HTTP to that. On the 2-core
// development machine, bench-dense Q4_0: 0.91-0.97 (parallel 1) and
// 0.95-0.97 (4), while a CPU profile puts under 0.5% of the time in Go
// code; with GOMAXPROCS=1 (what strata run and serve set when llama.cpp
// takes every core) 1.16-1.21. What separates them is how the reader's
// goroutine and ggml's two threads share two cores, not the engine's work.
//
//	STRATA_BENCH_MODEL=$PWD/models/bench-dense-q4_0.gguf go test -run - -bench EngineVsLoop -benchtime 5x ./engine/
func BenchmarkEngineVsLoop(b *testing.B) {
	path := benchModel(b)
	threads := runtime.NumCPU()
	for _, parallel := range []int{1, 4} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			e, err := engine.Open(context.Background(), engine.Config{Model: path, Threads: threads, ContextSize: 512, Parallel: parallel})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			// The loop runs on the engine's own model: two loads of one
			// file put their repacked weights in different memory, and
			// which one ran faster followed the order they were loaded in
			// (engine/loop 1.11-1.19 one way, 0.82-0.95 the other).
			c, err := llama.NewContext(e.Model(), llama.ContextParams{NCtx: 512, NBatch: 512, Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			smp, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
			if err != nil {
				b.Fatal(err)
			}
			defer smp.Close()
			g, err := engine.NewGenerator(c, smp)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			prompt := []llama.Token{1, 40, 50, 60, 70, 80, 90, 100}
			const n = 128
			viaEngine := func() time.Duration {
				r := generateAll(b, e, engine.Request{Tokens: prompt, MaxTokens: n, IgnoreEOS: true, NoPromptCache: true})
				return r.Generation // the n-1 decodes after the first token
			}
			viaLoop := func() time.Duration {
				g.Reset()
				if err := g.Prompt(context.Background(), prompt); err != nil {
					b.Fatal(err)
				}
				g.Next() // the first token, as the engine's comes with its prompt
				t0 := time.Now()
				for i := 1; i < n; i++ {
					if _, _, err := g.Next(); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(t0)
			}
			viaEngine() // warm up
			viaLoop()
			var de, dl time.Duration
			for b.Loop() {
				de += viaEngine()
				dl += viaLoop()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*(n-1))/de.Seconds(), "engine-tokens/s")
			b.ReportMetric(float64(b.N*(n-1))/dl.Seconds(), "loop-tokens/s")
			b.ReportMetric(dl.Seconds()/de.Seconds(), "engine/loop")
		})
	}
}
