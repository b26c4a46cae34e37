package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-llm/strata/audit"
	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/llama"
)

// BenchmarkSoak runs b.N greedy requests on four workers that share one
// model and one expert Budget (a third of the experts fit), each worker
// with its own context; every third request is cancelled after a few
// tokens, and a rogue persona keeps asking the genome for experts it may
// not read. It checks what a long run must keep:
//   - no lost or duplicated tokens: every finished request equals the
//     serial run of its prompt, every cancelled one is a prefix of it;
//   - no leak: the C heap and the Go heap after the run are within a
//     bound of where they were after the warm-up;
//   - every denial is in the audit log, and the hash chain verifies.
//
// Run it for minutes with: go test -run '^$' -bench Soak -benchtime 2000x ./engine/
func BenchmarkSoak(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	m, err := llama.LoadModel(tinyModel(b, "tiny-moe"), engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const nTok = 24
	prompts := make([][]llama.Token, 8)
	want := make([][]llama.Token, len(prompts))
	for i := range prompts {
		prompts[i], _ = m.Vocab().Tokenize(fmt.Sprintf("request %d: the experts %d", i, i*i), true, false)
		want[i] = generateGreedy(b, m, nil, prompts[i], nTok, nil)
	}

	budget, err := engine.NewBudget(ctx, m, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer budget.Close()
	logPath := filepath.Join(b.TempDir(), "audit.log")
	alog, err := audit.Open(logPath, &audit.Options{Sync: audit.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	rec := audit.NewRecorder(alog, nil, audit.WithDirectDenials())
	budget.Genome.SetDenialRecorder(func(d genome.AccessDenied) error { _, err := rec.RecordDenial(d); return err })

	const workers = 4
	type worker struct {
		c   *llama.Context
		s   *llama.Sampler
		gen *engine.Generator
	}
	ws := make([]worker, workers)
	for i := range ws {
		c, err := llama.NewContext(m, llama.ContextParams{NCtx: 128, Threads: 1, Observer: budget.Pager.Observer()})
		if err != nil {
			b.Fatal(err)
		}
		s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
		if err != nil {
			b.Fatal(err)
		}
		g, err := engine.NewGenerator(c, s)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = worker{c, s, g}
		defer func() { g.Close(); s.Close(); c.Close() }()
	}

	var next, tokens, cancels, denials atomic.Int64
	var failMu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		failMu.Lock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, a...))
		}
		failMu.Unlock()
	}
	run := func(w worker, n int64) {
		for {
			req := next.Add(1) - 1
			if req >= n {
				return
			}
			i := int(req) % len(prompts)
			rctx, cancel := context.WithCancel(ctx)
			stopAt := -1
			if req%3 == 2 {
				stopAt = 1 + int(req/3)%(nTok-2)
			}
			var got []llama.Token
			w.gen.Reset()
			_, err := w.gen.Generate(rctx, prompts[i], nTok, func(t llama.Token) bool {
				got = append(got, t)
				if len(got) == stopAt {
					cancel()
				}
				return true
			})
			cancelled := rctx.Err() != nil
			cancel()
			tokens.Add(int64(len(got)))
			switch {
			case cancelled:
				cancels.Add(1)
				if len(got) > len(want[i]) || !slices.Equal(got, want[i][:len(got)]) {
					fail("request %d (cancelled): %v is not a prefix of %v", req, got, want[i])
				}
			case err != nil:
				fail("request %d: %v", req, err)
			case !slices.Equal(got, want[i]):
				fail("request %d: got %v, want %v", req, got, want[i])
			}
		}
	}

	heaps := func() (c, g uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c, _ = llama.CHeapInUse()
		return c, ms.HeapAlloc
	}
	// Warm-up: one request per worker, so every context and buffer exists.
	next.Store(0)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); run(w, workers) }()
	}
	wg.Wait()
	c0, g0 := heaps()
	next.Store(0)
	tokens.Store(0)
	cancels.Store(0)

	rogue := genome.NewPersonaID()
	stop := make(chan struct{})
	var rogueWG sync.WaitGroup
	rogueWG.Add(1)
	go func() {
		defer rogueWG.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for e := 0; ; e++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if _, _, err := budget.Genome.PageIn(ctx, rogue, genome.ExpertPage(budget.Artifact(), 0, e%8)); err != nil {
				denials.Add(1)
			} else {
				fail("rogue persona paged an expert in")
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); run(w, int64(b.N)) }()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	rogueWG.Wait()

	for _, f := range failures {
		b.Error(f)
	}
	if err := budget.Pager.Err(); err != nil {
		b.Errorf("pager: %v", err)
	}
	c1, g1 := heaps()
	cGrowth, gGrowth := int64(c1)-int64(c0), int64(g1)-int64(g0)
	// A leak of one context, batch or sampler per request would grow the
	// C heap by megabytes over a soak; a Go leak per request by kilobytes
	// times b.N.
	if cGrowth > 1<<20 {
		b.Errorf("C heap grew %d bytes over %d requests", cGrowth, b.N)
	}
	if gGrowth > 4<<20 {
		b.Errorf("Go heap grew %d bytes over %d requests", gGrowth, b.N)
	}
	if err := alog.Close(); err != nil {
		b.Fatal(err)
	}
	sum, err := audit.Verify(logPath)
	if err != nil {
		b.Fatalf("audit log: %v", err)
	}
	if int64(sum.Entries) != denials.Load() {
		b.Errorf("audit log: %d entries for %d denials", sum.Entries, denials.Load())
	}
	st := budget.Genome.Stats()
	b.ReportMetric(float64(tokens.Load())/elapsed.Seconds(), "tok/s")
	b.ReportMetric(float64(cancels.Load()), "cancelled")
	b.ReportMetric(float64(denials.Load()), "denials")
	b.ReportMetric(float64(st.TotalFaults()), "page-faults")
	b.ReportMetric(float64(cGrowth), "C-heap-growth-B")
	b.ReportMetric(float64(gGrowth), "Go-heap-growth-B")
}
