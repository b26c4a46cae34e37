package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/genome/routing"
	"github.com/strata-llm/strata/llama"
)

// recording is the MoE routing of one test's generated tokens: the
// timed single-token decodes of every repetition (tg, and the tg part of
// pg), one trace over all repetitions in their order. Prompts, the
// warm-up and the untimed token before each tg repetition are left out.
// It goes to a -trace file, and with a budget also to memory, to be
// replayed through Belady's optimum at the budget (replay).
//
// A recording follows one context on one goroutine.
type recording struct {
	rec  *engine.TraceRecorder
	w    *routing.Writer
	obs  *llama.Observer // rec's observer, passing tensors on only while on
	on   atomic.Bool
	file *os.File      // -trace; nil without
	path string        // file's name
	mem  *bytes.Buffer // with a budget; nil without
	reps []repWindow
}

// repWindow is the generation of one repetition: its tokens in the trace
// and the genome before and after it.
type repWindow struct {
	from, to int64            // trace tokens [from, to)
	resident []residentExpert // the experts the genome held when it began
	st0, st  pagingStats      // the genome's counters at its start and end
}

// residentExpert is an expert the genome holds within its budget (in
// the Warm or the Bench tier).
type residentExpert struct{ layer, expert int }

// newRecording records the routing of m to the trace file path (none for
// ""), and to memory when keep is set.
func newRecording(m *llama.Model, path string, keep bool) (*recording, error) {
	if m.ExpertCount() == 0 {
		return nil, fmt.Errorf("-trace: %s is not an MoE model: it has no expert routing to record", m.Path())
	}
	h, err := engine.TraceHeader(m)
	if err != nil {
		return nil, fmt.Errorf("-trace: %w", err)
	}
	r := &recording{path: path}
	var dst []io.Writer
	if path != "" {
		if r.file, err = os.Create(path); err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		dst = append(dst, r.file)
	}
	if keep {
		r.mem = new(bytes.Buffer)
		dst = append(dst, r.mem)
	}
	// The Writer gathers 64 KiB chunks, so the file needs no buffer of
	// its own.
	if r.w, err = routing.NewWriter(io.MultiWriter(dst...), h); err != nil {
		r.abort()
		return nil, fmt.Errorf("-trace: %w", err)
	}
	if r.rec, err = engine.NewTraceRecorder(m, r.w); err != nil {
		r.abort()
		return nil, err
	}
	inner := r.rec.Observer()
	r.obs = &llama.Observer{Prefixes: inner.Prefixes, Func: func(t *llama.Tensor) bool {
		if !r.on.Load() {
			return true
		}
		return inner.Func(t)
	}}
	return r, nil
}

// observer returns the observer of the test's context: the pager's (nil
// without a budget) and the recording's (r may be nil).
func (r *recording) observer(pager *llama.Observer) *llama.Observer {
	if r == nil {
		return pager
	}
	if pager == nil {
		return r.obs
	}
	return engine.ChainObservers(pager, r.obs)
}

// begin starts recording a repetition's generation; the genome held
// resident and its counters read st.
func (r *recording) begin(resident []residentExpert, st pagingStats) {
	r.reps = append(r.reps, repWindow{from: r.rec.Tokens(), resident: resident, st0: st})
	r.on.Store(true)
}

// end stops recording the repetition begin started.
func (r *recording) end(st pagingStats) {
	r.on.Store(false)
	w := &r.reps[len(r.reps)-1]
	w.to, w.st = r.rec.Tokens(), st
}

// tokens is the number of tokens recorded.
func (r *recording) tokens() int64 { return r.rec.Tokens() }

// close completes the trace (its end record) and the file.
func (r *recording) close() error {
	err := r.rec.Err()
	if err == nil {
		err = r.w.Close()
	}
	if r.file != nil {
		if err == nil {
			err = r.file.Sync()
		}
		err = errors.Join(err, r.file.Close())
		r.file = nil
	}
	if err != nil {
		return fmt.Errorf("-trace %s: %w", r.path, err)
	}
	return nil
}

// abort closes the file of a test that failed, leaving a trace without
// its end record (routing.Read calls it truncated). r may be nil.
func (r *recording) abort() {
	if r != nil && r.file != nil {
		r.file.Close()
		r.file = nil
	}
}

// trace reads back the in-memory trace (after close).
func (r *recording) trace() (*routing.Trace, error) {
	t, err := routing.Read(bytes.NewReader(r.mem.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("bench: reading back the routing trace: %w", err)
	}
	return t, nil
}

// tracePath is the -trace file of the test numbered k (from 1, as the
// progress lines count): the file itself when one test generates, else
// the number before its extension (routing.trace → routing.3.trace).
func tracePath(base string, k int, several bool) string {
	if !several {
		return base
	}
	ext := filepath.Ext(base)
	if ext == base || ext == filepath.Base(base) {
		ext = ""
	}
	return base[:len(base)-len(ext)] + "." + strconv.Itoa(k) + ext
}

// residentExperts lists the experts the genome holds within its budget:
// those an access finds without reading the file.
func (l *loaded) residentExperts() []residentExpert {
	if l.budget == nil {
		return nil
	}
	var out []residentExpert
	for _, p := range l.budget.Genome.WorkingSet().Pages {
		if p.Ref.Kind == genome.PageExpert && p.Ref.Artifact == l.budget.Artifact() && p.Tier.Resident() {
			out = append(out, residentExpert{int(p.Ref.Offset.Layer), int(p.Ref.Offset.Expert)})
		}
	}
	return out
}

// replayed is what replaying a test's generation found.
type replayed struct {
	accesses  int64 // expert accesses replayed: each token, layer, distinct expert
	measured  int64 // the same accesses as the genome counted them (hits + faults)
	hits      int64 // of those, served within the budget (Warm hits, Bench promotions)
	belady    int64 // Belady's hits
	genome    int64 // the genome's policy's hits, replayed
	genomeErr error // why the genome's policy could not replay, if it could not
	// inexact counts the repetitions whose start Belady could not be
	// given exactly (see warmStart).
	inexact int
}

// replay runs Belady's optimum and the genome's policy (routing.Simulate)
// over each repetition's generation at the budget, each started from
// the experts the genome held when that generation began: a cold start
// would charge the replay misses the warmed-up genome never took (on
// tg16 with 64 experts most of its accesses), and the ratio to Belady
// would say little. The genome's policy starts from the same experts but
// not from its own state (tier, frequencies), so it is close to the
// measured rate, not equal.
func replay(t *routing.Trace, reps []repWindow, budget int64) (replayed, error) {
	var out replayed
	caps := []routing.Capacity{{Bytes: budget}}
	pols := []routing.Policy{routing.Belady, routing.Genome}
	for _, rw := range reps {
		out.hits += int64(rw.st.hits-rw.st0.hits) + int64(rw.st.inBudget-rw.st0.inBudget)
		out.measured += int64(rw.st.hits-rw.st0.hits) + int64(rw.st.faults-rw.st0.faults)
		if rw.to <= rw.from {
			continue
		}
		prefix, exact := warmStart(t, rw, budget)
		if !exact {
			out.inexact++
		}
		pre, err := traceOf(t.Header, prefix, nil, 0, 0)
		if err != nil {
			return out, err
		}
		full, err := traceOf(t.Header, prefix, t, int(rw.from), int(rw.to))
		if err != nil {
			return out, err
		}
		// The prefix only loads experts, so it goes the same way alone as
		// ahead of the generation: what the full run adds is the
		// generation's.
		rp, err := routing.Simulate(pre, caps, pols)
		if err != nil {
			return out, err
		}
		rf, err := routing.Simulate(full, caps, pols)
		if err != nil {
			return out, err
		}
		out.accesses += rf[0].Accesses - rp[0].Accesses
		out.belady += rf[0].Hits - rp[0].Hits
		if err := errors.Join(rp[1].Err, rf[1].Err); err != nil && out.genomeErr == nil {
			out.genomeErr = err
		}
		out.genome += rf[1].Hits - rp[1].Hits
	}
	return out, nil
}

// warmStart returns the tokens that load the experts the genome held at
// the start of rw into an empty cache: each MoE layer's resident experts,
// Used per token (a layer with fewer repeats its first, which hits). A
// token routes every layer, so a layer the genome held nothing of gets
// one expert the generation does not use there (or uses last). The start
// is exact when those experts fit the budget together, since a cache
// then evicts nothing before the generation begins, and Belady never
// prefers an expert the generation does not use; otherwise experts the
// generation does not use are left out while the layer keeps one, and
// exact is false if that is not enough.
func warmStart(t *routing.Trace, rw repWindow, budget int64) (rows [][]int32, exact bool) {
	slot := map[int]int{}
	for i, l := range t.Layers {
		slot[l.Index] = i
	}
	// firstUse[i][e]: the generation's first token routing expert e in
	// layer i, or -1.
	firstUse := make([][]int64, len(t.Layers))
	for i := range firstUse {
		firstUse[i] = make([]int64, t.Experts)
		for e := range firstUse[i] {
			firstUse[i][e] = -1
		}
	}
	for tok := rw.from; tok < rw.to; tok++ {
		for i := range t.Layers {
			for _, e := range t.Routing(int(tok), i) {
				if firstUse[i][e] < 0 {
					firstUse[i][e] = tok
				}
			}
		}
	}
	held := make([][]int32, len(t.Layers))
	for _, r := range rw.resident {
		if i, ok := slot[r.layer]; ok && r.expert < t.Experts {
			held[i] = append(held[i], int32(r.expert))
		}
	}
	empty := true
	for _, h := range held {
		empty = empty && len(h) == 0
	}
	if empty {
		return nil, true
	}
	for i := range held {
		if len(held[i]) > 0 {
			continue
		}
		pick := 0
		for e, f := range firstUse[i] {
			if f < 0 {
				pick = e
				break
			}
			if f > firstUse[i][pick] {
				pick = e
			}
		}
		held[i] = []int32{int32(pick)}
	}
	bytes := func() int64 {
		var n int64
		for i, h := range held {
			n += int64(len(h)) * t.Layers[i].ExpertBytes
		}
		return n
	}
	for i := range held {
		if bytes() <= budget {
			break
		}
		keep := held[i][:0]
		for k, e := range held[i] {
			if firstUse[i][e] >= 0 || (k == len(held[i])-1 && len(keep) == 0) {
				keep = append(keep, e)
			}
		}
		held[i] = keep
	}
	exact = bytes() <= budget
	n := 0
	for _, h := range held {
		n = max(n, (len(h)+t.Used-1)/t.Used)
	}
	for tok := range n {
		row := make([]int32, 0, t.RowLen())
		for _, h := range held {
			for u := range t.Used {
				if k := tok*t.Used + u; k < len(h) {
					row = append(row, h[k])
				} else {
					row = append(row, h[0])
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, exact
}

// traceOf builds a trace of header h: rows, then tokens [from, to) of t
// (t may be nil).
func traceOf(h routing.Header, rows [][]int32, t *routing.Trace, from, to int) (*routing.Trace, error) {
	out, err := routing.NewTrace(h)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if err := out.Append(r); err != nil {
			return nil, err
		}
	}
	if t == nil {
		return out, nil
	}
	row := make([]int32, 0, t.RowLen())
	for tok := from; tok < to; tok++ {
		row = row[:0]
		for i := range t.Layers {
			for _, e := range t.Routing(tok, i) {
				row = append(row, int32(e))
			}
		}
		if err := out.Append(row); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// beladyRate is Belady's hit rate over the replayed accesses.
func (r *replayed) beladyRate() (float64, bool) {
	if r == nil {
		return 0, false
	}
	return ratio(r.belady, r.accesses)
}

// measuredRate is the share of the same accesses the genome served within
// its budget, as Belady's hits are counted: its Warm hits (the hit_rate
// column) and its promotions from Bench, which read nothing from the file.
func (r *replayed) measuredRate() (float64, bool) {
	if r == nil {
		return 0, false
	}
	return ratio(r.hits, r.measured)
}

// vsBelady is the measured hit rate over Belady's.
func (r *replayed) vsBelady() (float64, bool) {
	m, ok1 := r.measuredRate()
	b, ok2 := r.beladyRate()
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return m / b, true
}

// genomeRate is the genome's policy's replayed hit rate, if it replayed.
func (r *replayed) genomeRate() (float64, bool) {
	if r == nil || r.genomeErr != nil {
		return 0, false
	}
	return ratio(r.genome, r.accesses)
}

func ratio(n, d int64) (float64, bool) {
	if d <= 0 {
		return 0, false
	}
	return float64(n) / float64(d), true
}
