package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

func TestMain(m *testing.M) {
	llama.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(m.Run())
}

func tinyModel(tb testing.TB, preset string) string {
	tb.Helper()
	spec, err := modelgen.Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), preset+".gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestRunSweep runs the bench end to end on a tiny MoE model: a budget
// sweep with its mmap baseline, pp, tg and pg tests at two depths, JSON
// on stdout, the SVG plot and a CPU profile.
func TestRunSweep(t *testing.T) {
	model := tinyModel(t, "tiny-moe")
	dir := t.TempDir()
	svg, prof := filepath.Join(dir, "sweep.svg"), filepath.Join(dir, "cpu.pprof")
	var stdout, stderr strings.Builder
	args := []string{"-m", model, "-p", "8", "-n", "4", "-pg", "4,2", "-d", "0,4", "-r", "1", "-t", "1",
		"-budget", "256KiB,1MiB", "-svg", svg, "-read-bw", "1GiB/s", "-o", "json", "-cpuprofile", prof}
	if rc := run(args, &stdout, &stderr); rc != 0 {
		t.Fatalf("run: exit %d\n%s", rc, stderr.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &rows); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	// mmap (added for -svg) and two budgets × two depths × pp8, tg4, pp4+tg2.
	if len(rows) != 3*2*3 {
		t.Fatalf("got %d rows, want 18", len(rows))
	}
	tests := map[string]int{}
	for i, r := range rows {
		budget := r["expert_budget"].(float64)
		_, hasHit := r["hit_rate"]
		if (budget > 0) != hasHit {
			t.Errorf("row %d: budget %v, hit_rate present %v", i, budget, hasHit)
		}
		if budget > 0 {
			if r["read_bw_mibs"] != 1024.0 || r["mib_read_per_token"].(float64) <= 0 || r["io_limit_frac"] == nil {
				t.Errorf("row %d: paging fields %v", i, r)
			}
		}
		// Belady's hit rate replays the generated tokens: tg and pg.
		if _, ok := r["belady_hit_rate"]; ok != (budget > 0 && r["n_gen"].(float64) > 0) {
			t.Errorf("row %d: budget %v, n_gen %v, belady_hit_rate present %v", i, budget, r["n_gen"], ok)
		}
		if r["avg_ts"].(float64) <= 0 || len(r["samples_ns"].([]any)) != 1 {
			t.Errorf("row %d: %v", i, r)
		}
		tests[testName(int(r["n_prompt"].(float64)), int(r["n_gen"].(float64)), int(r["n_depth"].(float64)))]++
	}
	for _, name := range []string{"pp8", "tg4", "pp4+tg2", "pp8 @ d4", "tg4 @ d4", "pp4+tg2 @ d4"} {
		if tests[name] != 3 {
			t.Errorf("%s: %d rows, want 3 (mmap and two budgets)", name, tests[name])
		}
	}
	doc, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	c := svgCounts(t, string(doc))
	if c["circle.ts"] != 12 || c["line.mmap"] != 6 || c["circle.belady"] != 8 || c["polyline.belady"] != 4 {
		t.Errorf("SVG: %v", c)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("CPU profile: %v", err)
	}
	if !strings.Contains(stderr.String(), "bench: test 18/18: pp4+tg2 @ d4, t=1, experts in 1.00 MiB") {
		t.Errorf("progress on stderr:\n%s", stderr.String())
	}
}

// TestRunMarkdown runs the default table on a dense model, with -oe csv
// on stderr and a device list.
func TestRunMarkdown(t *testing.T) {
	model := tinyModel(t, "tiny-dense")
	var stdout, stderr strings.Builder
	if rc := run([]string{"-m", model, "-p", "16", "-n", "4", "-r", "2", "-t", "1", "-dev", "none", "-oe", "csv"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("run: exit %d\n%s", rc, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "| model ") || !strings.Contains(lines[0], "| dev          |") ||
		!strings.Contains(lines[2], " none         |            pp16 |") || !strings.Contains(lines[3], "tg4") {
		t.Errorf("table:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "\nbuild_commit,build_number,cpu_info,") || !strings.Contains(stderr.String(), `"none","mmap","auto"`) {
		t.Errorf("no CSV on stderr:\n%s", stderr.String())
	}

	stdout.Reset()
	if rc := run([]string{"-list-devices"}, &stdout, &stderr); rc != 0 || !strings.HasPrefix(stdout.String(), "Available devices:\n") {
		t.Errorf("-list-devices: exit %d, %q", rc, stdout.String())
	}
	if rc := run([]string{"-m", model, "-dev", "CPU"}, &stdout, &stderr); rc != 1 || !strings.Contains(stderr.String(), "-dev CPU: a CPU device") {
		t.Errorf("-dev CPU: exit %d\n%s", rc, stderr.String())
	}
	// A missing model among several stops the run before any test, so no
	// output is left half written.
	stdout.Reset()
	stderr.Reset()
	if rc := run([]string{"-m", model + ",/no/such.gguf", "-p", "16", "-n", "0", "-o", "json"}, &stdout, &stderr); rc != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "/no/such.gguf") {
		t.Errorf("missing second model: exit %d, stdout %q, stderr %q", rc, stdout.String(), stderr.String())
	}
	// So does a dense model given -budget.
	stdout.Reset()
	stderr.Reset()
	if rc := run([]string{"-m", model, "-p", "0", "-n", "4", "-budget", "none,1MiB", "-o", "json"}, &stdout, &stderr); rc != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "no MoE experts") {
		t.Errorf("-budget on a dense model: exit %d, stdout %q, stderr %q", rc, stdout.String(), stderr.String())
	}
}
