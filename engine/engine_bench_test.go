package engine_test

import (
	"context"
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
				st, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 2, 3, 4, 5, 6, 7, 8}, MaxTokens: n, IgnoreEOS: true})
				if err != nil {
					b.Fatal(err)
				}
				for range st.Deltas() {
				}
				r := st.Result()
				if r.Err != nil || r.CompletionTokens != n {
					b.Fatalf("%d of %d tokens: %v", r.CompletionTokens, n, r.Err)
				}
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
