package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// expertBytes sums the bytes of every expert of the GGUF at path.
func expertBytes(tb testing.TB, path string) (sum int64, experts, used int) {
	tb.Helper()
	info, err := gguf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	for l := range info.BlockCount() {
		for e := range info.ExpertCount() {
			rs, _ := info.ExpertRanges(l, e)
			for _, r := range rs {
				sum += int64(r.Len)
			}
		}
	}
	return sum, info.ExpertCount(), info.ExpertUsedCount()
}

// goroutinesSettle waits until the goroutine count is at most want, and
// returns the last count seen.
func goroutinesSettle(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestPrefetch decodes greedily on tiny-moe under a budget of two thirds
// of its experts, without and with prefetch: the tokens are the same, the
// prediction's recall beats a random guess of as many experts, reads were
// issued off the decoding goroutine, and Close stops the readers.
func TestPrefetch(t *testing.T) {
	path := tinyModel(t, "tiny-moe")
	total, experts, used := expertBytes(t, path)
	m, err := llama.LoadModel(path, engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt, _ := m.Vocab().Tokenize("The experts of the next layer, read ahead.", true, false)
	ctx := context.Background()

	off, err := engine.NewBudget(ctx, m, total*2/3)
	if err != nil {
		t.Fatal(err)
	}
	if off.Prefetch != nil || off.Pager.Prefetcher() != nil {
		t.Error("NewBudget: got a Prefetcher, want none by default")
	}
	want := generateGreedy(t, m, off.Pager.Observer(), prompt, 48, nil)
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}

	before := goroutinesSettle(0)
	on, err := engine.NewBudgetWith(ctx, m, total*2/3, engine.BudgetOptions{Prefetch: true, PrefetchReaders: 3})
	if err != nil {
		t.Fatal(err)
	}
	pf := on.Prefetch
	if pf == nil || on.Pager.Prefetcher() != pf {
		t.Fatal("NewBudgetWith(Prefetch): no Prefetcher")
	}
	if n := runtime.NumGoroutine(); n < before+3 {
		t.Errorf("got %d goroutines with 3 readers, had %d before", n, before)
	}
	got := generateGreedy(t, m, on.Pager.Observer(), prompt, 48, nil)
	if err := on.Pager.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("tokens with prefetch differ:\n got %v\nwant %v", got, want)
	}
	st := pf.Stats()
	chance := float64(used) / float64(experts)
	t.Logf("recall %.3f (chance %.3f), precision %.3f over %d layer routings; %d reads queued, %d done (%d bytes), %d resident, %d queue full, %d skipped batches, %d wrong guesses dropped, %d stale reads skipped, %d errors, %d fanned out",
		st.Recall(), chance, st.Precision(), st.Layers, st.Queued, st.Read, st.BytesRead, st.Resident, st.Full, st.Skipped, st.Dropped, st.Stale, st.Errors, st.FannedOut)
	if st.Layers == 0 || st.Actual == 0 {
		t.Fatalf("no prediction was scored: %+v", st)
	}
	if st.Recall() <= chance {
		t.Errorf("recall %.3f, want more than chance %.3f", st.Recall(), chance)
	}
	if st.Skipped == 0 {
		t.Error("the prompt's batch was predicted; want it skipped (more than MaxPredictRows tokens)")
	}
	if st.Queued == 0 {
		t.Errorf("no read queued under a budget below the experts: %+v", st)
	}
	// The prompt's batch is not predicted, and its first layer routes to
	// several experts, all cold: the decode reads one, the pool the rest.
	if st.FannedOut == 0 {
		t.Errorf("no routed expert read beside the decode's own: %+v", st)
	}
	if st.Errors != 0 {
		t.Errorf("got %d read errors", st.Errors)
	}
	if d := st.Sub(st); d != (engine.PrefetchStats{}) || d.Recall() != 0 {
		t.Errorf("Sub of itself: got %+v", d)
	}

	if err := on.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pf.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := goroutinesSettle(before); n > before {
		t.Errorf("after Close: %d goroutines, want %d (a reader or the genome's event goroutine leaked)", n, before)
	}
}

// smallMoE is the model BenchmarkPrefetch runs by default: larger experts
// than tiny-moe's, so that reading them costs something, yet generated in
// seconds. STRATA_BENCH_MOE names another.
func smallMoE(b *testing.B) string {
	if p := os.Getenv("STRATA_BENCH_MOE"); p != "" {
		return p
	}
	spec, err := modelgen.Preset("tiny-moe")
	if err != nil {
		b.Fatal(err)
	}
	spec.Name, spec.Embd, spec.FF, spec.Layers, spec.Heads, spec.HeadsKV = "small-moe", 512, 768, 8, 8, 4
	spec.Experts, spec.ExpertsUsed = 32, 4
	path := filepath.Join(b.TempDir(), "small-moe.gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPrefetch decodes greedily under a budget of a quarter and an
// eighth of the experts (the genome evicts to Cold, which drops the bytes
// from the page cache, so a fault from Cold reads the file), with and
// without prefetch, and reports tokens/s, the faults from Cold per token
// (the expert reads prefetch can overlap), the prediction's recall and the
// allocations per token of the whole decode (llama.cpp's Go side
// included), with the genome's pprof profiles on (NewBudget's default)
// and off. Each iteration decodes 32 tokens after the prompt, on one
// thread: ggml's spinning thread pool makes a loaded 2-core machine's
// figures meaningless.
//
//	go test -run - -bench Prefetch -benchtime 5x ./engine/
func BenchmarkPrefetch(b *testing.B) {
	path := smallMoE(b)
	total, _, _ := expertBytes(b, path)
	m, err := llama.LoadModel(path, engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	prompt, _ := m.Vocab().Tokenize("Experts are read one layer ahead of their router.", true, false)
	const n = 32
	type variant struct {
		name string
		div  int64 // budget: the experts' bytes / div
		opt  engine.BudgetOptions
	}
	var variants []variant
	for _, div := range []int64{4, 8} {
		variants = append(variants,
			variant{"profiles=on/prefetch=off", div, engine.BudgetOptions{}}, // NewBudget's
			variant{"profiles=off/prefetch=off", div, engine.BudgetOptions{NoProfiles: true}},
			variant{"profiles=off/prefetch=on", div, engine.BudgetOptions{NoProfiles: true, Prefetch: true}})
	}
	for _, tc := range variants {
		b.Run(fmt.Sprintf("budget=1|%d/%s", tc.div, tc.name), func(b *testing.B) {
			bud, err := engine.NewBudgetWith(context.Background(), m, total/tc.div, tc.opt)
			if err != nil {
				b.Fatal(err)
			}
			defer bud.Close()
			c, err := llama.NewContext(m, llama.ContextParams{NCtx: 256, Threads: 1, Observer: bud.Pager.Observer()})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s, _ := llama.NewSampler(llama.SamplerParams{Greedy: true})
			defer s.Close()
			g, err := engine.NewGenerator(c, s)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			run := func(tokens int) engine.Stats {
				g.Reset()
				st, err := g.Generate(context.Background(), prompt, tokens, func(llama.Token) bool { return true })
				if err != nil {
					b.Fatal(err)
				}
				return st
			}
			run(4) // warm up: graphs built, buffers grown
			gm0, pf0 := bud.Genome.Stats(), stats(bud.Prefetch)
			var gen time.Duration
			toks := 0
			var mallocs uint64
			var ms0, ms1 runtime.MemStats
			b.ReportAllocs()
			for b.Loop() {
				runtime.ReadMemStats(&ms0)
				st := run(n)
				runtime.ReadMemStats(&ms1)
				mallocs += ms1.Mallocs - ms0.Mallocs
				gen += st.GenTime
				toks += st.GenDecodes
			}
			b.StopTimer()
			if err := bud.Pager.Err(); err != nil {
				b.Fatal(err)
			}
			gm := bud.Genome.Stats()
			disk := gm.Faults[genome.TierCold] + gm.Faults[genome.TierNone] - gm0.Faults[genome.TierCold] - gm0.Faults[genome.TierNone]
			b.ReportMetric(float64(toks)/gen.Seconds(), "tokens/s")
			b.ReportMetric(float64(disk)/float64(max(1, toks)), "cold-faults/tok")
			b.ReportMetric(float64(mallocs)/float64(max(1, toks)), "mallocs/tok")
			if bud.Prefetch != nil {
				st := stats(bud.Prefetch).Sub(pf0)
				b.ReportMetric(st.Recall(), "recall")
				b.ReportMetric(float64(st.BytesRead)/float64(max(1, toks))/(1<<20), "prefetch-MiB/tok")
			}
		})
	}
}

// stats is p.Stats, zero for no Prefetcher.
func stats(p *engine.Prefetcher) engine.PrefetchStats {
	if p == nil {
		return engine.PrefetchStats{}
	}
	return p.Stats()
}
