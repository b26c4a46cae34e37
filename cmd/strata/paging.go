package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome/routing"
)

func init() {
	register(command{name: "paging", summary: "replay a routing trace: cache-policy hit rates against Belady, routing statistics", run: runPaging})
}

const pagingUsage = `usage:
  strata paging sim TRACE [-capacity 16,32,64 | -budget 1GiB,1.5GiB] [-o md|csv|json]
  strata paging stats TRACE [-within 300] [-o md|json]

sim replays the MoE routing recorded in TRACE (bench -trace, or
engine.TraceRecorder) through LRU, LFU, ARC, the genome's own policy,
"expected" (evict the expert whose next use is expected farthest away,
knowing each expert's frequency over the trace but not the order of the
draws: about what a policy can reach without predicting the routing) and
Belady's optimum, and prints each policy's hit rate at each capacity and
its ratio to Belady's. -capacity counts expert slots over all layers;
-budget is bytes, each expert costing its layer's size from the trace
header. The genome's capacity is shaped as engine.NewBudget shapes it:
all of it Warm, whose policy ranks the experts by their expected wait in
the cycle of layers (genome.WarmShare, genome.PolicyCycle).
Without either flag: an eighth, a quarter and a half of all experts.

stats prints, per MoE layer and over the layers, the share of routings
the top eighth of experts takes, the fraction of a token's experts the
previous token also chose, the fraction of experts touched within the
first -within tokens, and the distinct experts touched, next to the
ranges DESIGN.md calibrates benchmark routers to.
`

func runPaging(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, pagingUsage)
		return errUsage
	}
	switch args[0] {
	case "sim":
		return pagingSim(args[1:], stdout, stderr)
	case "stats":
		return pagingStats(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, pagingUsage)
		return flag.ErrHelp
	}
	fmt.Fprintf(stderr, "strata paging: unknown subcommand %q\n\n%s", args[0], pagingUsage)
	return errUsage
}

// readTrace reads the one TRACE argument. A truncated trace (a run that
// never closed its writer) is used as far as it goes, with a warning.
func readTrace(name string, files []string, stderr io.Writer) (*routing.Trace, string, error) {
	if len(files) != 1 {
		fmt.Fprintf(stderr, "strata paging %s: want one TRACE, got %d\n\n%s", name, len(files), pagingUsage)
		return nil, "", errUsage
	}
	t, err := routing.ReadFile(files[0])
	if errors.Is(err, routing.ErrTruncated) && t != nil {
		fmt.Fprintf(stderr, "strata paging %s: warning: %v; using its %d complete tokens\n", name, err, t.Tokens())
		err = nil
	}
	return t, files[0], err
}

// describe is the one-line summary of a trace both subcommands print.
func describe(path string, t *routing.Trace) string {
	size := "expert size unknown"
	if b := t.Layers[0].ExpertBytes; b > 0 {
		size = routing.FormatBytes(b) + " per expert"
		for _, l := range t.Layers {
			if l.ExpertBytes != b {
				size = "expert sizes differ by layer"
			}
		}
	}
	return fmt.Sprintf("%s: %s %q, %d tokens, %d MoE layers of %d, %d experts (%d used), %s",
		path, orNone(t.Arch), t.Model, t.Tokens(), len(t.Layers), t.Blocks, t.Experts, t.Used, size)
}

func pagingSim(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("paging sim", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pagingUsage) }
	capFlag := fs.String("capacity", "", "comma-separated `slots`: experts resident, over all layers")
	budgetFlag := fs.String("budget", "", "comma-separated byte `budgets` (512MiB, 1.5GiB)")
	format := fs.String("o", "md", "output `format`: md, csv or json")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *format != "md" && *format != "csv" && *format != "json" {
		fmt.Fprintf(stderr, "strata paging sim: -o %q: want md, csv or json\n", *format)
		return errUsage
	}
	if *capFlag != "" && *budgetFlag != "" {
		fmt.Fprintln(stderr, "strata paging sim: give -capacity or -budget, not both")
		return errUsage
	}
	t, path, err := readTrace("sim", files, stderr)
	if err != nil {
		return err
	}
	w := routing.NewWorkload(t)
	var caps []routing.Capacity
	switch {
	case *capFlag != "":
		for _, s := range strings.Split(*capFlag, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				return fmt.Errorf("-capacity: bad slot count %q", s)
			}
			caps = append(caps, routing.Capacity{Slots: n})
		}
	case *budgetFlag != "":
		for _, s := range strings.Split(*budgetFlag, ",") {
			n, err := engine.ParseBytes(s)
			if err != nil {
				return fmt.Errorf("-budget: %w", err)
			}
			caps = append(caps, routing.Capacity{Bytes: n})
		}
	default:
		for _, d := range []int{8, 4, 2} {
			caps = append(caps, routing.Capacity{Slots: max(w.Pages()/d, 1)})
		}
	}
	rows := make([]simRow, 0, len(caps)*len(routing.Policies))
	for _, c := range caps {
		var group []simRow
		for _, p := range routing.Policies {
			r, err := w.Run(p, c)
			if err != nil {
				return err
			}
			group = append(group, simRow{Result: r})
		}
		best := group[len(group)-1].HitRate() // Belady is last
		for i := range group {
			group[i].ratio = math.NaN()
			if best > 0 && group[i].Err == nil {
				group[i].ratio = group[i].HitRate() / best
			}
		}
		rows = append(rows, group...)
	}
	switch *format {
	case "csv":
		return simCSV(stdout, rows)
	case "json":
		return simJSON(stdout, rows)
	}
	fmt.Fprintln(stdout, describe(path, t))
	fmt.Fprintf(stdout, "%d page-ins (each token, layer and distinct expert), %d distinct experts of %d\n\n", w.Accesses(), w.Distinct(), w.Pages())
	fmt.Fprint(stdout, "| capacity | slots |")
	for _, p := range routing.Policies {
		fmt.Fprintf(stdout, " %s |", p)
	}
	fmt.Fprint(stdout, "\n| ---: | ---: |")
	fmt.Fprint(stdout, strings.Repeat(" ---: |", len(routing.Policies)))
	fmt.Fprintln(stdout)
	var notes []string
	for i := 0; i < len(rows); i += len(routing.Policies) {
		r0 := rows[i]
		fmt.Fprintf(stdout, "| %s | %s |", r0.Capacity, slotsCell(r0.Result))
		for _, r := range rows[i : i+len(routing.Policies)] {
			switch {
			case r.Err != nil:
				fmt.Fprint(stdout, " n/a |")
				notes = append(notes, fmt.Sprintf("%s at %s: %v", r.Policy, r.Capacity, r.Err))
			case r.Policy == routing.Belady || math.IsNaN(r.ratio):
				fmt.Fprintf(stdout, " %.3f |", r.HitRate())
			default:
				fmt.Fprintf(stdout, " %.3f (%.2f×) |", r.HitRate(), r.ratio)
			}
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "\nhit rate (ratio to Belady's)")
	if *budgetFlag != "" && sizesDiffer(t) { // slots count experts alike: MIN is exact there
		fmt.Fprintln(stdout, "note: experts differ in size by layer, so Belady's MIN (evict the farthest next use) is a reference, not the optimum, which is NP-hard with sizes; another policy can beat it")
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	return nil
}

// sizesDiffer reports whether the trace's layers have experts of
// different sizes (a Q4_K_M file, whose down projections differ in type
// from layer to layer).
func sizesDiffer(t *routing.Trace) bool {
	for _, l := range t.Layers {
		if l.ExpertBytes != t.Layers[0].ExpertBytes {
			return true
		}
	}
	return false
}

// simRow is one result with its ratio to Belady's hit rate at the same
// capacity (NaN when Belady's is 0).
type simRow struct {
	routing.Result
	ratio float64
}

func slotsCell(r routing.Result) string {
	if r.Capacity.Bytes > 0 && r.Slots == 0 {
		return "mixed"
	}
	return strconv.Itoa(r.Slots)
}

var simColumns = []string{"capacity", "slots", "budget_bytes", "policy", "accesses", "hits", "misses", "hit_rate", "vs_belady", "error"}

func (r simRow) fields() []string {
	errText, ratio, rate := "", "", strconv.FormatFloat(r.HitRate(), 'f', 4, 64)
	if r.Err != nil { // a policy that could not run has no hit rate
		errText, rate = r.Err.Error(), ""
	}
	if !math.IsNaN(r.ratio) {
		ratio = strconv.FormatFloat(r.ratio, 'f', 4, 64)
	}
	return []string{r.Capacity.String(), strconv.Itoa(r.Slots), strconv.FormatInt(r.Capacity.Bytes, 10), r.Policy.String(),
		strconv.FormatInt(r.Accesses, 10), strconv.FormatInt(r.Hits, 10), strconv.FormatInt(r.Misses, 10),
		rate, ratio, errText}
}

func simCSV(w io.Writer, rows []simRow) error {
	cw := csv.NewWriter(w)
	cw.Write(simColumns)
	for _, r := range rows {
		cw.Write(r.fields())
	}
	cw.Flush()
	return cw.Error()
}

func simJSON(w io.Writer, rows []simRow) error {
	type row struct {
		Capacity    string   `json:"capacity"`
		Slots       int      `json:"slots"`
		BudgetBytes int64    `json:"budget_bytes,omitempty"`
		Policy      string   `json:"policy"`
		Accesses    int64    `json:"accesses"`
		Hits        int64    `json:"hits"`
		Misses      int64    `json:"misses"`
		HitRate     *float64 `json:"hit_rate"`
		VsBelady    *float64 `json:"vs_belady"`
		Error       string   `json:"error,omitempty"`
	}
	out := make([]row, 0, len(rows))
	for _, r := range rows {
		o := row{Capacity: r.Capacity.String(), Slots: r.Slots, BudgetBytes: r.Capacity.Bytes, Policy: r.Policy.String(),
			Accesses: r.Accesses, Hits: r.Hits, Misses: r.Misses}
		if r.Err == nil {
			v := r.HitRate()
			o.HitRate = &v
		}
		if !math.IsNaN(r.ratio) {
			v := r.ratio
			o.VsBelady = &v
		}
		if r.Err != nil {
			o.Error = r.Err.Error()
		}
		out = append(out, o)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func pagingStats(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("paging stats", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pagingUsage) }
	within := fs.Int("within", routing.DefaultWithin, "`tokens` within which experts count as touched")
	format := fs.String("o", "md", "output `format`: md or json")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *format != "md" && *format != "json" {
		fmt.Fprintf(stderr, "strata paging stats: -o %q: want md or json\n", *format)
		return errUsage
	}
	if *within <= 0 {
		fmt.Fprintf(stderr, "strata paging stats: -within %d: want a positive token count\n", *within)
		return errUsage
	}
	t, path, err := readTrace("stats", files, stderr)
	if err != nil {
		return err
	}
	s := routing.Stats(t, *within)
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Fprintln(stdout, describe(path, t))
	if s.Tokens < s.Within {
		fmt.Fprintf(stdout, "the trace is shorter than %d tokens: touched counts all %d\n", s.Within, s.Tokens)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "| layer | top eighth (%d of %d) | reuse | touched ≤ %d tokens | distinct |\n", s.TopExperts, t.Experts, s.Within)
	fmt.Fprintln(stdout, "| ---: | ---: | ---: | ---: | ---: |")
	row := func(name string, l routing.LayerStats) {
		fmt.Fprintf(stdout, "| %s | %.3f | %.3f | %.3f | %.4g |\n", name, l.TopEighth, l.Reuse, l.Touched, l.Distinct)
	}
	for _, l := range s.Layers {
		row(strconv.Itoa(l.Layer), l)
	}
	row("mean", s.Mean)
	row("min", s.Min)
	row("max", s.Max)
	fmt.Fprintln(stdout)
	for _, c := range []struct {
		what     string
		min, max float64
		lo, hi   float64
	}{
		{"top eighth's share of routings", s.Min.TopEighth, s.Max.TopEighth, 0.25, 0.45},
		{"previous-token reuse", s.Min.Reuse, s.Max.Reuse, 0.25, 0.45},
		{fmt.Sprintf("touched within %d tokens", s.Within), s.Min.Touched, s.Max.Touched, 0.75, 1},
	} {
		verdict := "every layer in range"
		if c.min < c.lo || c.max > c.hi {
			verdict = "OUT OF RANGE"
		}
		fmt.Fprintf(stdout, "%s: layers %.3f..%.3f, calibration target %.2f..%.2f: %s\n", c.what, c.min, c.max, c.lo, c.hi, verdict)
	}
	return nil
}
