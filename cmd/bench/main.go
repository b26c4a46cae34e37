// Command bench measures prompt processing and generation throughput of
// GGUF models through Strata's llama package, in the spirit of llama.cpp's
// llama-bench: the same test names (pp512, tg128) and a markdown table by
// default, plus the figures that are Strata's own concern — how much of
// llama.cpp's speed the Go token loop keeps, and how many allocations it
// makes per token.
//
// Usage:
//
//	bench -m model.gguf [-p 512] [-n 128] [-t 2,4] [-r 3] [-o md|json|benchstat]
//
// Results go to stdout, progress to stderr. -o benchstat prints lines that
// golang.org/x/perf/cmd/benchstat reads, one per repetition.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

// options are bench's flags.
type options struct {
	models      []string
	promptN     int
	genN        int
	threads     []int
	reps        int
	gpuLayers   int
	batch       int
	ubatch      int
	noMmap      bool
	flashAttn   bool
	budget      int64
	output      string
	cpuProfile  string
	memProfile  string
	backendPath string
	verbose     bool
}

// result is one test of one configuration, over all repetitions.
type result struct {
	Model        string    `json:"model"`
	ModelDesc    string    `json:"model_desc"`
	ModelSize    uint64    `json:"model_size"`
	ModelParams  uint64    `json:"model_n_params"`
	Backend      string    `json:"backend"`
	Budget       int64     `json:"expert_budget,omitempty"` // bytes, with -budget
	PageFaults   uint64    `json:"page_faults,omitempty"`   // genome faults during the test
	Evictions    uint64    `json:"evictions,omitempty"`
	Threads      int       `json:"n_threads"`
	GPULayers    int       `json:"n_gpu_layers"`
	Test         string    `json:"test"` // "pp512", "tg128"
	NPrompt      int       `json:"n_prompt"`
	NGen         int       `json:"n_gen"`
	Samples      []float64 `json:"samples_ts"` // tokens/s of each repetition (Go wall clock)
	AvgTS        float64   `json:"avg_ts"`
	StddevTS     float64   `json:"stddev_ts"`
	LlamaAvgTS   float64   `json:"llama_avg_ts"`          // llama.cpp's perf counters, same decodes
	LoopRatio    float64   `json:"loop_ratio,omitempty"`  // AvgTS / LlamaAvgTS (tg only)
	AllocsPerTok float64   `json:"allocs_per_token"`      // Go heap allocations per token, loop only
	SystemInfo   string    `json:"system_info,omitempty"` // llama_print_system_info()
	Timestamp    time.Time `json:"timestamp"`
}

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

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	models := fs.String("m", "", "comma-separated GGUF model `files` (required)")
	fs.IntVar(&o.promptN, "p", 512, "prompt tokens for the pp test (0 skips it)")
	fs.IntVar(&o.genN, "n", 128, "generated tokens for the tg test (0 skips it)")
	threads := fs.String("t", strconv.Itoa(runtime.NumCPU()), "comma-separated thread `counts`")
	fs.IntVar(&o.reps, "r", 3, "repetitions of each test")
	fs.IntVar(&o.gpuLayers, "ngl", 0, "layers to offload to a GPU (-1: all)")
	fs.IntVar(&o.batch, "b", 2048, "logical batch size")
	fs.IntVar(&o.ubatch, "ub", 512, "physical batch size")
	fs.BoolVar(&o.noMmap, "no-mmap", false, "read weights instead of mapping the file")
	fs.BoolVar(&o.flashAttn, "fa", false, "enable flash attention")
	budget := fs.String("budget", "", "page an MoE model's experts through the genome within this `size` (e.g. 2GiB)")
	fs.StringVar(&o.output, "o", "md", "output `format`: md, json or benchstat")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `file`")
	fs.StringVar(&o.backendPath, "backend", os.Getenv("STRATA_BACKEND_PATH"), "load ggml backend libraries (e.g. libggml-cuda.so) from this `dir`")
	fs.BoolVar(&o.verbose, "v", false, "show llama.cpp's log")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) (*options, error) {
		fmt.Fprintf(stderr, "bench: "+format+"\n", a...)
		fs.Usage()
		return nil, errors.New("usage")
	}
	if *models == "" {
		return fail("-m is required")
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	o.models = strings.Split(*models, ",")
	if *budget != "" {
		b, err := engine.ParseBytes(*budget)
		if err != nil || b <= 0 {
			return fail("bad -budget %q", *budget)
		}
		o.budget = b
	}
	for _, s := range strings.Split(*threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fail("bad thread count %q in -t", s)
		}
		o.threads = append(o.threads, n)
	}
	switch {
	case o.promptN < 0 || o.genN < 0 || (o.promptN == 0 && o.genN == 0):
		return fail("-p and -n must be >= 0 and not both 0")
	case o.reps <= 0:
		return fail("-r must be positive")
	case o.output != "md" && o.output != "json" && o.output != "benchstat":
		return fail("unknown output format %q", o.output)
	}
	return o, nil
}

func bench(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.backendPath != "" {
		libs, _ := filepath.Glob(filepath.Join(o.backendPath, "libggml-*.so"))
		for _, lib := range libs {
			if strings.Contains(filepath.Base(lib), "ggml-base") {
				continue
			}
			if err := llama.LoadBackend(lib); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "bench: loaded backend %s\n", lib)
		}
	}
	sysInfo := llama.SystemInfo()
	fmt.Fprintf(stderr, "bench: system info: %s\n", sysInfo)
	for _, d := range llama.Devices() {
		fmt.Fprintf(stderr, "bench: device %d: %s (%s, %s), %d/%d MiB free\n", d.Index, d.Name, d.Description, d.Type, d.MemoryFree>>20, d.MemoryTotal>>20)
	}

	out := newPrinter(o.output, stdout)
	for _, path := range o.models {
		fmt.Fprintf(stderr, "bench: loading %s\n", path)
		t0 := time.Now()
		mp := llama.ModelParams{NoMmap: o.noMmap, GPULayers: o.gpuLayers}
		if o.budget > 0 {
			mp = engine.PagedExperts(mp) // experts stay in the file mapping the genome pages
		}
		m, err := llama.LoadModelContext(ctx, path, mp)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: loaded %s (%s, %s) in %.2fs\n", path, m.Description(), sizeString(m.Size()), time.Since(t0).Seconds())
		var budget *engine.Budget
		if o.budget > 0 {
			if budget, err = engine.NewBudget(ctx, m, o.budget); err != nil {
				m.Close()
				return err
			}
			fmt.Fprintf(stderr, "bench: experts paged through the genome within %s\n", sizeString(uint64(o.budget)))
		}
		for _, t := range o.threads {
			// Results are printed as each test ends, before the context
			// is torn down, so a failure in teardown cannot lose them.
			err := benchModel(ctx, o, m, budget, t, stderr, func(r result) {
				r.SystemInfo = sysInfo
				out.add(r)
			})
			if err != nil {
				budget.Close()
				m.Close()
				return err
			}
		}
		if err := budget.Close(); err != nil {
			m.Close()
			return err
		}
		m.Close()
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	return out.flush()
}

// benchModel runs the pp and tg tests for one thread count.
func benchModel(ctx context.Context, o *options, m *llama.Model, budget *engine.Budget, threads int, stderr io.Writer, emit func(result)) error {
	nctx := o.promptN + o.genN + 16
	cp := llama.ContextParams{
		NCtx: nctx, NBatch: max(o.batch, o.promptN), NUbatch: o.ubatch, Threads: threads,
		FlashAttention: map[bool]llama.FlashAttention{true: llama.FlashAttentionOn, false: llama.FlashAttentionOff}[o.flashAttn],
	}
	if budget != nil {
		cp.Observer = budget.Pager.Observer()
	}
	lctx, err := llama.NewContext(m, cp)
	if err != nil {
		return err
	}
	defer lctx.Close()
	smp, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		return err
	}
	defer smp.Close()
	gen, err := engine.NewGenerator(lctx, smp)
	if err != nil {
		return err
	}
	defer gen.Close()

	base := result{
		Model: filepath.Base(m.Path()), ModelDesc: m.Description(), ModelSize: m.Size(), ModelParams: m.ParamCount(),
		Backend: backendName(o.gpuLayers), Threads: threads, GPULayers: o.gpuLayers, Timestamp: time.Now().UTC(),
		Budget: o.budget,
	}
	vocab := m.Vocab()
	rng := rand.New(rand.NewPCG(1, 2))
	randomTokens := func(n int) []llama.Token {
		toks := make([]llama.Token, n)
		for i := range toks {
			for {
				toks[i] = llama.Token(rng.IntN(vocab.Size()))
				if !vocab.IsControl(toks[i]) && !vocab.IsEOG(toks[i]) {
					break
				}
			}
		}
		if vocab.AddBOS() && n > 0 {
			toks[0] = vocab.BOS()
		}
		return toks
	}

	// Warm up once with a prompt of the test's size, as llama-bench does:
	// the first decode pays for graph allocation, faulting the weights in
	// (mmap) and first-touching the compute buffers a full batch uses. A
	// 16-token warm-up left the first pp512 repetition 15% slow.
	fmt.Fprintf(stderr, "bench: t=%d warm-up\n", threads)
	gen.Reset()
	if err := gen.Prompt(ctx, randomTokens(max(o.promptN, 1))); err != nil {
		return err
	}
	if _, _, err := gen.Next(); err != nil {
		return err
	}

	// paging reports the genome's work over one test and fails the run
	// if paging failed (the decode would have been aborted anyway).
	var f0, e0 uint64
	mark := func() {
		if budget != nil {
			st := budget.Genome.Stats()
			f0, e0 = st.TotalFaults(), st.Evictions
		}
	}
	paging := func(r *result) error {
		if budget == nil {
			return nil
		}
		if err := budget.Pager.Err(); err != nil {
			return err
		}
		st := budget.Genome.Stats()
		r.PageFaults, r.Evictions = st.TotalFaults()-f0, st.Evictions-e0
		fmt.Fprintf(stderr, "bench: t=%d %s: genome %d page faults, %d evictions, %d hits, %.1f MiB paged in so far\n",
			threads, r.Test, r.PageFaults, r.Evictions, st.Hits, float64(st.BytesPagedIn)/(1<<20))
		return nil
	}

	if o.promptN > 0 {
		mark()
		r := base
		r.Test, r.NPrompt = fmt.Sprintf("pp%d", o.promptN), o.promptN
		var llamaTS, allocs []float64
		for rep := 0; rep < o.reps; rep++ {
			toks := randomTokens(o.promptN)
			gen.Reset()
			lctx.ResetPerf()
			a0 := mallocs()
			t0 := time.Now()
			if err := gen.Prompt(ctx, toks); err != nil {
				return err
			}
			lctx.Synchronize() // a GPU decode returns before it is done
			d := time.Since(t0)
			allocs = append(allocs, float64(mallocs()-a0)/float64(o.promptN))
			ts := float64(o.promptN) / d.Seconds()
			r.Samples = append(r.Samples, ts)
			llamaTS = append(llamaTS, lctx.Perf().PromptTokensPerSecond())
			fmt.Fprintf(stderr, "bench: t=%d %s rep %d/%d: %.2f tokens/s\n", threads, r.Test, rep+1, o.reps, ts)
		}
		r.AvgTS, r.StddevTS = meanStd(r.Samples)
		r.LlamaAvgTS, _ = meanStd(llamaTS)
		r.AllocsPerTok, _ = meanStd(allocs)
		if err := paging(&r); err != nil {
			return err
		}
		emit(r)
	}
	if o.genN > 0 {
		mark()
		r := base
		r.Test, r.NGen = fmt.Sprintf("tg%d", o.genN), o.genN
		var llamaTS, allocs []float64
		for rep := 0; rep < o.reps; rep++ {
			gen.Reset()
			if err := gen.Prompt(ctx, randomTokens(1)); err != nil {
				return err
			}
			lctx.ResetPerf()
			st, a, err := generateN(ctx, lctx, gen, o.genN)
			if err != nil {
				return err
			}
			allocs = append(allocs, a)
			r.Samples = append(r.Samples, st.GenTokensPerSecond())
			llamaTS = append(llamaTS, lctx.Perf().EvalTokensPerSecond())
			fmt.Fprintf(stderr, "bench: t=%d %s rep %d/%d: %.2f tokens/s (llama.cpp counters %.2f)\n",
				threads, r.Test, rep+1, o.reps, st.GenTokensPerSecond(), lctx.Perf().EvalTokensPerSecond())
		}
		r.AvgTS, r.StddevTS = meanStd(r.Samples)
		r.LlamaAvgTS, _ = meanStd(llamaTS)
		if r.LlamaAvgTS > 0 {
			r.LoopRatio = r.AvgTS / r.LlamaAvgTS
		}
		r.AllocsPerTok, _ = meanStd(allocs)
		if err := paging(&r); err != nil {
			return err
		}
		emit(r)
	}
	return nil
}

// generateN runs n single-token decodes (ignoring EOG, as llama-bench
// does) and returns the loop's stats and its heap allocations per token.
func generateN(ctx context.Context, lctx *llama.Context, gen *engine.Generator, n int) (engine.Stats, float64, error) {
	var st engine.Stats
	a0 := mallocs()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return st, 0, err
		}
		if _, eog, err := gen.Next(); err != nil {
			return st, 0, err
		} else if eog {
			// llama-bench keeps going past EOG; decoding the EOG token
			// itself needs a batch of our own, which Next does not do, so
			// the random model's rare EOG simply ends this rep early.
			break
		}
		st.GenDecodes++
	}
	lctx.Synchronize() // the last decode may still run on a GPU
	st.GenTime = time.Since(t0)
	a := float64(mallocs()-a0) / float64(max(st.GenDecodes, 1))
	return st, a, nil
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

func backendName(ngl int) string {
	names := llama.Backends()
	if ngl == 0 || len(names) == 1 {
		return "CPU"
	}
	return strings.Join(names, ",")
}

// printer writes results in the chosen format.
type printer struct {
	format string
	w      io.Writer
	rows   []result
	header bool
}

func newPrinter(format string, w io.Writer) *printer { return &printer{format: format, w: w} }

func (p *printer) add(r result) {
	switch p.format {
	case "md":
		if !p.header {
			fmt.Fprintln(p.w, "| model | size | params | backend | threads | test | t/s | llama.cpp t/s | Go/C | allocs/tok |")
			fmt.Fprintln(p.w, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
			p.header = true
		}
		ratio := "-"
		if r.LoopRatio > 0 {
			ratio = fmt.Sprintf("%.4f", r.LoopRatio)
		}
		fmt.Fprintf(p.w, "| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %.2f | %s | %.2f |\n",
			r.ModelDesc, sizeString(r.ModelSize), paramString(r.ModelParams), backendLabel(r), r.Threads, r.Test,
			r.AvgTS, r.StddevTS, r.LlamaAvgTS, ratio, r.AllocsPerTok)
	case "benchstat":
		if !p.header {
			fmt.Fprintf(p.w, "goos: %s\ngoarch: %s\npkg: github.com/strata-llm/strata/cmd/bench\n", runtime.GOOS, runtime.GOARCH)
			p.header = true
		}
		name := fmt.Sprintf("Benchmark%s/model=%s/t=%d", strings.ToUpper(r.Test[:1])+r.Test[1:], sanitize(r.Model), r.Threads)
		toks := r.NPrompt + r.NGen
		ratio := ""
		if r.LoopRatio > 0 {
			ratio = fmt.Sprintf("\t%.4f loop-ratio", r.LoopRatio)
		}
		for _, ts := range r.Samples {
			fmt.Fprintf(p.w, "%s\t1\t%.0f ns/op\t%.2f tokens/s%s\t%.2f allocs/token\n",
				name, float64(toks)/ts*1e9, ts, ratio, r.AllocsPerTok)
		}
	case "json":
		p.rows = append(p.rows, r)
	}
}

func (p *printer) flush() error {
	if p.format != "json" {
		return nil
	}
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.rows)
}

// backendLabel is the backend column: the backend, plus the expert budget
// when the genome paged the experts.
func backendLabel(r result) string {
	if r.Budget > 0 {
		return fmt.Sprintf("%s, experts in %s", r.Backend, sizeString(uint64(r.Budget)))
	}
	return r.Backend
}

// sizeString and paramString format like llama-bench: GiB and B (billions)
// for real models, MiB and M for the tiny test ones.
func sizeString(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

func paramString(n uint64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	}
	return fmt.Sprintf("%.2f M", float64(n)/1e6)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' || r == '\t' {
			return '_'
		}
		return r
	}, s)
}
