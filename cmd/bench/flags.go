package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

// options are bench's flags. A list is one axis of the cartesian product
// of test configurations, as in llama-bench.
type options struct {
	models    []string
	nPrompt   []int
	nGen      []int
	nPG       []pg
	nDepth    []int
	nBatch    []int
	nUbatch   []int
	threads   []int
	ngl       []int
	ncmoe     []int
	splitMode []llama.SplitMode
	mainGPU   []int
	devices   []devices
	overrides []overrideGroup
	flashAttn []llama.FlashAttention
	budgets   []int64 // 0 is plain mmap, no genome

	reps        int
	output      string // format on stdout
	outputErr   string // format on stderr, "none" for none
	noMmap      bool
	noWarmup    bool
	progress    bool
	listDevices bool
	delay       int // seconds before each test

	prefetch    bool    // with -budget: predict and read experts ahead
	svg         string  // budget sweep plot
	trace       string  // routing trace file of the generated tokens
	readBW      float64 // bytes/s for the I/O limit; 0 measures it
	cpuProfile  string
	memProfile  string
	pprofAddr   string
	backendPath string
	verbose     bool
}

// pg is one -pg test: a prompt of pp tokens, then tg generated tokens.
type pg struct{ pp, tg int }

// devices is one -dev value: auto (llama.cpp picks every GPU), none (the
// CPU alone), or GPU device names.
type devices struct {
	auto, none bool
	names      []string
}

func (d devices) String() string {
	switch {
	case d.none:
		return "none"
	case len(d.names) == 0:
		return "auto"
	}
	return strings.Join(d.names, "/")
}

// overrideGroup is one -ot value: tensor placement rules applied together.
type overrideGroup []llama.TensorOverride

func (g overrideGroup) String() string {
	if len(g) == 0 {
		return "none"
	}
	parts := make([]string, len(g))
	for i, o := range g {
		parts[i] = o.Pattern + "=" + o.BufferType
	}
	return strings.Join(parts, ";")
}

// Defaults, as llama-bench's except -t (every CPU Go sees rather than the
// physical cores) and -r (3 instead of 5, as bin/bench always had).
var defaults = options{
	nPrompt:   []int{512},
	nGen:      []int{128},
	nDepth:    []int{0},
	nBatch:    []int{2048},
	nUbatch:   []int{512},
	threads:   []int{runtime.NumCPU()},
	ngl:       []int{-1},
	ncmoe:     []int{0},
	splitMode: []llama.SplitMode{llama.SplitLayer},
	mainGPU:   []int{0},
	devices:   []devices{{auto: true}},
	overrides: []overrideGroup{nil},
	flashAttn: []llama.FlashAttention{llama.FlashAttentionAuto},
	budgets:   []int64{0},
	reps:      3,
	output:    "md",
	outputErr: "none",
}

// listFlag is a flag that may be repeated and takes comma-separated
// values; the first use replaces the default, later ones append.
type listFlag struct {
	set   bool
	parse func(string) error // one comma-separated argument
	show  string
}

func (f *listFlag) String() string { return f.show }
func (f *listFlag) Set(s string) error {
	f.set = true
	return f.parse(s)
}

// intRange parses llama-bench's integer lists: "first[-last[(+|*)step]]"
// items separated by commas, e.g. "1-4", "128,256", "64-512*2".
func intRange(s string, allowNegative bool) ([]int, error) {
	var out []int
	for _, item := range strings.Split(s, ",") {
		m := rangeRE.FindStringSubmatch(item)
		if m == nil || (!allowNegative && strings.HasPrefix(m[1], "-")) {
			return nil, fmt.Errorf("%q is not a number or range (first[-last[+step|*mult]])", item)
		}
		first, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		last, step, op := first, 1, "+"
		if m[2] != "" {
			if last, err = strconv.Atoi(m[2]); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
			if last < first {
				return nil, fmt.Errorf("%q: range ends before it starts", item)
			}
		}
		if m[3] != "" {
			op = m[3]
			if step, err = strconv.Atoi(m[4]); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
		}
		for i := first; i <= last; {
			out = append(out, i)
			prev := i
			if op == "+" {
				i += step
			} else {
				i *= step
			}
			if i <= prev {
				return nil, fmt.Errorf("%q: the range does not advance", item)
			}
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("%q: more than %d values", item, 1<<16)
			}
		}
	}
	return out, nil
}

var rangeRE = regexp.MustCompile(`^(-?\d+)(?:-(\d+)(?:([+*])(\d+))?)?$`)

func parseSplitMode(s string) (llama.SplitMode, error) {
	for _, m := range []llama.SplitMode{llama.SplitNone, llama.SplitLayer, llama.SplitRow, llama.SplitTensor} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%q is not none, layer, row or tensor", s)
}

// parseDevices reads one -dev value: auto, none, or names joined by "/".
// Whether the names exist is checked once the backends are loaded.
func parseDevices(s string) (devices, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return devices{}, errors.New("no devices specified")
	case "auto":
		return devices{auto: true}, nil
	case "none":
		return devices{none: true}, nil
	}
	var d devices
	for _, name := range strings.Split(s, "/") {
		if name = strings.TrimSpace(name); name == "" {
			return devices{}, fmt.Errorf("%q: empty device name", s)
		}
		d.names = append(d.names, name)
	}
	return d, nil
}

// parseOverrides reads an -ot argument: groups separated by commas (each
// group one configuration; an empty group is none), rules in a group by
// semicolons, each rule "regex=buffer type". The pattern must compile as
// RE2; llama.cpp matches it with std::regex. Buffer type names are checked
// once the backends are loaded.
func parseOverrides(s string) ([]overrideGroup, error) {
	var out []overrideGroup
	for _, group := range strings.Split(s, ",") {
		var g overrideGroup
		for _, rule := range strings.Split(group, ";") {
			if rule == "" {
				continue
			}
			pat, buft, ok := strings.Cut(rule, "=")
			if !ok || pat == "" || buft == "" {
				return nil, fmt.Errorf("%q is not <tensor name pattern>=<buffer type>", rule)
			}
			if _, err := regexp.Compile(pat); err != nil {
				return nil, fmt.Errorf("pattern %q: %w", pat, err)
			}
			g = append(g, llama.TensorOverride{Pattern: pat, BufferType: buft})
		}
		out = append(out, g)
	}
	return out, nil
}

// parseBudget reads one -budget value: a size, or 0/none/mmap for the
// plain mmap baseline.
func parseBudget(s string) (int64, error) {
	switch strings.TrimSpace(s) {
	case "0", "none", "mmap":
		return 0, nil
	}
	b, err := engine.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if b <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return b, nil
}

// parseBandwidth reads -read-bw: bytes per second with an optional binary
// unit and "/s", e.g. "1.6GiB/s", "1500MiB".
func parseBandwidth(s string) (float64, error) {
	b, err := engine.ParseBytes(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil || b <= 0 {
		return 0, fmt.Errorf("%q is not a bandwidth such as 1.6GiB/s", s)
	}
	return float64(b), nil
}

var outputFormats = []string{"csv", "json", "jsonl", "md", "sql", "benchstat"}

// unsupported are llama-bench flags bin/bench does not take, so that using
// one says so instead of "flag provided but not defined".
var unsupported = []string{
	"hf", "hfr", "hf-repo", "hff", "hf-file", "hft", "hf-token", "offline",
	"ctk", "cache-type-k", "ctv", "cache-type-v", "C", "cpu-mask", "cpu-strict", "poll",
	"nkvo", "no-kv-offload", "lm", "load-mode", "lzm", "lazy-mode", "embd", "embeddings",
	"ts", "tensor-split", "nopo", "no-op-offload", "no-host", "numa", "prio",
	"fitt", "fit-target", "fitc", "fit-ctx", "rpc", "version",
	"cmoe", "cpu-moe", "dio", "direct-io",
}

// parseFlags parses bench's command line. Flags are llama-bench's where
// they overlap, under both of its spellings (-p and --n-prompt).
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := defaults
	// Each list starts as its default; listFlag replaces it on first use.
	var models []string
	list := func(names []string, usage, show string, parse func(string) error) {
		f := &listFlag{parse: parse, show: show}
		for _, n := range names {
			fs.Var(f, n, usage)
		}
	}
	first := map[string]bool{}
	// reset clears a list the first time its flag is given.
	reset := func(key string, clear func()) {
		if !first[key] {
			first[key] = true
			clear()
		}
	}
	ints := func(key string, dst *[]int, neg bool) func(string) error {
		return func(s string) error {
			v, err := intRange(s, neg)
			if err != nil {
				return err
			}
			reset(key, func() { *dst = nil })
			*dst = append(*dst, v...)
			return nil
		}
	}
	list([]string{"m", "model"}, "GGUF model `files`, comma-separated (required)", "", func(s string) error {
		for _, p := range strings.Split(s, ",") {
			if p == "" {
				return errors.New("empty model path")
			}
			models = append(models, p)
		}
		return nil
	})
	list([]string{"p", "n-prompt"}, "prompt `tokens` of the pp tests (0 skips them)", "512", ints("p", &o.nPrompt, false))
	list([]string{"n", "n-gen"}, "generated `tokens` of the tg tests (0 skips them)", "128", ints("n", &o.nGen, false))
	list([]string{"pg"}, "a prompt-then-generate test `pp,tg` (repeat the flag for more)", "", func(s string) error {
		a, b, ok := strings.Cut(s, ",")
		pp, err1 := strconv.Atoi(strings.TrimSpace(a))
		tg, err2 := strconv.Atoi(strings.TrimSpace(b))
		if !ok || strings.Contains(b, ",") || err1 != nil || err2 != nil || pp < 0 || tg < 0 {
			return fmt.Errorf("%q is not pp,tg (two token counts)", s)
		}
		o.nPG = append(o.nPG, pg{pp, tg})
		return nil
	})
	list([]string{"d", "n-depth"}, "`tokens` already in the context before each test", "0", ints("d", &o.nDepth, false))
	list([]string{"b", "batch-size"}, "logical batch `size`", "2048", ints("b", &o.nBatch, false))
	list([]string{"ub", "ubatch-size"}, "physical batch `size`", "512", ints("ub", &o.nUbatch, false))
	list([]string{"t", "threads"}, "thread `counts`", strconv.Itoa(runtime.NumCPU()), ints("t", &o.threads, false))
	list([]string{"ngl", "n-gpu-layers"}, "`layers` offloaded to the GPU (-1: all)", "-1", ints("ngl", &o.ngl, true))
	list([]string{"ncmoe", "n-cpu-moe"}, "keep the experts of the first `N` layers on the CPU", "0", ints("ncmoe", &o.ncmoe, false))
	list([]string{"sm", "split-mode"}, "split `mode` over GPUs: none, layer, row, tensor", "layer", func(s string) error {
		reset("sm", func() { o.splitMode = nil })
		for _, v := range strings.Split(s, ",") {
			m, err := parseSplitMode(v)
			if err != nil {
				return err
			}
			o.splitMode = append(o.splitMode, m)
		}
		return nil
	})
	list([]string{"mg", "main-gpu"}, "`index` of the GPU with -sm none", "0", ints("mg", &o.mainGPU, false))
	list([]string{"dev", "device"}, "`devices`: auto, none (CPU only) or names joined by / (see -list-devices)", "auto", func(s string) error {
		reset("dev", func() { o.devices = nil })
		for _, v := range strings.Split(s, ",") {
			d, err := parseDevices(v)
			if err != nil {
				return err
			}
			o.devices = append(o.devices, d)
		}
		return nil
	})
	list([]string{"ot", "override-tensor"}, "tensor `overrides` <regex>=<buffer type>;... (comma: another configuration)", "none", func(s string) error {
		g, err := parseOverrides(s)
		if err != nil {
			return err
		}
		reset("ot", func() { o.overrides = nil })
		o.overrides = append(o.overrides, g...)
		return nil
	})
	list([]string{"fa", "flash-attn"}, "flash attention: on, off, auto", "auto", func(s string) error {
		reset("fa", func() { o.flashAttn = nil })
		for _, v := range strings.Split(s, ",") {
			fa, err := llama.ParseFlashAttention(v)
			if err != nil {
				return err
			}
			o.flashAttn = append(o.flashAttn, fa)
		}
		return nil
	})
	list([]string{"budget"}, "page an MoE model's experts through the genome within each `size` (e.g. 1GiB,1.5GiB; none: plain mmap)", "none", func(s string) error {
		reset("budget", func() { o.budgets = nil })
		for _, v := range strings.Split(s, ",") {
			b, err := parseBudget(v)
			if err != nil {
				return err
			}
			o.budgets = append(o.budgets, b)
		}
		return nil
	})
	fs.IntVar(&o.reps, "r", o.reps, "repetitions of each test")
	fs.IntVar(&o.reps, "repetitions", o.reps, "repetitions of each test")
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&o.output, n, o.output, "output `format` on stdout: "+strings.Join(outputFormats, ", "))
	}
	for _, n := range []string{"oe", "output-err"} {
		fs.StringVar(&o.outputErr, n, o.outputErr, "output `format` on stderr, as -o, or none")
	}
	fs.IntVar(&o.delay, "delay", 0, "`seconds` to wait before each test")
	fs.BoolVar(&o.listDevices, "list-devices", false, "list the devices and exit")
	fs.BoolVar(&o.progress, "progress", false, "say which test runs (progress goes to stderr anyway)")
	fs.BoolVar(&o.noWarmup, "no-warmup", false, "skip the warm-up run before each test")
	fs.BoolVar(&o.noMmap, "no-mmap", false, "read weights instead of mapping the file")
	// llama-bench's older spelling, still in many scripts: -mmp 0 is
	// -no-mmap. One value only: a list would need a test per value.
	for _, n := range []string{"mmp", "mmap"} {
		fs.Func(n, "`0|1`: 0 is -no-mmap (llama-bench's older flag)", func(s string) error {
			switch strings.TrimSpace(s) {
			case "0":
				o.noMmap = true
			case "1":
				o.noMmap = false
			default:
				return fmt.Errorf("%q: want 0 or 1 (one value; run twice for both)", s)
			}
			return nil
		})
	}
	fs.BoolVar(&o.prefetch, "prefetch", false, "with -budget: predict each MoE layer's experts from the layer before and read them ahead, off the decoding thread (recall on stderr)")
	fs.StringVar(&o.svg, "svg", "", "with -budget: write a `file` plotting t/s and hit rate against the budget (a plain mmap run is added)")
	fs.StringVar(&o.trace, "trace", "", "record the MoE routing of every generated token (tg, and pg's tg) to `file`, for strata paging sim; with several such tests, one file each, numbered as the tests: file.3.ext")
	readBW := fs.String("read-bw", "", fmt.Sprintf("read `bandwidth` for the I/O limit, e.g. 1.6GiB/s (default: measured with O_DIRECT reads of the model, expert-sized, %d at a time)", readBWPar))
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `file`")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on `addr` (e.g. localhost:6060) while the bench runs")
	fs.StringVar(&o.backendPath, "backend", os.Getenv("STRATA_BACKEND_PATH"), "load ggml backend libraries (e.g. libggml-cuda.so) from this `dir`")
	for _, n := range []string{"v", "verbose"} {
		fs.BoolVar(&o.verbose, n, false, "show llama.cpp's log")
	}

	fail := func(format string, a ...any) (*options, error) {
		fmt.Fprintf(stderr, "bench: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run bench -h for the flags")
		return nil, errors.New("usage")
	}
	for _, a := range args {
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		if strings.HasPrefix(a, "-") && name != "" {
			for _, u := range unsupported {
				if name == u || strings.ReplaceAll(name, "_", "-") == u {
					return fail("%s is a llama-bench flag that bin/bench does not implement", a)
				}
			}
		}
	}
	fs.Usage = func() {} // a bad flag gets its error and a pointer to -h, not the whole list
	if err := fs.Parse(normalizeArgs(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "usage: bench -m model.gguf [flags]  (llama-bench's flags where they overlap; lists: a,b  ranges: first-last[+step|*mult])")
			fs.PrintDefaults()
		} else {
			fmt.Fprintln(stderr, "run bench -h for the flags")
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if o.listDevices {
		return &o, nil
	}
	if len(models) == 0 {
		return fail("-m is required")
	}
	o.models = models
	switch {
	case o.reps <= 0:
		return fail("-r must be positive, got %d", o.reps)
	case !validFormat(o.output, false):
		return fail("-o: unknown output format %q (want %s)", o.output, strings.Join(outputFormats, ", "))
	case !validFormat(o.outputErr, true):
		return fail("-oe: unknown output format %q (want none, %s)", o.outputErr, strings.Join(outputFormats, ", "))
	case o.delay < 0:
		return fail("-delay must be >= 0")
	}
	if !hasTest(&o) {
		return fail("no test to run: -p, -n and -pg are all 0 or empty")
	}
	for _, n := range o.nBatch {
		if n <= 0 {
			return fail("-b must be positive, got %d", n)
		}
	}
	for _, n := range o.nUbatch {
		if n <= 0 {
			return fail("-ub must be positive, got %d", n)
		}
	}
	for _, n := range o.threads {
		if n <= 0 {
			return fail("-t must be positive, got %d", n)
		}
	}
	if o.trace != "" {
		if !generates(&o) {
			return fail("-trace records generated tokens: no test generates (-n and -pg's tg are all 0)")
		}
		if msg := outFileProblem(o.trace); msg != "" {
			return fail("-trace %s", msg)
		}
	}
	if *readBW != "" {
		bw, err := parseBandwidth(*readBW)
		if err != nil {
			return fail("-read-bw: %v", err)
		}
		o.readBW = bw
	}
	if o.prefetch && !slices.ContainsFunc(o.budgets, func(b int64) bool { return b > 0 }) {
		return fail("-prefetch reads experts ahead for -budget; give -budget")
	}
	if o.svg != "" {
		sweep := false
		for _, b := range o.budgets {
			sweep = sweep || b > 0
		}
		if !sweep {
			return fail("-svg plots a -budget sweep; give -budget")
		}
		if msg := outFileProblem(o.svg); msg != "" { // found now, not after the sweep
			return fail("-svg %s", msg)
		}
		if o.budgets[0] != 0 && !contains(o.budgets, 0) {
			// The plot compares every budget with plain mmap: run it once
			// per sweep, first, as if -budget had started with none.
			o.budgets = append([]int64{0}, o.budgets...)
		}
	}
	return &o, nil
}

// outFileProblem says why a file cannot be written at path ("" if it
// can, as far as looking tells): no directory to hold it, or a directory
// in its place.
func outFileProblem(path string) string {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Sprintf("%s: no directory %s to write it in", path, filepath.Dir(path))
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return path + " is a directory; give a file name"
	}
	return ""
}

// normalizeArgs turns a bare -fa / --flash-attn (bin/bench's old boolean
// flag) into -fa=1, so that old command lines keep working next to
// llama-bench's -fa on|off|auto.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "-fa" || a == "--fa" || a == "--flash-attn" || a == "-flash-attn" {
			if i+1 == len(args) || (strings.HasPrefix(args[i+1], "-") && args[i+1] != "-1") {
				out = append(out, a+"=1")
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func validFormat(f string, noneOK bool) bool {
	return (noneOK && f == "none") || contains(outputFormats, f)
}

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// generates says whether any tg or pg test generates tokens.
func generates(o *options) bool {
	for _, n := range o.nGen {
		if n > 0 {
			return true
		}
	}
	for _, p := range o.nPG {
		if p.tg > 0 {
			return true
		}
	}
	return false
}

// hasTest says whether any pp, tg or pg test is left after dropping zeros,
// as llama-bench does.
func hasTest(o *options) bool {
	for _, n := range append(append([]int(nil), o.nPrompt...), o.nGen...) {
		if n > 0 {
			return true
		}
	}
	for _, p := range o.nPG {
		if p.pp > 0 || p.tg > 0 {
			return true
		}
	}
	return false
}
