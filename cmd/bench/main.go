// Command bench measures prompt processing and generation throughput of
// GGUF models through Strata, speaking llama.cpp's llama-bench: the same
// flags where they overlap (-m -p -n -pg -d -b -ub -t -ngl -ncmoe -sm -mg
// -dev -ot -fa -r -o), each taking comma-separated lists and ranges whose
// cartesian product is run, and the same output formats and field names
// (csv, json, jsonl, md, sql). To those it adds what is Strata's own
// concern: how much of llama.cpp's speed the Go token loop keeps (Go/C),
// how many Go allocations it makes per token, and with -budget how the
// genome pages an MoE model's experts — hit rate, MiB read per token, the
// share of the read bandwidth's limit reached, and how the genome compares
// with Belady's optimum on the very routing of the run: each test's
// generated tokens are recorded (engine.TraceRecorder) and replayed
// through routing.Simulate at the budget, from the experts the genome held
// when each repetition's generation began. -trace writes that routing to
// a file for `strata paging sim` and `strata paging stats`.
//
// Usage:
//
//	bench -m model.gguf [-p 512] [-n 128] [-pg 512,128] [-d 0] [-t 2,4]
//	      [-r 3] [-o md|csv|json|jsonl|sql|benchstat]
//	bench -m moe.gguf -p 0 -n 32 -budget 1GiB,1.5GiB,2GiB -svg sweep.svg
//	bench -m moe.gguf -p 0 -n 128 -trace tg128.trace   # then strata paging sim tg128.trace
//	bench -list-devices
//	bench -m model.gguf -dev CUDA1 -ngl 99    # one GPU; run once per GPU
//
// Results go to stdout, progress to stderr (as do results in -oe's
// format). -o benchstat prints lines golang.org/x/perf/cmd/benchstat
// reads, one per repetition. -pprof, -cpuprofile and -memprofile profile
// the run; page-ins then carry pprof labels (layer, expert, persona).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := checkModels(opts); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	level := slog.LevelError // llama.cpp's warnings are noise in results; -v shows all
	if opts.verbose {
		level = slog.LevelDebug
	}
	llama.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := bench(ctx, opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// checkModels checks every -m file before the first test, so that a
// missing one, or a dense one given -budget or -trace (which page and
// trace MoE experts), does not end the run halfway with its output
// unterminated.
func checkModels(o *options) error {
	paged := o.trace != "" || slices.ContainsFunc(o.budgets, func(b int64) bool { return b > 0 })
	for _, m := range o.models {
		if st, err := os.Stat(m); err != nil {
			return fmt.Errorf("-m %s: %w", m, err)
		} else if st.IsDir() {
			return fmt.Errorf("-m %s is a directory", m)
		}
		if !paged {
			continue
		}
		f, err := gguf.Open(m)
		if err != nil {
			return fmt.Errorf("-m %s: %w", m, err)
		}
		if f.ExpertCount() == 0 {
			return fmt.Errorf("-m %s has no MoE experts: -budget and -trace need an MoE model", m)
		}
	}
	return nil
}

func bench(ctx context.Context, o *options, stdout, stderr io.Writer) (err error) {
	stopProfiles, err := startProfiles(o, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopProfiles()) }()
	if err := loadBackends(o.backendPath, stderr); err != nil {
		return err
	}
	if o.listDevices {
		listDevices(stdout, stderr)
		return nil
	}
	if err := checkDevices(o, llama.Devices()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: system info: %s\n", llama.SystemInfo())
	for _, d := range llama.Devices() {
		fmt.Fprintf(stderr, "bench: device %d: %s (%s, %s), %d/%d MiB free\n", d.Index, d.Name, d.Description, d.Type, d.MemoryFree>>20, d.MemoryTotal>>20)
	}

	printers := []printer{newPrinter(o.output, stdout)}
	if o.outputErr != "none" {
		printers = append(printers, newPrinter(o.outputErr, stderr))
	}
	for _, p := range printers {
		p.header(o)
	}
	insts := instances(o)
	generating := 0 // tests that generate, each with a -trace file
	for _, inst := range insts {
		if inst.nGen > 0 {
			generating++
		}
	}
	cpuInfo, gpuInfo := deviceInfo()
	backends := backendsString()
	var (
		cur     *loaded
		results []*result
		readBW  = map[string]float64{} // measured per model file
	)
	defer func() { err = errors.Join(err, cur.close(stderr)) }()
	for k, inst := range insts {
		if cur == nil || !inst.sameModel(cur.inst) {
			if err := cur.close(stderr); err != nil {
				return err
			}
			cur = nil
			if cur, err = loadModel(ctx, inst, stderr); err != nil {
				return err
			}
		}
		if err := cur.setBudget(ctx, inst.budget, o.cpuProfile != "" || o.pprofAddr != "", o.prefetch, stderr); err != nil {
			return err
		}
		if cur.budget != nil {
			// What fitted the memory limit, which the rows and Belady's
			// replay must use (MemoryCheck warned if it is less).
			inst.budget = cur.budget.Bytes()
		}
		bw := o.readBW
		if inst.budget > 0 && bw == 0 {
			if bw = readBW[inst.model]; bw == 0 {
				if bw, err = measureReadBW(inst.model, cur.expertBytes(), readBWPar); err != nil {
					fmt.Fprintf(stderr, "bench: cannot measure the read bandwidth of %s (%v); give -read-bw for the I/O limit\n", inst.model, err)
					bw = -1
				} else {
					fmt.Fprintf(stderr, "bench: %s reads at %.0f MiB/s (O_DIRECT, %s extents, %d at a time)\n", inst.model, bw/(1<<20), sizeString(uint64(cur.expertBytes())), readBWPar)
				}
				readBW[inst.model] = bw
			}
			bw = max(bw, 0)
		}
		if o.delay > 0 {
			time.Sleep(time.Duration(o.delay) * time.Second)
		}
		fmt.Fprintf(stderr, "bench: test %d/%d: %s, t=%d%s\n", k+1, len(insts), inst.testName(), inst.threads, budgetNote(inst.budget))
		path := ""
		if o.trace != "" {
			path = tracePath(o.trace, k+1, generating > 1)
		}
		r, err := runTest(ctx, o, cur, inst, path, stderr)
		if err != nil {
			if cur.budget != nil {
				err = cur.budget.Pager.Explain(err)
			}
			return err
		}
		r.cpuInfo, r.gpuInfo, r.backends = cpuInfo, gpuInfo, backends
		if r.paging != nil {
			r.paging.readBW = bw
			r.paging.prefetch = o.prefetch
		}
		// Results are printed as each test ends, before anything is torn
		// down, so a failure in teardown cannot lose them.
		for _, p := range printers {
			p.row(r)
		}
		results = append(results, r)
	}
	for _, p := range printers {
		p.footer()
	}
	if o.svg != "" {
		if err := writeSVGFile(o.svg, results); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", o.svg)
	}
	return nil
}

func budgetNote(b int64) string {
	if b == 0 {
		return ""
	}
	return ", experts in " + sizeString(uint64(b))
}

func loadBackends(dir string, stderr io.Writer) error {
	if dir == "" {
		return nil
	}
	libs, err := llama.LoadBackends(dir)
	for _, lib := range libs {
		fmt.Fprintf(stderr, "bench: loaded backend %s\n", lib)
	}
	return err
}

// listDevices prints the offload devices as llama-bench --list-devices
// does, and on stderr the CPU devices it leaves out.
func listDevices(stdout, stderr io.Writer) {
	fmt.Fprintln(stdout, "Available devices:")
	n := 0
	for _, d := range llama.Devices() {
		if d.Type == llama.DeviceCPU {
			fmt.Fprintf(stderr, "bench: %s (%s) is the CPU: it runs what is not offloaded; -dev none runs on it alone\n", d.Name, d.Description)
			continue
		}
		fmt.Fprintf(stdout, "  %s: %s (%d MiB, %d MiB free)\n", d.Name, d.Description, d.MemoryTotal>>20, d.MemoryFree>>20)
		n++
	}
	if n == 0 {
		fmt.Fprintln(stdout, "  (none)")
	}
}

// checkDevices checks the -dev names and -ot buffer types against the
// devices there are, as llama-bench does while parsing, so that a typo
// fails before any model is loaded.
func checkDevices(o *options, devs []llama.Device) error {
	var gpus, bufts []string
	for _, d := range devs {
		if d.Type != llama.DeviceCPU {
			gpus = append(gpus, d.Name)
		}
		if d.BufferType != "" {
			bufts = append(bufts, d.BufferType)
		}
	}
	for _, ds := range o.devices {
		for _, name := range ds.names {
			if !contains(gpus, name) {
				what := "no such device"
				for _, d := range devs {
					if d.Name == name {
						what = "a CPU device: what is not offloaded runs there anyway (-dev none runs on it alone)"
					}
				}
				return fmt.Errorf("-dev %s: %s; offload devices here: %s", name, what, orNone(gpus))
			}
		}
	}
	for _, g := range o.overrides {
		for _, ov := range g {
			if !contains(bufts, ov.BufferType) {
				return fmt.Errorf("-ot %s=%s: unknown buffer type %q; buffer types here: %s", ov.Pattern, ov.BufferType, ov.BufferType, orNone(bufts))
			}
		}
	}
	return nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// loaded is the model of the current instances, and the genome paging its
// experts when they have a budget.
type loaded struct {
	inst   instance
	model  *llama.Model
	budget *engine.Budget
	bytes  int64 // the budget's size
	warned bool  // the budget's MemoryCheck warning was printed
}

func loadModel(ctx context.Context, inst instance, stderr io.Writer) (*loaded, error) {
	fmt.Fprintf(stderr, "bench: loading %s\n", inst.model)
	t0 := time.Now()
	m, err := llama.LoadModelContext(ctx, inst.model, inst.modelParams())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench: loaded %s (%s, %s) in %.2fs\n", inst.model, m.Description(), sizeString(m.Size()), time.Since(t0).Seconds())
	return &loaded{inst: inst, model: m}, nil
}

// setBudget gives the model a fresh genome within bytes, or none for 0.
// Each budget starts with every expert evicted.
func (l *loaded) setBudget(ctx context.Context, bytes int64, labels, prefetch bool, stderr io.Writer) error {
	if l.bytes == bytes {
		return nil
	}
	l.reportPrefetch(stderr)
	if err := l.budget.Close(); err != nil {
		return err
	}
	l.budget, l.bytes = nil, 0
	if bytes == 0 {
		return nil
	}
	// Without profiling, the genome's own pprof profiles are left out too:
	// their stack captures are the paging path's only allocations.
	b, err := engine.NewBudgetWith(ctx, l.model, bytes, engine.BudgetOptions{Prefetch: prefetch, NoProfiles: !labels})
	if err != nil {
		return err
	}
	l.budget, l.bytes, l.warned = b, bytes, false
	if labels {
		if err := b.Pager.LabelPageIns(l.model.Layers(), l.model.ExpertCount()); err != nil {
			return err
		}
	}
	pinned := ""
	if n := b.Pinned(); n > 0 {
		pinned = fmt.Sprintf("; %s of dense weights locked beside it", sizeString(uint64(n)))
	}
	fmt.Fprintf(stderr, "bench: experts paged through the genome within %s%s\n", sizeString(uint64(b.Bytes())), pinned)
	return nil
}

// expertBytes is the size of one expert page, the unit the genome reads.
func (l *loaded) expertBytes() int64 {
	if l.budget == nil {
		return 0
	}
	refs, err := l.budget.Genome.Pages(l.budget.Artifact(), genome.PageExpert)
	if err != nil || len(refs) == 0 {
		return 0
	}
	_, total, err := l.budget.Genome.Residency(refs[0])
	if err != nil {
		return 0
	}
	return total
}

// reportPrefetch says how well the budget's prefetch predicted, if it had
// one.
func (l *loaded) reportPrefetch(w io.Writer) {
	if l.budget == nil || l.budget.Prefetch == nil {
		return
	}
	st := l.budget.Prefetch.Stats()
	fmt.Fprintf(w, "bench: prefetch within %s: recall %.3f, precision %.3f; reads off the decoding thread: %d predicted experts, %d routed ones beside the decode's own, %s; wrong guesses: %d dropped, %d reads skipped\n",
		sizeString(uint64(l.budget.Bytes())), st.Recall(), st.Precision(), st.Queued, st.FannedOut, sizeString(st.BytesRead), st.Dropped, st.Stale)
}

func (l *loaded) close(stderr io.Writer) error {
	if l == nil {
		return nil
	}
	l.reportPrefetch(stderr)
	err := l.budget.Close()
	return errors.Join(err, l.model.Close())
}

// runTest runs one instance: a warm-up, then o.reps timed repetitions.
// With tracePath, or a budget, it records the routing of the tokens the
// repetitions generate (see recording).
func runTest(ctx context.Context, o *options, cur *loaded, inst instance, tracePath string, stderr io.Writer) (_ *result, err error) {
	cp := llama.ContextParams{
		NCtx: inst.nDepth + inst.nPrompt + inst.nGen + 16, NBatch: inst.nBatch, NUbatch: inst.nUbatch,
		Threads: inst.threads, FlashAttention: inst.flashAttn,
	}
	var rc *recording
	if inst.nGen > 0 && (tracePath != "" || cur.budget != nil) {
		if rc, err = newRecording(cur.model, tracePath, cur.budget != nil); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				rc.abort()
			}
		}()
	}
	var pager *llama.Observer
	if cur.budget != nil {
		pager = cur.budget.Pager.Observer()
	}
	cp.Observer = rc.observer(pager)
	lctx, err := llama.NewContext(cur.model, cp)
	if err != nil {
		return nil, err
	}
	defer lctx.Close()
	// Once the context's KV cache and buffers count in the process's
	// memory: whether the budget was lowered to fit, or no longer fits.
	if w := cur.budget.MemoryCheck(); w != "" && !cur.warned {
		fmt.Fprintf(stderr, "bench: warning: %s\n", w)
		cur.warned = true
	}
	smp, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		return nil, err
	}
	defer smp.Close()
	gen, err := engine.NewGenerator(lctx, smp)
	if err != nil {
		return nil, err
	}
	defer gen.Close()

	m := cur.model
	r := &result{
		inst: inst, modelType: m.Description(), modelSize: m.Size(), modelParams: m.ParamCount(),
		testTime: time.Now(),
	}
	vocab := m.Vocab()
	rng := rand.New(rand.NewPCG(1, 2))
	randomTokens := func(n int, bos bool) []llama.Token {
		toks := make([]llama.Token, n)
		for i := range toks {
			for {
				toks[i] = llama.Token(rng.IntN(vocab.Size()))
				if !vocab.IsControl(toks[i]) && !vocab.IsEOG(toks[i]) {
					break
				}
			}
		}
		if bos && vocab.AddBOS() && n > 0 {
			toks[0] = vocab.BOS()
		}
		return toks
	}
	name := inst.testName()

	// Warm up once with a prompt of the test's size, as llama-bench does:
	// the first decode pays for graph allocation, faulting the weights in
	// (mmap) and first-touching the compute buffers a full batch uses. A
	// 16-token warm-up left the first pp512 repetition 15% slow.
	if !o.noWarmup {
		gen.Reset()
		if err := gen.Prompt(ctx, randomTokens(max(inst.nPrompt, 1), true)); err != nil {
			return nil, err
		}
		if inst.nGen > 0 {
			if _, _, err := gen.Next(); err != nil {
				return nil, err
			}
		}
	}

	var pg paging
	var allocs, tokens float64
	for rep := 0; rep < o.reps; rep++ {
		gen.Reset()
		if inst.nDepth > 0 {
			if err := gen.Prompt(ctx, randomTokens(inst.nDepth, true)); err != nil {
				return nil, err
			}
		}
		// tg decodes tokens one at a time and waits for each, as
		// llama-bench does. Its tokens are random, as llama-bench's are,
		// and nothing is sampled, unless the routing is recorded (-budget,
		// -trace): then they are the model's greedy continuation, so that
		// experts are routed as on the model's own text, and each costs a
		// sample over the vocabulary (BenchmarkSample: about 0.1 ms for
		// 128,256 tokens, nothing on a CPU's tg, a tenth of a fast GPU's).
		sample := rc != nil
		var feed []llama.Token
		if inst.nGen > 0 && !sample {
			feed = randomTokens(inst.nGen, inst.nPrompt == 0 && inst.nDepth == 0)
		}
		if sample && inst.nPrompt == 0 && inst.nDepth == 0 {
			// Generation needs logits to sample from: one untimed token,
			// where llama-bench times a decode of BOS.
			if err := gen.Prompt(ctx, randomTokens(1, true)); err != nil {
				return nil, err
			}
		}
		var prompt []llama.Token
		if inst.nPrompt > 0 {
			prompt = randomTokens(inst.nPrompt, inst.nDepth == 0)
		}
		st0 := cur.stats()
		lctx.ResetPerf()
		a0 := mallocs()
		t0 := time.Now()
		if len(prompt) > 0 {
			if err := gen.Prompt(ctx, prompt); err != nil {
				return nil, err
			}
			lctx.Synchronize() // a GPU decode returns before it is done
		}
		// The genome's experts at the start of the generation are where
		// its Belady replay starts; listing them is left out of the
		// repetition's time and allocations.
		var aside time.Duration
		var asideAllocs uint64
		if rc != nil {
			s0, m0 := time.Now(), mallocs()
			rc.begin(cur.residentExperts(), cur.stats())
			aside, asideAllocs = time.Since(s0), mallocs()-m0
		}
		decodes, err := generateN(ctx, lctx, gen, inst.nGen, feed)
		if err != nil {
			return nil, err
		}
		if rc != nil {
			// Its stats (the genome's tier list) are set aside too: they
			// are per test, not per token.
			m0 := mallocs()
			rc.end(cur.stats())
			asideAllocs += mallocs() - m0
		}
		d := time.Since(t0) - aside
		n := inst.nPrompt + decodes
		a := mallocs() - a0 - asideAllocs
		if err := cur.paged(&pg, st0, n); err != nil {
			return nil, err
		}
		allocs += float64(a)
		tokens += float64(n)
		ts := float64(n) / d.Seconds()
		r.samplesNS = append(r.samplesNS, d.Nanoseconds())
		r.samplesTS = append(r.samplesTS, ts)
		perf := lctx.Perf()
		lts := rate(perf.PromptTokens+perf.EvalTokens, perf.PromptMs+perf.EvalMs)
		r.llamaTS = append(r.llamaTS, lts)
		fmt.Fprintf(stderr, "bench: t=%d %s rep %d/%d: %.2f tokens/s (llama.cpp counters %.2f)\n", inst.threads, name, rep+1, o.reps, ts, lts)
	}
	r.allocs = allocs / max(tokens, 1)
	if cur.budget != nil {
		if err := cur.budget.Pager.Err(); err != nil {
			return nil, err
		}
		r.paging = &pg
		fmt.Fprintf(stderr, "bench: t=%d %s: genome %d page faults, %d evictions, %d hits, %.1f MiB paged in; the decode spent %.2f s of %.2f s in the pager\n",
			inst.threads, name, pg.faults, pg.evictions, pg.hits, float64(pg.bytesIn)/(1<<20), pg.busy.Seconds(), time.Duration(r.totalNS()).Seconds())
	}
	if rc != nil {
		if err := rc.close(); err != nil {
			return nil, err
		}
		if tracePath != "" {
			fmt.Fprintf(stderr, "bench: t=%d %s: wrote the routing of %d generated tokens to %s\n", inst.threads, name, rc.tokens(), tracePath)
		}
		if cur.budget != nil {
			replayBelady(rc, &pg, inst, stderr)
		}
	}
	return r, nil
}

// replayBelady replays the test's recorded generation through Belady's
// optimum and the genome's policy at the budget, into pg. A replay that
// fails is said on stderr and leaves the columns empty: the test's own
// figures stand.
func replayBelady(rc *recording, pg *paging, inst instance, stderr io.Writer) {
	name := fmt.Sprintf("t=%d %s", inst.threads, inst.testName())
	t, err := rc.trace()
	var rp replayed
	if err == nil {
		rp, err = replay(t, rc.reps, inst.budget)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %s: no Belady replay: %v\n", name, err)
		return
	}
	if rp.measured != rp.accesses {
		// The trace and the genome saw different decodes: a ratio of the
		// two would mean nothing.
		fmt.Fprintf(stderr, "bench: %s: no Belady replay: the trace has %d expert accesses, the genome counted %d\n", name, rp.accesses, rp.measured)
		return
	}
	pg.replay = &rp
	if rp.inexact > 0 {
		fmt.Fprintf(stderr, "bench: %s: the genome's experts at the start of %d of %d repetitions do not fit the budget with a stand-in for a layer it held none of; Belady's start there is not the genome's\n", name, rp.inexact, len(rc.reps))
	}
	if rp.genomeErr != nil {
		fmt.Fprintf(stderr, "bench: %s: the genome's policy did not replay: %v\n", name, rp.genomeErr)
	}
	b, _ := rp.beladyRate()
	m, _ := rp.measuredRate()
	v, _ := rp.vsBelady()
	fmt.Fprintf(stderr, "bench: %s: of %d expert accesses while generating, the genome served %.3f within the budget, Belady's optimum %.3f (%.3f of it)", name, rp.accesses, m, b, v)
	if g, ok := rp.genomeRate(); ok {
		fmt.Fprintf(stderr, ", the genome's policy replayed %.3f", g)
	}
	fmt.Fprintln(stderr)
}

// pagingStats is a snapshot of the genome's counters. inBudget counts
// the faults served from within the budget: pages promoted from the
// Bench tier (the page cache) to Warm, which the genome counts as faults
// but which read nothing from the file.
type pagingStats struct {
	faults, evictions, hits, bytesIn, inBudget uint64
	busy                                       time.Duration // in the pager (ExpertPager.Busy)
}

func (l *loaded) stats() pagingStats {
	if l.budget == nil {
		return pagingStats{}
	}
	st := l.budget.Genome.Stats()
	ps := pagingStats{faults: st.TotalFaults(), evictions: st.Evictions, hits: st.Hits, bytesIn: st.BytesPagedIn, busy: l.budget.Pager.Busy()}
	for r, n := range st.Faults {
		if genome.TierRole(r).Resident() {
			ps.inBudget += n
		}
	}
	return ps
}

// paged adds the genome's work since st0, over tokens tokens, to pg, and
// fails if paging failed (the decode would have been aborted anyway).
func (l *loaded) paged(pg *paging, st0 pagingStats, tokens int) error {
	if l.budget == nil {
		return nil
	}
	if err := l.budget.Pager.Err(); err != nil {
		return err
	}
	st := l.stats()
	pg.faults += st.faults - st0.faults
	pg.evictions += st.evictions - st0.evictions
	pg.hits += st.hits - st0.hits
	pg.bytesIn += st.bytesIn - st0.bytesIn
	pg.busy += st.busy - st0.busy
	pg.tokens += tokens
	return nil
}

// readBWPar is how many reads at a time measure the I/O limit's
// bandwidth: as many as a paged decode with -prefetch has in flight, its
// own and the prefetch readers'. Rows without -prefetch are held to the
// same limit: it is what the disk gives, and a decode that reads one
// expert at a time falls short of it by its own design.
const readBWPar = 1 + engine.DefaultPrefetchReaders

// generateN runs n single-token decodes and returns how many it ran:
// feed's tokens, waiting for each decode as llama-bench does, or, with feed
// nil, the greedy continuation (ignoring EOG, as llama-bench does).
func generateN(ctx context.Context, lctx *llama.Context, gen *engine.Generator, n int, feed []llama.Token) (int, error) {
	decodes := 0
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return decodes, err
		}
		if feed != nil {
			if err := gen.Feed(feed[i]); err != nil {
				return decodes, err
			}
			lctx.Synchronize()
		} else if _, eog, err := gen.Next(); err != nil {
			return decodes, err
		} else if eog {
			// llama-bench keeps going past EOG; decoding the EOG token
			// itself needs a batch of our own, which Next does not do, so
			// the random model's rare EOG simply ends this rep early.
			break
		}
		decodes++
	}
	if n > 0 {
		lctx.Synchronize() // the last decode may still run on a GPU
	}
	return decodes, nil
}

func rate(n int, ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	return float64(n) / (ms / 1000)
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}
