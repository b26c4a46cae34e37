package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strata-llm/strata/internal/buildinfo"
	"github.com/strata-llm/strata/llama"
)

// result is one test instance over all its repetitions.
type result struct {
	inst        instance
	modelType   string // llama_model_desc
	modelSize   uint64
	modelParams uint64
	cpuInfo     string
	gpuInfo     string
	backends    string
	testTime    time.Time
	samplesNS   []int64   // wall time of each repetition
	samplesTS   []float64 // tokens/s of each repetition
	llamaTS     []float64 // llama.cpp's perf counters, same decodes
	allocs      float64   // Go heap allocations per token, loop only
	paging      *paging   // with a budget
}

// paging is the genome's work over a test's timed repetitions.
type paging struct {
	faults, evictions, hits uint64
	bytesIn                 uint64
	busy                    time.Duration // the decodes' time in the pager
	tokens                  int
	readBW                  float64 // bytes/s; 0 unknown
	prefetch                bool    // -prefetch read experts ahead
	// replay is the test's generation replayed through Belady's optimum
	// and the genome's policy; nil for pp tests or when it did not run.
	replay *replayed
}

// replayed returns p's replay, or nil.
func (p *paging) replayed() *replayed {
	if p == nil {
		return nil
	}
	return p.replay
}

func (p *paging) hitRate() (float64, bool) {
	n := p.hits + p.faults
	if n == 0 {
		return 0, false
	}
	return float64(p.hits) / float64(n), true
}

func (p *paging) bytesPerToken() float64 {
	if p.tokens == 0 {
		return 0
	}
	return float64(p.bytesIn) / float64(p.tokens)
}

// ioLimit is the tokens/s that reading the paged-in bytes alone allows:
// read bandwidth ÷ bytes read per token. There is none when nothing was
// read or the bandwidth is unknown.
func (p *paging) ioLimit() (float64, bool) {
	b := p.bytesPerToken()
	if b == 0 || p.readBW == 0 {
		return 0, false
	}
	return p.readBW / b, true
}

func (r *result) avgTS() float64 { m, _ := meanStd(r.samplesTS); return m }

// loopRatio is Go/C: the Go loop's tokens/s over llama.cpp's own for the
// same decodes. It is only reported for tests that generate.
func (r *result) loopRatio() (float64, bool) {
	c, _ := meanStd(r.llamaTS)
	if r.inst.nGen == 0 || c == 0 {
		return 0, false
	}
	return r.avgTS() / c, true
}

// fieldType is how JSON and SQL type a field, as llama-bench's.
type fieldType int

const (
	typeString fieldType = iota
	typeBool
	typeInt
	typeFloat
)

// field is one column of the csv, json, jsonl and sql outputs.
type field struct {
	name string
	typ  fieldType
	// value formats the field of r; ok false leaves it empty in csv,
	// out of json, and NULL in sql.
	value func(r *result) (v string, ok bool)
}

func str(s string) (string, bool) { return s, true }
func num[T int | int64 | uint64](n T) (string, bool) {
	return strconv.FormatInt(int64(n), 10), true
}
func boolean(b bool) (string, bool) {
	if b {
		return "1", true
	}
	return "0", true
}

// float formats as C++'s std::to_string does (%f), which llama-bench uses.
func float(f float64) (string, bool) { return strconv.FormatFloat(f, 'f', 6, 64), true }

// llamaBenchFields are llama-bench's fields, in its order, with what
// bin/bench ran: settings llama-bench has but bin/bench does not change
// (cpu_mask, poll, the KV cache types, ...) carry the values llama.cpp
// used by default.
var llamaBenchFields = []field{
	{"build_commit", typeString, func(*result) (string, bool) { return str(buildinfo.Commit()) }},
	{"build_number", typeInt, func(*result) (string, bool) { return num(0) }},
	{"cpu_info", typeString, func(r *result) (string, bool) { return str(r.cpuInfo) }},
	{"gpu_info", typeString, func(r *result) (string, bool) { return str(r.gpuInfo) }},
	{"backends", typeString, func(r *result) (string, bool) { return str(r.backends) }},
	{"model_filename", typeString, func(r *result) (string, bool) { return str(r.inst.model) }},
	{"model_type", typeString, func(r *result) (string, bool) { return str(r.modelType) }},
	{"model_size", typeInt, func(r *result) (string, bool) { return num(r.modelSize) }},
	{"model_n_params", typeInt, func(r *result) (string, bool) { return num(r.modelParams) }},
	{"n_batch", typeInt, func(r *result) (string, bool) { return num(r.inst.nBatch) }},
	{"n_ubatch", typeInt, func(r *result) (string, bool) { return num(r.inst.nUbatch) }},
	{"n_threads", typeInt, func(r *result) (string, bool) { return num(r.inst.threads) }},
	{"cpu_mask", typeString, func(*result) (string, bool) { return str("0x0") }},
	{"cpu_strict", typeBool, func(*result) (string, bool) { return boolean(false) }},
	{"poll", typeInt, func(*result) (string, bool) { return num(50) }},
	{"type_k", typeString, func(*result) (string, bool) { return str("f16") }},
	{"type_v", typeString, func(*result) (string, bool) { return str("f16") }},
	{"n_gpu_layers", typeInt, func(r *result) (string, bool) { return num(r.inst.ngl) }},
	{"n_cpu_moe", typeInt, func(r *result) (string, bool) { return num(r.inst.ncmoe) }},
	{"split_mode", typeString, func(r *result) (string, bool) { return str(r.inst.splitMode.String()) }},
	{"main_gpu", typeInt, func(r *result) (string, bool) { return num(r.inst.mainGPU) }},
	{"no_kv_offload", typeBool, func(*result) (string, bool) { return boolean(false) }},
	{"flash_attn", typeInt, func(r *result) (string, bool) { return num(int(r.inst.flashAttn)) }},
	{"devices", typeString, func(r *result) (string, bool) { return str(r.inst.devices.String()) }},
	{"tensor_split", typeString, func(*result) (string, bool) { return str("0.00") }},
	{"tensor_buft_overrides", typeString, func(r *result) (string, bool) { return str(r.overridesString()) }},
	{"load_mode", typeString, func(r *result) (string, bool) { return str(r.loadMode()) }},
	{"lazy_mode", typeString, func(*result) (string, bool) { return str("auto") }},
	{"embeddings", typeBool, func(*result) (string, bool) { return boolean(false) }},
	{"no_op_offload", typeInt, func(*result) (string, bool) { return num(0) }},
	{"no_host", typeBool, func(*result) (string, bool) { return boolean(false) }},
	{"fit_target", typeInt, func(*result) (string, bool) { return num(0) }},
	{"fit_min_ctx", typeInt, func(*result) (string, bool) { return num(0) }},
	{"n_prompt", typeInt, func(r *result) (string, bool) { return num(r.inst.nPrompt) }},
	{"n_gen", typeInt, func(r *result) (string, bool) { return num(r.inst.nGen) }},
	{"n_depth", typeInt, func(r *result) (string, bool) { return num(r.inst.nDepth) }},
	{"test_time", typeString, func(r *result) (string, bool) { return str(r.testTime.UTC().Format("2006-01-02T15:04:05Z")) }},
	{"avg_ns", typeInt, func(r *result) (string, bool) { return num(r.avgNS()) }},
	{"stddev_ns", typeInt, func(r *result) (string, bool) { return num(r.stddevNS()) }},
	{"avg_ts", typeFloat, func(r *result) (string, bool) { return float(r.avgTS()) }},
	{"stddev_ts", typeFloat, func(r *result) (string, bool) { _, s := meanStd(r.samplesTS); return float(s) }},
}

// strataFields follow llama-bench's: what the Go loop costs, and with
// -budget what the genome's paging did.
var strataFields = []field{
	{"llama_avg_ts", typeFloat, func(r *result) (string, bool) { m, _ := meanStd(r.llamaTS); return float(m) }},
	{"loop_ratio", typeFloat, func(r *result) (string, bool) {
		if v, ok := r.loopRatio(); ok {
			return float(v)
		}
		return "", false
	}},
	{"allocs_per_token", typeFloat, func(r *result) (string, bool) { return float(r.allocs) }},
	{"expert_budget", typeInt, func(r *result) (string, bool) { return num(r.inst.budget) }},
	{"prefetch", typeBool, func(r *result) (string, bool) {
		if r.paging == nil {
			return "", false
		}
		return boolean(r.paging.prefetch)
	}},
	{"page_faults", typeInt, pagingInt(func(p *paging) uint64 { return p.faults })},
	{"evictions", typeInt, pagingInt(func(p *paging) uint64 { return p.evictions })},
	{"hits", typeInt, pagingInt(func(p *paging) uint64 { return p.hits })},
	{"hit_rate", typeFloat, pagingFloat(func(p *paging) (float64, bool) { return p.hitRate() })},
	{"budget_hit_rate", typeFloat, replayFloat((*replayed).measuredRate)},
	{"belady_hit_rate", typeFloat, replayFloat((*replayed).beladyRate)},
	{"hit_rate_vs_belady", typeFloat, replayFloat((*replayed).vsBelady)},
	{"genome_sim_hit_rate", typeFloat, replayFloat((*replayed).genomeRate)},
	{"mib_read_per_token", typeFloat, pagingFloat(func(p *paging) (float64, bool) { return p.bytesPerToken() / (1 << 20), true })},
	{"read_bw_mibs", typeFloat, pagingFloat(func(p *paging) (float64, bool) { return p.readBW / (1 << 20), p.readBW > 0 })},
	{"io_limit_ts", typeFloat, pagingFloat(func(p *paging) (float64, bool) { return p.ioLimit() })},
	{"io_limit_frac", typeFloat, func(r *result) (string, bool) {
		if f, ok := r.ioFraction(); ok {
			return float(f)
		}
		return "", false
	}},
}

func pagingInt(get func(*paging) uint64) func(*result) (string, bool) {
	return func(r *result) (string, bool) {
		if r.paging == nil {
			return "", false
		}
		return num(get(r.paging))
	}
}

func pagingFloat(get func(*paging) (float64, bool)) func(*result) (string, bool) {
	return func(r *result) (string, bool) {
		if r.paging == nil {
			return "", false
		}
		if v, ok := get(r.paging); ok {
			return float(v)
		}
		return "", false
	}
}

func replayFloat(get func(*replayed) (float64, bool)) func(*result) (string, bool) {
	return func(r *result) (string, bool) {
		if rp := r.paging.replayed(); rp != nil {
			if v, ok := get(rp); ok {
				return float(v)
			}
		}
		return "", false
	}
}

// ioFraction is the share of the I/O limit the test reached: measured
// tokens/s ÷ (read bandwidth ÷ bytes read per token).
func (r *result) ioFraction() (float64, bool) {
	if r.paging == nil {
		return 0, false
	}
	lim, ok := r.paging.ioLimit()
	if !ok {
		return 0, false
	}
	return r.avgTS() / lim, true
}

// fields is every field of the csv, json, jsonl and sql outputs.
var fields = append(append([]field(nil), llamaBenchFields...), strataFields...)

func (r *result) avgNS() int64 {
	if len(r.samplesNS) == 0 {
		return 0
	}
	return r.totalNS() / int64(len(r.samplesNS))
}

// totalNS is the repetitions' wall time together.
func (r *result) totalNS() int64 {
	var s int64
	for _, v := range r.samplesNS {
		s += v
	}
	return s
}

func (r *result) stddevNS() int64 {
	xs := make([]float64, len(r.samplesNS))
	for i, v := range r.samplesNS {
		xs[i] = float64(v)
	}
	_, s := meanStd(xs)
	return int64(s)
}

func (r *result) overridesString() string {
	var parts []string
	if len(r.inst.overrides) > 0 {
		parts = append(parts, r.inst.overrides.String())
	}
	// -budget places every expert tensor in the CPU buffer type
	// (engine.PagedExperts): say so where llama-bench shows placements.
	if r.inst.budget > 0 {
		parts = append(parts, `\.ffn_(up|down|gate)_exps=CPU`)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ";")
}

func (r *result) loadMode() string {
	if r.inst.noMmap && r.inst.budget == 0 {
		return "none" // -budget maps the file whatever -no-mmap says
	}
	return "mmap"
}

func testName(nPrompt, nGen, nDepth int) string {
	var s string
	switch {
	case nGen == 0:
		s = fmt.Sprintf("pp%d", nPrompt)
	case nPrompt == 0:
		s = fmt.Sprintf("tg%d", nGen)
	default:
		s = fmt.Sprintf("pp%d+tg%d", nPrompt, nGen)
	}
	if nDepth > 0 {
		s += fmt.Sprintf(" @ d%d", nDepth)
	}
	return s
}

// printer writes results in one format: a header before the first, each
// result as its test ends, a footer at the end.
type printer interface {
	header(o *options)
	row(r *result)
	footer()
}

func newPrinter(format string, w io.Writer) printer {
	switch format {
	case "csv":
		return &csvPrinter{w: w}
	case "json":
		return &jsonPrinter{w: w}
	case "jsonl":
		return &jsonlPrinter{w: w}
	case "md":
		return &mdPrinter{w: w}
	case "sql":
		return &sqlPrinter{w: w}
	case "benchstat":
		return &benchstatPrinter{w: w}
	}
	return nil
}

type csvPrinter struct{ w io.Writer }

func (p *csvPrinter) header(*options) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	fmt.Fprintln(p.w, strings.Join(names, ","))
}

func (p *csvPrinter) row(r *result) {
	vals := make([]string, len(fields))
	for i, f := range fields {
		v, ok := f.value(r)
		if ok {
			vals[i] = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
		}
	}
	fmt.Fprintln(p.w, strings.Join(vals, ","))
}

func (p *csvPrinter) footer() {}

// jsonValue formats v as llama-bench does: strings quoted and escaped,
// booleans true/false, numbers as they are.
func jsonValue(t fieldType, v string) string {
	switch t {
	case typeString:
		return jsonString(v)
	case typeBool:
		return strconv.FormatBool(v != "0")
	}
	return v
}

// jsonString quotes s as llama-bench's escape_json does: quotes,
// backslashes and control characters escaped, everything else as it is.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, "\\u%04x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func jsonFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
		if math.IsInf(x, 0) || math.IsNaN(x) {
			s[i] = "0"
		}
	}
	return strings.Join(s, ", ")
}

func jsonInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ", ")
}

type jsonPrinter struct {
	w     io.Writer
	first bool
}

func (p *jsonPrinter) header(*options) { fmt.Fprintln(p.w, "["); p.first = true }

func (p *jsonPrinter) row(r *result) {
	if !p.first {
		fmt.Fprintln(p.w, ",")
	}
	p.first = false
	fmt.Fprintln(p.w, "  {")
	for _, f := range fields {
		if v, ok := f.value(r); ok {
			fmt.Fprintf(p.w, "    %q: %s,\n", f.name, jsonValue(f.typ, v))
		}
	}
	fmt.Fprintf(p.w, "    \"samples_ns\": [ %s ],\n", jsonInts(r.samplesNS))
	fmt.Fprintf(p.w, "    \"samples_ts\": [ %s ]\n", jsonFloats(r.samplesTS))
	fmt.Fprint(p.w, "  }")
}

func (p *jsonPrinter) footer() { fmt.Fprintln(p.w, "\n]") }

type jsonlPrinter struct{ w io.Writer }

func (p *jsonlPrinter) header(*options) {}

func (p *jsonlPrinter) row(r *result) {
	var b strings.Builder
	b.WriteString("{")
	for _, f := range fields {
		if v, ok := f.value(r); ok {
			fmt.Fprintf(&b, "%q: %s, ", f.name, jsonValue(f.typ, v))
		}
	}
	fmt.Fprintf(&b, "\"samples_ns\": [ %s ],", jsonInts(r.samplesNS))
	fmt.Fprintf(&b, "\"samples_ts\": [ %s ]", jsonFloats(r.samplesTS))
	b.WriteString("}")
	fmt.Fprintln(p.w, b.String())
}

func (p *jsonlPrinter) footer() {}

type sqlPrinter struct{ w io.Writer }

func sqlType(t fieldType) string {
	switch t {
	case typeString:
		return "TEXT"
	case typeFloat:
		return "REAL"
	}
	return "INTEGER"
}

func (p *sqlPrinter) header(*options) {
	fmt.Fprintln(p.w, "CREATE TABLE IF NOT EXISTS llama_bench (")
	for i, f := range fields {
		sep := ","
		if i == len(fields)-1 {
			sep = ""
		}
		fmt.Fprintf(p.w, "  %s %s%s\n", f.name, sqlType(f.typ), sep)
	}
	fmt.Fprintln(p.w, ");")
	fmt.Fprintln(p.w)
}

func (p *sqlPrinter) row(r *result) {
	names := make([]string, len(fields))
	vals := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
		if v, ok := f.value(r); ok {
			vals[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		} else {
			vals[i] = "NULL"
		}
	}
	fmt.Fprintf(p.w, "INSERT INTO llama_bench (%s) VALUES (%s);\n", strings.Join(names, ", "), strings.Join(vals, ", "))
}

func (p *sqlPrinter) footer() {}

// mdColumn is one column of the markdown table.
type mdColumn struct {
	name  string // header
	width int    // llama-bench's: negative left-aligns
	value func(r *result) string
}

type mdPrinter struct {
	w    io.Writer
	cols []mdColumn
}

// header picks the columns as llama-bench's markdown printer does (a
// parameter appears when it was given a value other than the default, or
// several), then adds Strata's.
func (p *mdPrinter) header(o *options) {
	add := func(name string, width int, value func(r *result) string) {
		p.cols = append(p.cols, mdColumn{name, width, value})
	}
	add("model", -30, func(r *result) string { return r.modelType })
	add("size", 10, func(r *result) string { return sizeString(r.modelSize) })
	add("params", 10, func(r *result) string { return paramString(r.modelParams) })
	add("backend", -10, func(r *result) string { return r.backends })
	cpu := isCPUBackend(backendsString())
	if !cpu {
		add("ngl", 3, func(r *result) string { return strconv.Itoa(r.inst.ngl) })
	}
	if varied(o.ncmoe, defaults.ncmoe) {
		add("n_cpu_moe", 10, func(r *result) string { return strconv.Itoa(r.inst.ncmoe) })
	}
	if cpu || varied(o.threads, defaults.threads) {
		add("threads", 7, func(r *result) string { return strconv.Itoa(r.inst.threads) })
	}
	if varied(o.nBatch, defaults.nBatch) {
		add("n_batch", 7, func(r *result) string { return strconv.Itoa(r.inst.nBatch) })
	}
	if varied(o.nUbatch, defaults.nUbatch) {
		add("n_ubatch", 8, func(r *result) string { return strconv.Itoa(r.inst.nUbatch) })
	}
	if varied(o.mainGPU, defaults.mainGPU) {
		add("main_gpu", 10, func(r *result) string { return strconv.Itoa(r.inst.mainGPU) })
	}
	if varied(o.splitMode, defaults.splitMode) {
		add("sm", 6, func(r *result) string { return r.inst.splitMode.String() })
	}
	if varied(o.flashAttn, defaults.flashAttn) {
		add("fa", 3, func(r *result) string { return strconv.Itoa(int(r.inst.flashAttn)) })
	}
	if len(o.devices) > 1 || !o.devices[0].auto {
		add("dev", -12, func(r *result) string { return r.inst.devices.String() })
	}
	if len(o.overrides) > 1 || len(o.overrides[0]) > 0 {
		add("ot", -21, func(r *result) string { return r.inst.overrides.String() })
	}
	if o.noMmap {
		add("lm", 10, func(r *result) string { return r.loadMode() })
	}
	add("test", 15, func(r *result) string { return r.inst.testName() })
	add("t/s", 20, func(r *result) string {
		m, s := meanStd(r.samplesTS)
		return fmt.Sprintf("%.2f ± %.2f", m, s)
	})
	// Strata's own columns.
	add("llama.cpp t/s", 13, func(r *result) string { m, _ := meanStd(r.llamaTS); return fmt.Sprintf("%.2f", m) })
	add("Go/C", 6, func(r *result) string {
		if v, ok := r.loopRatio(); ok {
			return fmt.Sprintf("%.4f", v)
		}
		return "-"
	})
	add("allocs/tok", 10, func(r *result) string { return fmt.Sprintf("%.2f", r.allocs) })
	if o.maxBudget() > 0 {
		add("budget", 10, func(r *result) string {
			if r.inst.budget == 0 {
				return "mmap"
			}
			return sizeString(uint64(r.inst.budget))
		})
		orDash := func(v float64, ok bool, f string) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf(f, v)
		}
		add("hit rate", 8, func(r *result) string {
			if r.paging == nil {
				return "-"
			}
			v, ok := r.paging.hitRate()
			return orDash(v, ok, "%.3f")
		})
		replayCol := func(get func(*replayed) (float64, bool)) func(r *result) string {
			return func(r *result) string {
				if rp := r.paging.replayed(); rp != nil {
					v, ok := get(rp)
					return orDash(v, ok, "%.3f")
				}
				return "-"
			}
		}
		add("in budget", 9, replayCol((*replayed).measuredRate))
		add("Belady", 8, replayCol((*replayed).beladyRate))
		add("vs Belady", 9, replayCol((*replayed).vsBelady))
		add("MiB/tok", 8, func(r *result) string {
			if r.paging == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f", r.paging.bytesPerToken()/(1<<20))
		})
		add("I/O limit t/s", 13, func(r *result) string {
			if r.paging == nil {
				return "-"
			}
			v, ok := r.paging.ioLimit()
			return orDash(v, ok, "%.2f")
		})
		add("of limit", 8, func(r *result) string {
			v, ok := r.ioFraction()
			return orDash(v, ok, "%.3f")
		})
	}

	var h, sep strings.Builder
	h.WriteString("|")
	sep.WriteString("|")
	for _, c := range p.cols {
		fmt.Fprintf(&h, " %*s |", c.width, c.name)
		w := c.width
		align := "-"
		if w > 0 {
			align = ":"
		} else {
			w = -w
		}
		if n := utf8.RuneCountInString(c.name); w < n {
			w = n
		}
		fmt.Fprintf(&sep, " %s%s |", strings.Repeat("-", w-1), align)
	}
	fmt.Fprintln(p.w, h.String())
	fmt.Fprintln(p.w, sep.String())
}

func (p *mdPrinter) row(r *result) {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range p.cols {
		v := c.value(r)
		// Pad by runes, not bytes ("±" is two bytes; llama-bench widens
		// the t/s column by one for it).
		w := c.width
		pad := max(abs(w)-utf8.RuneCountInString(v), 0)
		if w < 0 {
			fmt.Fprintf(&b, " %s%s |", v, strings.Repeat(" ", pad))
		} else {
			fmt.Fprintf(&b, " %s%s |", strings.Repeat(" ", pad), v)
		}
	}
	fmt.Fprintln(p.w, b.String())
}

func (p *mdPrinter) footer() {
	fmt.Fprintf(p.w, "\nbuild: %s (%d)\n", buildinfo.Commit(), 0)
}

// benchstatPrinter writes lines golang.org/x/perf/cmd/benchstat reads,
// one per repetition.
type benchstatPrinter struct{ w io.Writer }

func (p *benchstatPrinter) header(*options) {
	fmt.Fprintf(p.w, "goos: %s\ngoarch: %s\npkg: github.com/strata-llm/strata/cmd/bench\n", runtime.GOOS, runtime.GOARCH)
}

func (p *benchstatPrinter) row(r *result) {
	t := strings.NewReplacer(" @ ", "@", "+", "_").Replace(r.inst.testName())
	name := fmt.Sprintf("Benchmark%s/model=%s/t=%d", strings.ToUpper(t[:1])+t[1:], sanitize(r.modelType), r.inst.threads)
	if r.inst.budget > 0 {
		name += "/budget=" + sanitize(sizeString(uint64(r.inst.budget)))
	}
	extra := ""
	if v, ok := r.loopRatio(); ok {
		extra += fmt.Sprintf("\t%.4f loop-ratio", v)
	}
	if r.paging != nil {
		if h, ok := r.paging.hitRate(); ok {
			extra += fmt.Sprintf("\t%.4f hit-rate", h)
		}
		if b, ok := r.paging.replayed().beladyRate(); ok {
			extra += fmt.Sprintf("\t%.4f belady-hit-rate", b)
		}
		extra += fmt.Sprintf("\t%.3f MiB-read/token", r.paging.bytesPerToken()/(1<<20))
	}
	for i, ts := range r.samplesTS {
		fmt.Fprintf(p.w, "%s\t1\t%d ns/op\t%.2f tokens/s%s\t%.2f allocs/token\n", name, r.samplesNS[i], ts, extra, r.allocs)
	}
}

func (p *benchstatPrinter) footer() {}

func (o *options) maxBudget() int64 {
	var m int64
	for _, b := range o.budgets {
		m = max(m, b)
	}
	return m
}

// backendsString is llama-bench's backends field: the registered backends
// other than the CPU, or "CPU".
func backendsString() string {
	var names []string
	for _, n := range llama.Backends() {
		if n != "CPU" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "CPU"
	}
	return strings.Join(names, ",")
}

func isCPUBackend(b string) bool {
	return strings.Contains(b, "CPU") || strings.Contains(b, "BLAS") || strings.Contains(b, "ZenDNN")
}

// deviceInfo is llama-bench's cpu_info and gpu_info: the descriptions of
// the CPU (and accelerator) devices, and of the GPUs.
func deviceInfo() (cpu, gpu string) {
	var c, g []string
	for _, d := range llama.Devices() {
		switch d.Type {
		case llama.DeviceCPU, llama.DeviceAccel:
			c = append(c, d.Description)
		case llama.DeviceGPU, llama.DeviceIGPU:
			g = append(g, d.Description)
		}
	}
	return strings.Join(c, ", "), strings.Join(g, ", ")
}

// varied says whether a parameter was given several values or another
// than its default, which is when llama-bench's table shows it.
func varied[T comparable](given, def []T) bool {
	return len(given) > 1 || !slices.Equal(given, def)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
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
