package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// tinyModel generates a model of the preset in a temporary directory.
func tinyModel(tb testing.TB, preset string) string {
	tb.Helper()
	spec, err := modelgen.Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), preset+".gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 3}); err != nil {
		tb.Fatal(err)
	}
	return path
}

type fixture struct {
	model *llama.Model
	ctx   *llama.Context
	smp   *llama.Sampler
	gen   *engine.Generator
}

func newFixture(tb testing.TB, path string, threads int) *fixture {
	tb.Helper()
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 512, NBatch: 64, Threads: threads})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := engine.NewGenerator(c, s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		g.Close()
		s.Close()
		c.Close()
		m.Close()
	})
	return &fixture{m, c, s, g}
}

func TestGenerate(t *testing.T) {
	f := newFixture(t, tinyModel(t, "tiny-moe"), 1)
	prompt, _ := f.model.Vocab().Tokenize("Once upon a time, in a model far away,", true, false)
	// Longer than NBatch, so Prompt must split it.
	long := slices.Repeat(prompt, 3)

	var got []llama.Token
	st, err := f.gen.Generate(context.Background(), long, 20, func(t llama.Token) bool {
		got = append(got, t)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.PromptTokens != len(long) || st.GenTokens != len(got) {
		t.Errorf("got stats %+v for %d prompt and %d emitted tokens", st, len(long), len(got))
	}
	if st.StopReason == "length" && len(got) != 20 {
		t.Errorf("stop reason length after %d tokens, want 20", len(got))
	}
	if st.Perf.PromptTokens != len(long) || st.Perf.EvalTokens != st.GenDecodes {
		t.Errorf("llama.cpp counted %d prompt and %d eval tokens, want %d and %d", st.Perf.PromptTokens, st.Perf.EvalTokens, len(long), st.GenDecodes)
	}
	if st.GenTokensPerSecond() <= 0 || st.LoopEfficiency() <= 0 {
		t.Errorf("got %v tokens/s and efficiency %v, want > 0", st.GenTokensPerSecond(), st.LoopEfficiency())
	}

	// The same prompt after Reset gives the same tokens (greedy).
	f.gen.Reset()
	var again []llama.Token
	if _, err := f.gen.Generate(context.Background(), long, 20, func(t llama.Token) bool { again = append(again, t); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, again) {
		t.Errorf("after Reset: got %v, want %v", again, got)
	}

	// emit returning false stops.
	f.gen.Reset()
	n := 0
	st, err = f.gen.Generate(context.Background(), prompt, 20, func(llama.Token) bool { n++; return n < 3 })
	if err != nil || st.StopReason != "callback" || n != 3 {
		t.Errorf("callback stop: got %d tokens, reason %q, err %v; want 3, callback, nil", n, st.StopReason, err)
	}
}

func TestGenerateCancelled(t *testing.T) {
	f := newFixture(t, tinyModel(t, "tiny-dense"), 1)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	st, err := f.gen.Generate(ctx, []llama.Token{1, 40, 50}, 100, func(llama.Token) bool {
		n++
		if n == 5 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || st.StopReason != "cancelled" || n != 5 {
		t.Errorf("got err %v, reason %q after %d tokens; want context.Canceled, cancelled, 5", err, st.StopReason, n)
	}
	// Cancelled before the prompt: no decode at all.
	f.gen.Reset()
	if _, err := f.gen.Generate(ctx, []llama.Token{1, 40}, 10, nil); !errors.Is(err, llama.ErrAborted) {
		t.Errorf("cancelled before prompt: got %v, want ErrAborted", err)
	}
}

func TestGeneratePromptErrors(t *testing.T) {
	f := newFixture(t, tinyModel(t, "tiny-dense"), 1)
	if err := f.gen.Prompt(context.Background(), nil); err == nil {
		t.Error("empty prompt: got nil error")
	}
	big := make([]llama.Token, f.ctx.NCtx()+1)
	for i := range big {
		big[i] = 40
	}
	if err := f.gen.Prompt(context.Background(), big); err == nil {
		t.Error("prompt longer than the context: got nil error")
	}
}

// TestNextDoesNotAllocate pins the allocation-free token loop: Next
// samples and decodes with reused C buffers only.
func TestNextDoesNotAllocate(t *testing.T) {
	f := newFixture(t, tinyModel(t, "tiny-dense"), 1)
	if err := f.gen.Prompt(context.Background(), []llama.Token{1, 40, 50}); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, _, err := f.gen.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next: got %v allocations per token, want 0", allocs)
	}
}

// BenchmarkDecodeLoop measures the Go token loop (sample + decode per
// token) against llama.cpp's own counters over the same decodes. The
// model is tiny-dense unless STRATA_BENCH_MODEL names a GGUF file (make
// bench generates bench-dense Q4_0 under models/); STRATA_BENCH_THREADS
// sets the threads (default 2).
func BenchmarkDecodeLoop(b *testing.B) {
	path := os.Getenv("STRATA_BENCH_MODEL")
	if path == "" {
		path = tinyModel(b, "tiny-dense")
	}
	threads := 2
	if v := os.Getenv("STRATA_BENCH_THREADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("STRATA_BENCH_THREADS=%q: want a positive integer", v)
		}
		threads = n
	}
	f := newFixture(b, path, threads)
	prompt := []llama.Token{1, 40, 50, 60}
	warm := func() {
		f.gen.Reset()
		if err := f.gen.Prompt(context.Background(), prompt); err != nil {
			b.Fatal(err)
		}
	}
	warm()
	f.ctx.ResetPerf()
	b.ReportAllocs()
	b.ResetTimer()
	decodes := 0
	for i := 0; i < b.N; i++ {
		if int(f.gen.Pos())+1 >= f.ctx.NCtx() {
			b.StopTimer()
			perf := f.ctx.Perf()
			warm()
			restorePerf(f, perf)
			b.StartTimer()
		}
		if _, eog, err := f.gen.Next(); err != nil {
			b.Fatal(err)
		} else if !eog {
			decodes++
		}
	}
	b.StopTimer()
	goTPS := float64(decodes) / b.Elapsed().Seconds()
	perf := f.ctx.Perf()
	evalMs := perf.EvalMs + savedEvalMs
	evalN := perf.EvalTokens + savedEvalN
	savedEvalMs, savedEvalN = 0, 0
	if evalMs > 0 {
		cTPS := float64(evalN) / (evalMs / 1e3)
		b.ReportMetric(goTPS, "tokens/s")
		b.ReportMetric(cTPS, "llama-tokens/s")
		b.ReportMetric(goTPS/cTPS, "go/c-ratio")
	}
}

// The perf counters are reset by warm(); keep what they held.
var (
	savedEvalMs float64
	savedEvalN  int
)

func restorePerf(f *fixture, p llama.Perf) {
	savedEvalMs += p.EvalMs
	savedEvalN += p.EvalTokens
	f.ctx.ResetPerf()
}
