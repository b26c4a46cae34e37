package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-llm/strata/genome/routing"
)

// writeTrace writes a random trace of 4 MoE layers (of 5; layer 0 is
// dense), 16 experts of 1 MiB, 2 used, and returns its path. sized false
// leaves the expert sizes unknown.
func writeTrace(t *testing.T, tokens int, sized bool) string {
	t.Helper()
	h := routing.Header{Arch: "llama", Model: "tiny-moe", Blocks: 5, Experts: 16, Used: 2}
	for l := 1; l < 5; l++ {
		size := int64(0)
		if sized {
			size = 1 << 20
		}
		h.Layers = append(h.Layers, routing.Layer{Index: l, ExpertBytes: size})
	}
	path := filepath.Join(t.TempDir(), "run.trace")
	w, err := routing.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	row := make([]int32, h.RowLen())
	for range tokens {
		for l := range h.Layers {
			a := int32(r.IntN(8)) // a skewed router: half the experts
			b := (a + 1 + int32(r.IntN(15))) % 16
			row[2*l], row[2*l+1] = a, b
		}
		if err := w.Append(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runPagingCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"paging"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPagingSimCommand(t *testing.T) {
	path := writeTrace(t, 400, true)
	unsized := writeTrace(t, 50, false)
	data, _ := os.ReadFile(path)
	corrupt := filepath.Join(t.TempDir(), "corrupt.trace")
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(corrupt, bad, 0o600)
	truncated := filepath.Join(t.TempDir(), "truncated.trace")
	os.WriteFile(truncated, data[:len(data)-16], 0o600)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{"slots", []string{"sim", path, "-capacity", "4,16"}, 0,
			[]string{"400 tokens, 4 MoE layers of 5, 16 experts (2 used), 1 MiB per expert", "| capacity | slots | lru | lfu | arc | genome | expected | belady |", "| 4 slots | 4 |", "| 16 slots | 16 |", "×) |"}, nil},
		{"budget before file", []string{"sim", "-budget", "2MiB,8MiB", path}, 0, []string{"| 2 MiB | 2 |", "| 8 MiB | 8 |"}, nil},
		{"default capacities", []string{"sim", path}, 0, []string{"| 8 slots | 8 |", "| 16 slots | 16 |", "| 32 slots | 32 |"}, nil},
		{"genome refuses", []string{"sim", path, "-budget", "768KiB"}, 0, []string{"n/a", "note: genome at 768 KiB", "page larger than tier limit"}, nil},
		{"truncated", []string{"sim", truncated, "-capacity", "8"}, 0, []string{"| 8 slots |"}, []string{"warning", "no end record", "using its 400 complete tokens"}},
		{"corrupt", []string{"sim", corrupt}, 1, nil, []string{"checksum mismatch", "offset"}},
		{"budget without sizes", []string{"sim", unsized, "-budget", "1GiB"}, 1, nil, []string{"no expert sizes"}},
		{"both", []string{"sim", path, "-capacity", "4", "-budget", "1GiB"}, 2, nil, []string{"not both"}},
		{"bad capacity", []string{"sim", path, "-capacity", "4,x"}, 1, nil, []string{`bad slot count "x"`}},
		{"bad budget", []string{"sim", path, "-budget", "lots"}, 1, nil, []string{"bad size"}},
		{"bad format", []string{"sim", path, "-o", "xml"}, 2, nil, nil},
		{"no file", []string{"sim"}, 2, nil, []string{"want one TRACE"}},
		{"missing file", []string{"sim", filepath.Join(t.TempDir(), "none")}, 1, nil, []string{"no such file"}},
		{"unknown subcommand", []string{"replay"}, 2, nil, nil},
		{"no subcommand", nil, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPagingCmd(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code: got %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout: got %q, want it to contain %q", out, want)
				}
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr: got %q, want it to contain %q", errOut, want)
				}
			}
		})
	}
}

// TestPagingSimFormats checks the machine-readable outputs: every
// policy at every capacity, Belady's ratio 1, and no policy above it.
func TestPagingSimFormats(t *testing.T) {
	path := writeTrace(t, 300, true)
	code, out, errOut := runPagingCmd(t, "sim", path, "-capacity", "3,12", "-o", "csv")
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+2*len(routing.Policies) || strings.Join(recs[0], ",") != strings.Join(simColumns, ",") {
		t.Fatalf("csv: got %d records, header %v; want %d and %v", len(recs), recs[0], 1+2*len(routing.Policies), simColumns)
	}
	for _, rec := range recs[1:] {
		ratio, err := strconv.ParseFloat(rec[8], 64)
		if err != nil {
			t.Fatalf("csv row %v: vs_belady: %v", rec, err)
		}
		if (rec[3] == "belady" && ratio != 1) || ratio > 1 {
			t.Errorf("csv row %v: got vs_belady %v, want ≤ 1 (1 for belady)", rec, ratio)
		}
	}

	code, out, errOut = runPagingCmd(t, "sim", path, "-capacity", "3,12", "-o", "json")
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var rows []struct {
		Capacity string   `json:"capacity"`
		Slots    int      `json:"slots"`
		Policy   string   `json:"policy"`
		Accesses int64    `json:"accesses"`
		Hits     int64    `json:"hits"`
		HitRate  float64  `json:"hit_rate"` // every row here ran
		VsBelady *float64 `json:"vs_belady"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(rows) != 2*len(routing.Policies) {
		t.Fatalf("json: got %d rows, want %d", len(rows), 2*len(routing.Policies))
	}
	for _, r := range rows {
		if r.Accesses == 0 || r.VsBelady == nil || *r.VsBelady > 1 || r.HitRate != float64(r.Hits)/float64(r.Accesses) {
			t.Errorf("json row %+v: want accesses, a ratio ≤ 1 and hit_rate = hits/accesses", r)
		}
	}

	// A policy that could not run (the genome refuses a page larger than
	// its tier) has no hit rate and no ratio, not 0.
	code, out, errOut = runPagingCmd(t, "sim", path, "-budget", "768KiB", "-o", "csv")
	if code != 0 {
		t.Fatalf("csv, genome refusing: exit %d: %s", code, errOut)
	}
	recs, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs[1:] {
		if rec[3] == "genome" && (rec[7] != "" || rec[8] != "" || rec[9] == "") {
			t.Errorf("csv genome row %v: want no hit rate, no ratio and the error", rec)
		}
	}
}

func TestPagingStatsCommand(t *testing.T) {
	path := writeTrace(t, 500, true)
	code, out, errOut := runPagingCmd(t, "stats", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"| layer | top eighth (2 of 16) | reuse | touched ≤ 300 tokens | distinct |",
		"\n| 1 | ", "\n| 4 | ", "\n| mean | ", "\n| min | ", "\n| max | ",
		"top eighth's share of routings: layers", "calibration target 0.25..0.45",
		"touched within 300 tokens: layers 1.000..1.000, calibration target 0.75..1.00: every layer in range",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout: got %q, want it to contain %q", out, want)
		}
	}
	// This router is flatter and less local than real ones (top eighth
	// about 0.2, reuse about 0.16): the verdict must say so.
	if !strings.Contains(out, "OUT OF RANGE") {
		t.Errorf("stdout: got %q, want an out-of-range verdict for the skewed router", out)
	}

	code, out, errOut = runPagingCmd(t, "stats", "-within", "10", "-o", "json", path)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var s routing.TraceStats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Tokens != 500 || s.Within != 10 || len(s.Layers) != 4 || s.Layers[0].Layer != 1 {
		t.Errorf("json: got %d tokens, within %d, %d layers (first %d); want 500, 10, 4 (1)", s.Tokens, s.Within, len(s.Layers), s.Layers[0].Layer)
	}
	for _, args := range [][]string{{"stats"}, {"stats", path, "-within", "0"}, {"stats", path, "-o", "csv"}} {
		if code, _, _ := runPagingCmd(t, args...); code != 2 {
			t.Errorf("%v: got exit %d, want 2", args, code)
		}
	}
}
