package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-llm/strata/internal/buildinfo"
	"github.com/strata-llm/strata/llama"
)

// upstreamFields reads llama-bench's field list out of the vendored
// source (test::get_fields), so the test follows the release in the tree.
func upstreamFields(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../../third_party/llama.cpp/tools/llama-bench/llama-bench.cpp")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)get_fields\(\) \{\s*static const std::vector<std::string> fields = \{(.*?)\};`).FindSubmatch(src)
	if block == nil {
		t.Fatal("llama-bench.cpp: test::get_fields not found")
	}
	var names []string
	for _, m := range regexp.MustCompile(`"([a-z_0-9]+)"`).FindAllSubmatch(block[1], -1) {
		names = append(names, string(m[1]))
	}
	if len(names) < 30 {
		t.Fatalf("llama-bench.cpp: found only %d fields: %v", len(names), names)
	}
	return names
}

// sampleResults are a plain row and a paged one.
func sampleResults() []*result {
	base := instance{model: "m.gguf", nBatch: 2048, nUbatch: 512, threads: 2, ngl: -1,
		devices: devices{auto: true}, flashAttn: llama.FlashAttentionAuto}
	plain := &result{
		inst: base, modelType: `llama 1B "Q4_0"`, modelSize: 548241568, modelParams: 974210000,
		cpuInfo: "AMD EPYC", backends: "CPU", testTime: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		samplesNS: []int64{2e9, 2.2e9}, samplesTS: []float64{256, 232.7}, llamaTS: []float64{257, 233}, allocs: 0.01,
	}
	plain.inst.nPrompt = 512
	paged := &result{
		inst: base, modelType: "llama 8x?B Q8_0", modelSize: 6 << 30, modelParams: 5.8e9, backends: "CPU",
		samplesNS: []int64{4e9}, samplesTS: []float64{8}, llamaTS: []float64{8.1}, allocs: 431,
		paging: &paging{faults: 300, hits: 700, evictions: 290, bytesIn: 32 * 6 << 20, tokens: 32, readBW: 1600 << 20,
			replay: &replayed{accesses: 1000, measured: 1000, hits: 800, belady: 900, genome: 850}},
	}
	paged.inst.nGen, paged.inst.budget = 32, 3<<29
	return []*result{plain, paged}
}

func render(t *testing.T, format string, o *options) string {
	t.Helper()
	var b strings.Builder
	p := newPrinter(format, &b)
	p.header(o)
	for _, r := range sampleResults() {
		p.row(r)
	}
	p.footer()
	return b.String()
}

func names(fs []field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

func TestFieldsMatchLlamaBench(t *testing.T) {
	eq(t, "llama-bench fields", names(llamaBenchFields), upstreamFields(t))
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.name] {
			t.Errorf("field %s twice", f.name)
		}
		seen[f.name] = true
	}
}

func TestCSV(t *testing.T) {
	recs, err := csv.NewReader(strings.NewReader(render(t, "csv", &defaults))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want a header and 2 rows", len(recs))
	}
	eq(t, "header", recs[0][:len(llamaBenchFields)], upstreamFields(t))
	eq(t, "strata header", recs[0][len(llamaBenchFields):], names(strataFields))
	row := map[string]string{}
	for i, name := range recs[0] {
		row[name] = recs[2][i]
	}
	for name, want := range map[string]string{
		"model_type": "llama 8x?B Q8_0", "n_gen": "32", "n_prompt": "0", "avg_ns": "4000000000",
		"avg_ts": "8.000000", "expert_budget": "1610612736", "hit_rate": "0.700000",
		"mib_read_per_token": "6.000000", "io_limit_ts": "266.666667", "io_limit_frac": "0.030000",
		"budget_hit_rate": "0.800000", "belady_hit_rate": "0.900000", "hit_rate_vs_belady": "0.888889",
		"genome_sim_hit_rate": "0.850000",
	} {
		if row[name] != want {
			t.Errorf("%s: got %q, want %q", name, row[name], want)
		}
	}
	for i, name := range recs[0] {
		if i >= len(llamaBenchFields) && recs[1][i] != "" && !contains([]string{"llama_avg_ts", "loop_ratio", "allocs_per_token", "expert_budget"}, name) {
			t.Errorf("the unpaged row has %s %q", name, recs[1][i])
		}
	}
}

func TestJSON(t *testing.T) {
	var rows []map[string]any
	if err := json.Unmarshal([]byte(render(t, "json", &defaults)), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	for _, name := range append(upstreamFields(t), "samples_ns", "samples_ts", "llama_avg_ts", "allocs_per_token") {
		if _, ok := rows[0][name]; !ok {
			t.Errorf("row 0 has no %s", name)
		}
	}
	if rows[0]["model_type"] != `llama 1B "Q4_0"` || rows[0]["cpu_strict"] != false || rows[0]["n_prompt"] != 512.0 {
		t.Errorf("row 0: %v", rows[0])
	}
	if _, ok := rows[0]["hit_rate"]; ok {
		t.Error("an unpaged row has a hit_rate")
	}
	if rows[1]["hit_rate"] != 0.7 || rows[1]["belady_hit_rate"] != 0.9 || rows[1]["genome_sim_hit_rate"] != 0.85 || len(rows[1]["samples_ts"].([]any)) != 1 {
		t.Errorf("row 1: %v", rows[1])
	}
}

func TestJSONL(t *testing.T) {
	sc := bufio.NewScanner(strings.NewReader(render(t, "jsonl", &defaults)))
	n := 0
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if row["model_filename"] != "m.gguf" || row["avg_ts"] == nil {
			t.Errorf("line %d: %v", n+1, row)
		}
		n++
	}
	if n != 2 {
		t.Errorf("got %d lines, want 2", n)
	}
}

func TestSQL(t *testing.T) {
	out := render(t, "sql", &defaults)
	create, inserts, _ := strings.Cut(out, ");\n\n")
	var cols []string
	for _, line := range strings.Split(strings.TrimSpace(create), "\n")[1:] {
		cols = append(cols, strings.Fields(line)[0])
	}
	eq(t, "columns", cols[:len(llamaBenchFields)], upstreamFields(t))
	lines := strings.Split(strings.TrimSpace(inserts), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "INSERT INTO llama_bench (build_commit, build_number, cpu_info,") {
		t.Fatalf("inserts: %q", inserts)
	}
	if !strings.Contains(lines[0], `'llama 1B "Q4_0"'`) || !strings.Contains(lines[0], "NULL") || !strings.Contains(lines[1], "'0.700000', '0.800000', '0.900000', '0.888889', '0.850000'") {
		t.Errorf("inserts: %q", inserts)
	}
}

// TestMarkdown holds the table to llama-bench's: its columns and widths,
// then Strata's.
func TestMarkdown(t *testing.T) {
	lines := strings.Split(render(t, "md", &defaults), "\n")
	// llama-bench's own header on a CPU build with default flags.
	const upstream = "| model                          |       size |     params | backend    | threads |            test |                  t/s |"
	if !strings.HasPrefix(lines[0], upstream) {
		t.Errorf("header\n got %s\nwant %s...", lines[0], upstream)
	}
	if !strings.HasSuffix(lines[0], " llama.cpp t/s |   Go/C | allocs/tok |") {
		t.Errorf("header: %s", lines[0])
	}
	if !strings.HasPrefix(lines[1], "| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |") {
		t.Errorf("separator: %s", lines[1])
	}
	if want := "|       2 |           pp512 |       244.35 ± 16.48 |"; !strings.Contains(lines[2], want) {
		t.Errorf("row: %s, want it to contain %s", lines[2], want)
	}
	if lines[len(lines)-2] != "build: "+buildinfo.Commit()+" (0)" {
		t.Errorf("footer: %q", lines[len(lines)-2])
	}

	o := defaults
	o.budgets = []int64{0, 3 << 29}
	o.flashAttn = []llama.FlashAttention{llama.FlashAttentionOff}
	lines = strings.Split(render(t, "md", &o), "\n")
	for _, col := range []string{"|  fa |", "|     budget |", " hit rate |", " in budget |", " Belady |", " vs Belady |", " MiB/tok |", " I/O limit t/s |", " of limit |"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %s has no %q", lines[0], col)
		}
	}
	if !strings.Contains(lines[3], "|   1.50 GiB |    0.700 |     0.800 |    0.900 |     0.889 |     6.00 |        266.67 |    0.030 |") {
		t.Errorf("paged row: %s", lines[3])
	}
	if !strings.Contains(lines[2], "|       mmap |        - |         - |        - |         - |        - |             - |        - |") {
		t.Errorf("mmap row: %s", lines[2])
	}
}

func TestBenchstat(t *testing.T) {
	out := render(t, "benchstat", &defaults)
	for _, want := range []string{
		"pkg: github.com/strata-llm/strata/cmd/bench\n",
		"BenchmarkPp512/model=llama_1B_\"Q4_0\"/t=2\t1\t2000000000 ns/op\t256.00 tokens/s\t0.01 allocs/token\n",
		"BenchmarkTg32/model=llama_8x?B_Q8_0/t=2/budget=1.50_GiB\t1\t4000000000 ns/op\t8.00 tokens/s\t0.9877 loop-ratio\t0.7000 hit-rate\t0.9000 belady-hit-rate\t6.000 MiB-read/token\t431.00 allocs/token\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, out)
		}
	}
}

func TestJSONString(t *testing.T) {
	for in, want := range map[string]string{"a": `"a"`, `q"\`: `"q\"\\"`, "\x01\n": `"\u0001\u000a"`, "±": `"±"`} {
		if got := jsonString(in); got != want {
			t.Errorf("jsonString(%q): got %s, want %s", in, got, want)
		}
		var s string
		if err := json.Unmarshal([]byte(jsonString(in)), &s); err != nil || s != in {
			t.Errorf("jsonString(%q) decodes to %q, %v", in, s, err)
		}
	}
}
