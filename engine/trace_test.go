package engine_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome/routing"
	"github.com/strata-llm/strata/llama"
)

// traceSpy is an observer that keeps every routing tensor it is handed,
// as ExpertPager sees them: the layer, and the ids of each token.
type traceSpy struct {
	calls []traceCall
}

type traceCall struct {
	layer int
	ids   []int32
}

func (s *traceSpy) observer() *llama.Observer {
	return &llama.Observer{Prefixes: []string{"ffn_moe_topk"}, Func: func(t *llama.Tensor) bool {
		ids, err := t.Int32s()
		if err != nil {
			panic(err)
		}
		s.calls = append(s.calls, traceCall{t.Layer(), slices.Clone(ids)})
		return true
	}}
}

// TestTraceRecorder decodes on a tiny MoE model with a recorder and a spy
// chained on one context: a prompt batch asking only for its last logits
// (dropped: the last layer routes one token of five), a prompt batch
// asking for every token's logits (recorded), and greedy single-token
// decodes (recorded). The trace read back from the file must hold the
// model's shape and, token by token, the very ids the spy saw.
func TestTraceRecorder(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := engine.TraceHeader(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Layers) != m.Layers() || h.Experts != m.ExpertCount() || h.Used != m.ExpertUsed() || h.Layers[0].ExpertBytes == 0 {
		t.Fatalf("header: got %+v for a model of %d layers, %d experts, %d used", h, m.Layers(), m.ExpertCount(), m.ExpertUsed())
	}
	path := filepath.Join(t.TempDir(), "run.trace")
	w, err := routing.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := engine.NewTraceRecorder(m, w)
	if err != nil {
		t.Fatal(err)
	}
	spy := &traceSpy{}
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 128, Threads: 1, Observer: engine.ChainObservers(rec.Observer(), nil, spy.observer())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := llama.NewBatch(16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	prompt, _ := m.Vocab().Tokenize("Route me!", true, false)
	if len(prompt) < 3 {
		t.Fatalf("prompt of %d tokens; want a few", len(prompt))
	}
	pos := int32(0)
	decode := func(toks []llama.Token, allLogits bool) {
		t.Helper()
		b.Clear()
		for i, tok := range toks {
			if err := b.Add(tok, pos, 0, allLogits || i == len(toks)-1); err != nil {
				t.Fatal(err)
			}
			pos++
		}
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	decode(prompt, false) // the last layer routes 1 row of len(prompt): dropped
	decode(prompt, true)  // every layer routes len(prompt) rows: recorded
	const gen = 10
	for range gen {
		tok, err := s.Sample(c, -1)
		if err != nil {
			t.Fatal(err)
		}
		decode([]llama.Token{tok}, false)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	want := int64(len(prompt) + gen)
	if rec.Tokens() != want || rec.Dropped() != int64(len(prompt)) {
		t.Fatalf("got %d tokens recorded, %d dropped; want %d and %d", rec.Tokens(), rec.Dropped(), want, len(prompt))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	tr, err := routing.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Tokens() != int(want) || tr.Experts != h.Experts || tr.Used != h.Used || !slices.Equal(tr.Layers, h.Layers) {
		t.Fatalf("trace: got %d tokens, header %+v; want %d, %+v", tr.Tokens(), tr.Header, want, h)
	}
	// The spy's calls: 3 graph runs × one call per MoE layer, in layer
	// order. Rebuild the routings it saw of the recorded runs (the 2nd
	// and later), token by token.
	nl := len(h.Layers)
	if len(spy.calls) != (2+gen)*nl {
		t.Fatalf("spy saw %d routing tensors, want %d", len(spy.calls), (2+gen)*nl)
	}
	var seen [][]int32 // per token, per layer: its experts
	for run := 1; run < 2+gen; run++ {
		calls := spy.calls[run*nl : (run+1)*nl]
		n := len(calls[0].ids) / h.Used
		for tok := range n {
			var row []int32
			for li, call := range calls {
				if call.layer != h.Layers[li].Index {
					t.Fatalf("run %d: call %d is layer %d, want %d", run, li, call.layer, h.Layers[li].Index)
				}
				row = append(row, call.ids[tok*h.Used:(tok+1)*h.Used]...)
			}
			seen = append(seen, row)
		}
	}
	if len(seen) != tr.Tokens() {
		t.Fatalf("spy saw %d tokens in the recorded runs, trace has %d", len(seen), tr.Tokens())
	}
	distinct := map[int32]bool{}
	for tok, row := range seen {
		for li := range nl {
			got := tr.Routing(tok, li)
			for k, e := range row[li*h.Used : (li+1)*h.Used] {
				if int32(got[k]) != e {
					t.Fatalf("token %d layer %d: trace has %v, the spy saw %v", tok, h.Layers[li].Index, got, row[li*h.Used:(li+1)*h.Used])
				}
				distinct[e] = true
			}
		}
	}
	if len(distinct) < 2 {
		t.Errorf("the routing used %d distinct experts; want a test that can tell tokens apart", len(distinct))
	}
}

// TestTraceRecorderRejects: a trace header of another model is refused,
// and a recording that fails (the writer closed under it) stops the
// recording but not the decode.
func TestTraceRecorderRejects(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := engine.TraceHeader(m)
	if err != nil {
		t.Fatal(err)
	}
	other := h
	other.Experts++
	w, err := routing.Create(filepath.Join(t.TempDir(), "other.trace"), other)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := engine.NewTraceRecorder(m, w); err == nil {
		t.Error("a header with another expert count: got no error")
	}

	w2, err := routing.Create(filepath.Join(t.TempDir(), "closed.trace"), h)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := engine.NewTraceRecorder(m, w2)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64, Threads: 1, Observer: rec.Observer()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := llama.NewBatch(1, 1)
	defer b.Close()
	b.Add(1, 0, 0, true)
	if err := c.Decode(b); err != nil {
		t.Fatalf("decode with a failing recorder: %v, want it to go on", err)
	}
	if err := rec.Err(); !errors.Is(err, routing.ErrClosed) || rec.Tokens() != 0 {
		t.Errorf("got Err %v, %d tokens; want routing.ErrClosed and 0", err, rec.Tokens())
	}
}

// TestTraceRecorderAllocs holds a single-token decode with a recorder to
// no Go allocation: recording is on the decoding thread of every token.
func TestTraceRecorderAllocs(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := engine.TraceHeader(m)
	if err != nil {
		t.Fatal(err)
	}
	w, err := routing.Create(filepath.Join(t.TempDir(), "run.trace"), h)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec, err := engine.NewTraceRecorder(m, w)
	if err != nil {
		t.Fatal(err)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 256, Threads: 1, Observer: rec.Observer()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := llama.NewBatch(1, 1)
	defer b.Close()
	pos := int32(0)
	step := func() {
		b.Clear()
		b.Add(llama.Token(1+pos%50), pos, 0, true)
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		pos++
	}
	step()
	step()
	if n := testing.AllocsPerRun(50, step); n != 0 {
		t.Errorf("got %v allocations per decoded token, want 0", n)
	}
	if rec.Tokens() != int64(pos) || rec.Err() != nil {
		t.Errorf("got %d tokens recorded (%v), want %d", rec.Tokens(), rec.Err(), pos)
	}
}
