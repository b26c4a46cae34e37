package llama_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

func TestGreedyDeterministicAcrossContexts(t *testing.T) {
	for _, preset := range []string{"tiny-dense", "tiny-moe"} {
		t.Run(preset, func(t *testing.T) {
			m := load(t, testModel(t, preset, gguf.TypeQ8_0), llama.ModelParams{})
			prompt, err := m.Vocab().Tokenize("The quick brown fox", true, false)
			if err != nil {
				t.Fatal(err)
			}
			c1 := newContext(t, m, llama.ContextParams{NCtx: 256})
			c2 := newContext(t, m, llama.ContextParams{NCtx: 256, Threads: 1})
			a := greedy(t, c1, prompt, 48)
			b := greedy(t, c2, prompt, 48)
			if !slices.Equal(a, b) {
				t.Fatalf("greedy outputs differ between contexts:\n got %v\nwant %v", b, a)
			}
			// Same context again, after clearing the memory.
			if again := greedy(t, c1, prompt, 48); !slices.Equal(a, again) {
				t.Fatalf("greedy output changed on the same context:\n got %v\nwant %v", again, a)
			}
			// Random weights must still give a live model, not one token
			// forever or NaN logits (which greedy-samples token 0).
			distinct := map[llama.Token]bool{}
			for _, tok := range a {
				distinct[tok] = true
			}
			if len(distinct) < 3 {
				t.Errorf("got %d distinct tokens in %v, want a varied sequence", len(distinct), a)
			}
		})
	}
}

func TestSeededSamplingReproducible(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	c := newContext(t, m, llama.ContextParams{NCtx: 256})
	run := func(seed uint32) []llama.Token {
		s, err := llama.NewSampler(llama.SamplerParams{Temperature: 1.5, TopK: 100, TopP: 0.99, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b, _ := llama.NewBatch(8, 1)
		defer b.Close()
		c.ClearMemory(true)
		b.AddSequence([]llama.Token{m.Vocab().BOS()}, 0, 0)
		var out []llama.Token
		for pos := int32(1); pos < 40; pos++ {
			if err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sample(c, -1)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tok)
			b.Clear()
			b.Add(tok, pos, 0, true)
		}
		return out
	}
	a, b, other := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 7 and 8 gave the same 39 tokens %v", a)
	}
}

func TestTokenizeRoundTrip(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{VocabOnly: true})
	v := m.Vocab()
	tests := []string{
		"",
		"hello",
		" leading and trailing spaces ",
		"line\nbreaks\tand tabs",
		"UTF-8: héllo wörld — ✓ 日本語 🚀",
		"bytes \x00\x01\x7f",
		"<s> looks special but is text </s>",
	}
	for _, s := range tests {
		toks, err := v.Tokenize(s, false, false)
		if err != nil {
			t.Fatalf("Tokenize(%q): %v", s, err)
		}
		got, err := v.Detokenize(toks, false, false)
		if err != nil {
			t.Fatalf("Detokenize(%v): %v", toks, err)
		}
		if got != s {
			t.Errorf("round trip: got %q, want %q (tokens %v)", got, s, toks)
		}
		// Piece by piece gives the same bytes.
		var pieces []byte
		for _, tok := range toks {
			pieces, err = v.AppendPiece(pieces, tok, false)
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(pieces) != s {
			t.Errorf("pieces: got %q, want %q", pieces, s)
		}
	}
	withBOS, _ := v.Tokenize("a", true, false)
	if v.AddBOS() && (len(withBOS) != 2 || withBOS[0] != v.BOS()) {
		t.Errorf("Tokenize with addSpecial: got %v, want [BOS a]", withBOS)
	}
	if !v.IsEOG(v.EOS()) {
		t.Errorf("EOS %d is not end-of-generation", v.EOS())
	}
	if _, err := v.Piece(llama.Token(v.Size()), false); !errors.Is(err, llama.ErrTokenOutOfRange) {
		t.Errorf("Piece(out of range): got %v, want ErrTokenOutOfRange", err)
	}
	if _, err := v.Detokenize([]llama.Token{-5}, false, false); !errors.Is(err, llama.ErrTokenOutOfRange) {
		t.Errorf("Detokenize(-5): got %v, want ErrTokenOutOfRange", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	c := newContext(t, m, llama.ContextParams{NCtx: 256, NBatch: 256})
	b, _ := llama.NewBatch(300, 1)
	defer b.Close()

	if err := c.Decode(b); !errors.Is(err, llama.ErrInvalidBatch) {
		t.Errorf("empty batch: got %v, want ErrInvalidBatch", err)
	}
	// Fill the KV cache, then one more token has no slot.
	toks := make([]llama.Token, 256)
	for i := range toks {
		toks[i] = llama.Token(3 + i%200)
	}
	b.AddSequence(toks, 0, 0)
	if err := c.Decode(b); err != nil {
		t.Fatalf("decode 256 tokens into a 256 context: %v", err)
	}
	b.Clear()
	b.Add(5, 256, 0, true)
	err := c.Decode(b)
	if !errors.Is(err, llama.ErrKVCacheFull) {
		t.Fatalf("decode past the context: got %v, want ErrKVCacheFull", err)
	}
	var le *llama.Error
	if !errors.As(err, &le) || le.Op != "Context.Decode" || le.Code != 1 {
		t.Errorf("got %#v, want *llama.Error{Op: Context.Decode, Code: 1}", err)
	}
	// A cancelled context aborts before decoding.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.ClearMemory(true)
	b.Clear()
	b.Add(5, 0, 0, true)
	if err := c.DecodeContext(ctx, b); !errors.Is(err, llama.ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Errorf("DecodeContext(cancelled): got %v, want ErrAborted and context.Canceled", err)
	}
	if _, err := c.Logits(5); !errors.Is(err, llama.ErrNoLogits) {
		t.Errorf("Logits(5) of a 1-token batch: got %v, want ErrNoLogits", err)
	}
	// Sampling needs logits: none after the aborted decode, none at a
	// position that was not marked for output.
	s, _ := llama.NewSampler(llama.SamplerParams{Greedy: true})
	defer s.Close()
	if _, err := s.Sample(c, -1); !errors.Is(err, llama.ErrNoLogits) {
		t.Errorf("Sample after an aborted decode: got %v, want ErrNoLogits", err)
	}
	c.ClearMemory(true)
	b.Clear()
	b.AddSequence([]llama.Token{5, 6, 7}, 0, 0)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(c, 0); !errors.Is(err, llama.ErrNoLogits) {
		t.Errorf("Sample at a position without logits: got %v, want ErrNoLogits", err)
	}
	if _, err := s.Sample(c, -1); err != nil {
		t.Errorf("Sample at the output position: %v", err)
	}
}

// TestObserverStopsDecode: an observer returning false aborts the decode
// with ErrAborted — the same path Interrupt uses.
func TestObserverStopsDecode(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	calls := 0
	c := newContext(t, m, llama.ContextParams{NCtx: 256, Observer: &llama.Observer{
		Prefixes: []string{"attn_norm"},
		Func:     func(*llama.Tensor) bool { calls++; return false },
	}})
	b, _ := llama.NewBatch(4, 1)
	defer b.Close()
	b.AddSequence([]llama.Token{1, 40, 41}, 0, 0)
	err := c.Decode(b)
	if !errors.Is(err, llama.ErrAborted) {
		t.Fatalf("decode with an observer that returns false: got %v, want ErrAborted", err)
	}
	if calls != 1 {
		t.Errorf("observer calls: got %d, want 1 (the decode should stop at the first)", calls)
	}
}

// TestCallbackPanics: a panic in an observer or a progress callback is
// recovered before it can unwind through llama.cpp's C++ and fails the
// decode or load with ErrCallbackPanic; the context stays usable.
func TestCallbackPanics(t *testing.T) {
	path := testModel(t, "tiny-dense", gguf.TypeQ8_0)
	m := load(t, path, llama.ModelParams{})
	fail := true
	for _, prefix := range []string{"attn_norm", "result_output"} { // a middle node and the last
		c := newContext(t, m, llama.ContextParams{NCtx: 256, Observer: &llama.Observer{
			Prefixes: []string{prefix},
			Func: func(*llama.Tensor) bool {
				if fail {
					panic("observer bug")
				}
				return true
			},
		}})
		b, _ := llama.NewBatch(4, 1)
		b.AddSequence([]llama.Token{1, 40, 41}, 0, 0)
		fail = true
		if err := c.Decode(b); !errors.Is(err, llama.ErrCallbackPanic) || !strings.Contains(err.Error(), "observer bug") {
			t.Errorf("%s: decode with a panicking observer: got %v, want ErrCallbackPanic naming the panic", prefix, err)
		}
		fail = false
		c.ClearMemory(true)
		if err := c.Decode(b); err != nil {
			t.Errorf("%s: decode after the panic: %v", prefix, err)
		}
		b.Close()
	}
	_, err := llama.LoadModel(path, llama.ModelParams{Progress: func(float32) bool { panic("progress bug") }})
	if !errors.Is(err, llama.ErrCallbackPanic) || !strings.Contains(err.Error(), "progress bug") {
		t.Errorf("load with a panicking progress callback: got %v, want ErrCallbackPanic", err)
	}
}

func TestMemorySeqOps(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	c := newContext(t, m, llama.ContextParams{NCtx: 256, NSeqMax: 2, KVUnified: true})
	b, _ := llama.NewBatch(64, 2)
	defer b.Close()
	prompt := []llama.Token{1, 72, 101, 108, 108, 111}

	logitsAfter := func(extra llama.Token) []float32 {
		b.Clear()
		b.Add(extra, int32(len(prompt)), 0, true)
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		l, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(l)
	}
	b.AddSequence(prompt, 0, 0)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := logitsAfter(50)
	if lo, hi := c.SeqPosRange(0); lo != 0 || hi != int32(len(prompt)) {
		t.Errorf("SeqPosRange: got [%d, %d], want [0, %d]", lo, hi, len(prompt))
	}
	// Drop the last position and decode it again: same logits.
	if !c.RemoveSeq(0, int32(len(prompt)), -1) {
		t.Fatal("RemoveSeq returned false")
	}
	if got := logitsAfter(50); !slices.Equal(got, want) {
		t.Errorf("logits after RemoveSeq and re-decode differ")
	}
	// Copy sequence 0 into 1, keep only 1: its cache must still serve.
	c.RemoveSeq(0, int32(len(prompt)), -1)
	c.CopySeq(0, 1, -1, -1)
	c.KeepSeq(1)
	if lo, _ := c.SeqPosRange(0); lo != -1 {
		t.Errorf("sequence 0 after KeepSeq(1): got min pos %d, want -1 (empty)", lo)
	}
	b.Clear()
	b.Add(50, int32(len(prompt)), 1, true)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Logits(-1)
	if !slices.Equal(got, want) {
		t.Errorf("logits from copied sequence differ from the original")
	}
}

func TestPerfCounters(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	c := newContext(t, m, llama.ContextParams{NCtx: 256})
	c.ResetPerf()
	greedy(t, c, []llama.Token{1, 70, 80, 90}, 10)
	p := c.Perf()
	if p.PromptTokens != 4 || p.EvalTokens != 10 {
		t.Errorf("got %d prompt and %d eval tokens, want 4 and 10", p.PromptTokens, p.EvalTokens)
	}
	if p.EvalMs <= 0 || p.EvalTokensPerSecond() <= 0 {
		t.Errorf("got eval time %v ms, want > 0", p.EvalMs)
	}
}

func TestLoadCancelled(t *testing.T) {
	path := testModel(t, "tiny-moe", gguf.TypeQ8_0)
	calls := 0
	_, err := llama.LoadModel(path, llama.ModelParams{Progress: func(float32) bool { calls++; return false }})
	if !errors.Is(err, llama.ErrLoadCancelled) {
		t.Fatalf("got %v, want ErrLoadCancelled", err)
	}
	if calls == 0 {
		t.Error("progress callback never called")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := llama.LoadModelContext(ctx, path, llama.ModelParams{}); !errors.Is(err, llama.ErrLoadCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v, want ErrLoadCancelled and context.Canceled", err)
	}
	var last float32
	m := load(t, path, llama.ModelParams{Progress: func(p float32) bool { last = p; return true }})
	if last != 1 {
		t.Errorf("last progress: got %v, want 1", last)
	}
	_ = m
}

func TestTensorOverrides(t *testing.T) {
	path := testModel(t, "tiny-moe", gguf.TypeQ8_0)
	if _, err := llama.LoadModel(path, llama.ModelParams{TensorOverrides: []llama.TensorOverride{{Pattern: "ffn_(", BufferType: "CPU"}}}); err == nil {
		t.Error("bad regular expression: got nil error")
	}
	if _, err := llama.LoadModel(path, llama.ModelParams{TensorOverrides: []llama.TensorOverride{{Pattern: "ffn", BufferType: "NoSuchGPU"}}}); !errors.Is(err, llama.ErrUnknownBufferType) {
		t.Errorf("unknown buffer type: got %v, want ErrUnknownBufferType", err)
	}
	// On a CPU build the overrides are valid and change nothing visible;
	// the model must load and generate.
	m := load(t, path, llama.ModelParams{CPUMoE: true, NCPUMoE: 2})
	c := newContext(t, m, llama.ContextParams{NCtx: 256})
	if toks := greedy(t, c, []llama.Token{1, 50}, 4); len(toks) != 4 {
		t.Errorf("got %d tokens", len(toks))
	}
}
