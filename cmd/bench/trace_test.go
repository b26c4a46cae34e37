package main

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-llm/strata/genome/routing"
)

// TestTraceFiles runs -trace end to end on tiny-moe: one file when one
// test generates, one per generating test otherwise, each read back with
// routing.ReadFile holding every generated token of every repetition.
func TestTraceFiles(t *testing.T) {
	model := tinyModel(t, "tiny-moe")
	for _, tc := range []struct {
		name  string
		args  []string
		files map[string]int // file → tokens
	}{
		{"tg", []string{"-p", "0", "-n", "8", "-r", "2"}, map[string]int{"r.trace": 16}},
		{"pp then tg", []string{"-p", "8", "-n", "5", "-r", "2"}, map[string]int{"r.trace": 10}},
		{"tg and pg", []string{"-p", "0", "-n", "4", "-pg", "4,3", "-r", "2"}, map[string]int{"r.1.trace": 8, "r.2.trace": 6}},
		{"pg with a budget", []string{"-p", "0", "-n", "0", "-pg", "4,6", "-r", "3", "-budget", "512KiB"}, map[string]int{"r.trace": 18}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr strings.Builder
			args := append([]string{"-m", model, "-t", "1", "-read-bw", "1GiB/s", "-o", "csv", "-trace", filepath.Join(dir, "r.trace")}, tc.args...)
			if rc := run(args, &stdout, &stderr); rc != 0 {
				t.Fatalf("run: exit %d\n%s", rc, stderr.String())
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.files) {
				t.Errorf("got files %v, want %v", entries, tc.files)
			}
			for name, want := range tc.files {
				tr, err := routing.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if tr.Tokens() != want || tr.Experts != 8 || tr.Used != 2 || len(tr.Layers) != 4 || tr.Layers[0].ExpertBytes == 0 {
					t.Errorf("%s: got %d tokens, %d experts (%d used), %d layers; want %d tokens of tiny-moe's 8 (2), 4",
						name, tr.Tokens(), tr.Experts, tr.Used, len(tr.Layers), want)
				}
				if msg := "generated tokens to " + filepath.Join(dir, name); !strings.Contains(stderr.String(), strconv.Itoa(want)+" "+msg) {
					t.Errorf("stderr does not say %q", msg)
				}
			}
		})
	}
}

// TestTraceErrors covers what -trace refuses: a dense model, a file that
// cannot be created, nothing generated.
func TestTraceErrors(t *testing.T) {
	moe, dense := tinyModel(t, "tiny-moe"), tinyModel(t, "tiny-dense")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, model, trace, gen string
		code                    int
		want                    string
	}{
		{"dense model", dense, filepath.Join(dir, "d.trace"), "2", 1, "-m " + dense + " has no MoE experts"},
		{"a directory", moe, dir, "2", 2, "-trace " + dir + " is a directory"},
		{"no directory", moe, filepath.Join(dir, "none", "r.trace"), "2", 2, "-trace " + filepath.Join(dir, "none", "r.trace") + ": no directory"},
		{"nothing generated", moe, filepath.Join(dir, "p.trace"), "0", 2, "-trace records generated tokens: no test generates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			args := []string{"-m", tc.model, "-p", "4", "-n", tc.gen, "-r", "1", "-t", "1", "-trace", tc.trace}
			if rc := run(args, &stdout, &stderr); rc != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got exit %d, want %d and %q on stderr:\n%s", rc, tc.code, tc.want, stderr.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "d.trace")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dense model's trace file: %v, want none", err)
	}
}

// TestBeladyColumns runs a budget sweep with csv on stdout and the md
// table on stderr: every paged test that generates has Belady's hit rate,
// at least the share the genome served within the budget, and the ratio.
func TestBeladyColumns(t *testing.T) {
	model := tinyModel(t, "tiny-moe")
	var stdout, stderr strings.Builder
	args := []string{"-m", model, "-p", "8", "-n", "16", "-pg", "4,8", "-r", "2", "-t", "1",
		"-budget", "none,256KiB,1MiB", "-read-bw", "1GiB/s", "-o", "csv", "-oe", "md"}
	if rc := run(args, &stdout, &stderr); rc != 0 {
		t.Fatalf("run: exit %d\n%s", rc, stderr.String())
	}
	recs, err := csv.NewReader(strings.NewReader(stdout.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+3*3 {
		t.Fatalf("got %d records, want a header and 9 rows", len(recs))
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	get := func(row []string, name string) (float64, bool) {
		i, ok := col[name]
		if !ok {
			t.Fatalf("no %s column in %v", name, recs[0])
		}
		if row[i] == "" {
			return 0, false
		}
		v, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v, true
	}
	replayed := 0
	for k, row := range recs[1:] {
		budget, _ := get(row, "expert_budget")
		gen, _ := get(row, "n_gen")
		prompt, _ := get(row, "n_prompt")
		hit, _ := get(row, "hit_rate")
		inBudget, ok1 := get(row, "budget_hit_rate")
		belady, ok2 := get(row, "belady_hit_rate")
		ratio, ok3 := get(row, "hit_rate_vs_belady")
		sim, ok4 := get(row, "genome_sim_hit_rate")
		if want := budget > 0 && gen > 0; ok1 != want || ok2 != want || ok3 != want || ok4 != want {
			t.Errorf("row %d (budget %v, n_gen %v): replay columns present %v %v %v %v, want %v", k, budget, gen, ok1, ok2, ok3, ok4, want)
			continue
		}
		if !ok2 {
			continue
		}
		replayed++
		if belady < inBudget || belady < sim || belady <= 0 {
			t.Errorf("row %d: Belady's hit rate %v below the genome's %v (replayed %v)", k, belady, inBudget, sim)
		}
		if prompt == 0 && inBudget < hit {
			t.Errorf("row %d: %v served within the budget, below the hit rate %v", k, inBudget, hit)
		}
		if want := inBudget / belady; ratio < want-1e-5 || ratio > want+1e-5 {
			t.Errorf("row %d: hit_rate_vs_belady %v, want %v", k, ratio, want)
		}
	}
	if replayed != 4 {
		t.Errorf("got %d rows with a replay, want 4 (tg16 and pp4+tg8 at two budgets)", replayed)
	}
	if strings.Contains(stderr.String(), "no Belady replay") {
		t.Errorf("a replay failed:\n%s", stderr.String())
	}
	var header string
	var rows []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "| model ") {
			header = line
		} else if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| --") {
			rows = append(rows, line)
		}
	}
	if !strings.Contains(header, "| hit rate | in budget |   Belady | vs Belady |  MiB/tok |") {
		t.Errorf("md header: %s", header)
	}
	if len(rows) != 9 {
		t.Fatalf("md: got %d rows, want 9", len(rows))
	}
	for _, row := range rows {
		cells := strings.Split(row, "|")
		belady := strings.TrimSpace(cells[len(cells)-7])
		paged := !strings.Contains(row, " mmap |")
		if tg := strings.Contains(row, "tg"); paged && tg {
			if _, err := strconv.ParseFloat(belady, 64); err != nil {
				t.Errorf("md row has no Belady hit rate: %s", row)
			}
		} else if belady != "-" {
			t.Errorf("md row has a Belady hit rate %q: %s", belady, row)
		}
	}
}

// TestTracePath numbers the files of several generating tests.
func TestTracePath(t *testing.T) {
	for _, tc := range []struct {
		base    string
		k       int
		several bool
		want    string
	}{
		{"r.trace", 3, false, "r.trace"},
		{"r.trace", 3, true, "r.3.trace"},
		{"dir.d/r", 12, true, "dir.d/r.12"},
		{"/tmp/a.b.srtg", 1, true, "/tmp/a.b.1.srtg"},
		{".trace", 2, true, ".trace.2"},
	} {
		if got := tracePath(tc.base, tc.k, tc.several); got != tc.want {
			t.Errorf("tracePath(%q, %d, %v): got %q, want %q", tc.base, tc.k, tc.several, got, tc.want)
		}
	}
}

// synthetic is a trace of 2 MoE layers (model layers 0 and 2) of 4
// experts, 1 used, 100 bytes each, routing tokens[i] = {layer 0, layer 2}.
func synthetic(t *testing.T, tokens ...[2]int32) *routing.Trace {
	t.Helper()
	tr, err := routing.NewTrace(routing.Header{Arch: "llama", Model: "synthetic", Blocks: 3, Experts: 4, Used: 1,
		Layers: []routing.Layer{{Index: 0, ExpertBytes: 100}, {Index: 2, ExpertBytes: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if err := tr.Append(tok[:]); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// TestReplayWarmStart checks that the replay starts Belady from the
// experts the genome held, with a stand-in for a layer it held none of,
// and that it says when that start does not fit.
func TestReplayWarmStart(t *testing.T) {
	tr := synthetic(t, [2]int32{0, 1}, [2]int32{0, 1}, [2]int32{0, 2}, [2]int32{0, 1})
	// The genome hit 5 times in Warm and served 1 of its 3 faults from Bench.
	all := repWindow{from: 0, to: 4, st: pagingStats{hits: 5, inBudget: 1, faults: 3}}
	for _, tc := range []struct {
		name     string
		resident []residentExpert
		budget   int64
		hits     int64 // Belady's, of the 8 accesses
		inexact  int
	}{
		// Cold, 2 slots: 0 and 1 miss once each; 2 misses and must be
		// held, in 1's place (used after 0), so 1 misses again.
		{"cold", nil, 200, 4, 0},
		// Warm with 0 and 1: only 2 and then 1 again.
		{"warm", []residentExpert{{0, 0}, {2, 1}}, 200, 6, 0},
		// Layer 2 held nothing: a stand-in it never uses (0) takes the
		// third slot, and Belady gives it up first.
		{"one layer", []residentExpert{{0, 0}}, 300, 6, 0},
		// With one slot the stand-in does not fit beside expert 0, and
		// every access misses.
		{"too small", []residentExpert{{0, 0}}, 100, 0, 1},
		// Experts the generation never uses are dropped to fit.
		{"dead weight", []residentExpert{{0, 0}, {0, 3}, {2, 1}}, 200, 6, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := all
			rw.resident = tc.resident
			got, err := replay(tr, []repWindow{rw}, tc.budget)
			if err != nil {
				t.Fatal(err)
			}
			if got.accesses != 8 || got.belady != tc.hits || got.inexact != tc.inexact {
				t.Errorf("got %d accesses, %d Belady hits, %d inexact; want 8, %d, %d", got.accesses, got.belady, got.inexact, tc.hits, tc.inexact)
			}
			if got.measured != 8 || got.hits != 6 {
				t.Errorf("measured: got %d of %d within the budget, want 6 of 8", got.hits, got.measured)
			}
		})
	}
}
