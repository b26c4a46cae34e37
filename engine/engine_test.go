package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-llm/strata/audit"
	"github.com/strata-llm/strata/bus"
	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// openEngine opens an Engine on path with small defaults and closes it
// at cleanup.
func openEngine(tb testing.TB, cfg engine.Config) *engine.Engine {
	tb.Helper()
	if cfg.Threads == 0 {
		cfg.Threads = 2
	}
	if cfg.ContextSize == 0 {
		cfg.ContextSize = 256
	}
	e, err := engine.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return e
}

// tokensOf reads a stream to the end and returns its tokens.
func tokensOf(tb testing.TB, st *engine.Stream) ([]llama.Token, engine.Result) {
	tb.Helper()
	var toks []llama.Token
	for d := range st.Deltas() {
		if d.Token != llama.NullToken {
			toks = append(toks, d.Token)
		}
	}
	return toks, st.Result()
}

// collector gathers the artifacts published on a bus.
type collector struct {
	mu  sync.Mutex
	got []bus.Artifact
}

func (c *collector) module() bus.Module {
	return bus.ModuleFuncs{ModuleName: "collector", Artifact: func(a bus.Artifact) {
		c.mu.Lock()
		c.got = append(c.got, a)
		c.mu.Unlock()
	}}
}

func (c *collector) keys(id uuid.UUID) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for _, a := range c.got {
		raw, _ := json.Marshal(a.Payload)
		var v struct{ ID string }
		json.Unmarshal(raw, &v)
		if v.ID == id.String() {
			keys = append(keys, a.Key)
		}
	}
	return keys
}

// TestEngineBatchesLikeOneSequence runs four prompts at once and checks
// each gets the tokens it gets alone: continuous batching must not mix
// sequences up. Greedy decoding on the same file, same numbers.
func TestEngineBatchesLikeOneSequence(t *testing.T) {
	path := tinyModel(t, "tiny-dense")
	prompts := [][]llama.Token{{1, 70, 80, 90}, {1, 33, 34}, {1, 100, 101, 102, 103, 104, 105}, {1, 200}}
	const n = 12

	alone := make([][]llama.Token, len(prompts))
	{
		e := openEngine(t, engine.Config{Model: path, Parallel: 1})
		for i, p := range prompts {
			st, err := e.Generate(context.Background(), engine.Request{Tokens: p, MaxTokens: n, IgnoreEOS: true})
			if err != nil {
				t.Fatal(err)
			}
			alone[i], _ = tokensOf(t, st)
		}
	}
	e := openEngine(t, engine.Config{Model: path, Parallel: 4})
	got := make([][]llama.Token, len(prompts))
	res := make([]engine.Result, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		st, err := e.Generate(context.Background(), engine.Request{Tokens: p, MaxTokens: n, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { got[i], res[i] = tokensOf(t, st) })
	}
	wg.Wait()
	for i := range prompts {
		if res[i].StopReason != engine.StopLength || res[i].CompletionTokens != n {
			t.Errorf("request %d: stop %s after %d tokens, want length after %d", i, res[i].StopReason, res[i].CompletionTokens, n)
		}
		if !slices.Equal(got[i], alone[i]) {
			t.Errorf("request %d batched: got %v, want %v (alone)", i, got[i], alone[i])
		}
	}
	if c := e.Counters(); c.Completed != uint64(len(prompts)) || c.Active != 0 || c.Waiting != 0 || c.GenTokens != uint64(len(prompts)*n) {
		t.Errorf("counters %+v", c)
	}
}

// TestEnginePromptCache runs a conversation's second turn: a prompt that
// repeats the first turn's prompt and reply and adds to them. Only the
// added tokens are decoded (the reply's last token was never decoded, so
// it is among them), and the tokens generated are those of the whole
// prompt decoded afresh. Another persona's request, or one that asks for
// no cache, decodes everything; a request that shares only the first
// token takes the other sequence, leaving the conversation's KV for its
// next turn.
func TestEnginePromptCache(t *testing.T) {
	path := tinyModel(t, "tiny-dense")
	const n = 8
	gen := func(e *engine.Engine, req engine.Request) ([]llama.Token, engine.Result) {
		t.Helper()
		req.MaxTokens, req.IgnoreEOS = n, true
		st, err := e.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return tokensOf(t, st)
	}
	first := []llama.Token{1, 70, 80, 90, 100, 110}
	e := openEngine(t, engine.Config{Model: path, Parallel: 2})
	reply, res := gen(e, engine.Request{Tokens: first})
	if res.CachedTokens != 0 {
		t.Fatalf("first turn: %d cached tokens, want 0", res.CachedTokens)
	}
	second := slices.Concat(first, reply, []llama.Token{120, 130, 140})
	want, _ := gen(openEngine(t, engine.Config{Model: path, Parallel: 1}), engine.Request{Tokens: second})

	// A request that shares only the first token goes to the other
	// sequence, rather than overwrite the conversation for one token.
	if _, res := gen(e, engine.Request{Tokens: []llama.Token{1, 2, 3}}); res.CachedTokens != 0 {
		t.Errorf("unrelated prompt: %d cached tokens, want 0", res.CachedTokens)
	}
	got, res := gen(e, engine.Request{Tokens: second})
	if wantCached := len(first) + n - 1; res.CachedTokens != wantCached {
		t.Errorf("second turn: %d cached tokens, want %d (first prompt and reply but its last token)", res.CachedTokens, wantCached)
	}
	if !slices.Equal(got, want) {
		t.Errorf("second turn from the cache: got %v, want %v (decoded afresh)", got, want)
	}
	if res.PromptTokens != len(second) {
		t.Errorf("second turn: %d prompt tokens, want %d", res.PromptTokens, len(second))
	}
	for _, req := range []engine.Request{
		{Tokens: second, Persona: "someone-else"},
		{Tokens: second, NoPromptCache: true},
	} {
		got, res := gen(e, req)
		if res.CachedTokens != 0 {
			t.Errorf("%+v: %d cached tokens, want 0", req, res.CachedTokens)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", req, got, want)
		}
	}
	if c := e.Counters(); c.CachedTokens != uint64(len(first)+n-1) {
		t.Errorf("counters: %d cached tokens, want %d", c.CachedTokens, len(first)+n-1)
	}
	off := openEngine(t, engine.Config{Model: path, Parallel: 1, NoPromptCache: true})
	gen(off, engine.Request{Tokens: first})
	if _, res := gen(off, engine.Request{Tokens: second}); res.CachedTokens != 0 {
		t.Errorf("Config.NoPromptCache: %d cached tokens, want 0", res.CachedTokens)
	}
}

// TestEnginePromptCacheConsecutive resumes a conversation whose KV is in
// sequence 0 while sequence 2 is busy: rather than decode 0 and 2 (two
// passes over the weights per step, llama.cpp decoding only consecutive
// sequence ids together), the engine closes the gap by copying one KV
// stream to sequence 1, and the tokens are those of a fresh decode.
func TestEnginePromptCacheConsecutive(t *testing.T) {
	withFlashAttention(t, promptCacheConsecutive)
}

// withFlashAttention runs test with flash attention off and on: with it
// on, llama.cpp lays the V cache out otherwise, and a KV stream copied
// between sequences must still hold what a fresh decode computes.
func withFlashAttention(t *testing.T, test func(*testing.T, llama.FlashAttention)) {
	for _, fa := range []llama.FlashAttention{llama.FlashAttentionOff, llama.FlashAttentionOn} {
		t.Run("fa="+fa.String(), func(t *testing.T) { test(t, fa) })
	}
}

func promptCacheConsecutive(t *testing.T, fa llama.FlashAttention) {
	path := tinyModel(t, "tiny-dense")
	const n = 6
	gen := func(e *engine.Engine, toks []llama.Token) ([]llama.Token, engine.Result) {
		t.Helper()
		st, err := e.Generate(context.Background(), engine.Request{Tokens: toks, MaxTokens: n, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		return tokensOf(t, st)
	}
	e := openEngine(t, engine.Config{Model: path, Parallel: 3, FlashAttention: fa})
	first := []llama.Token{1, 70, 80, 90, 100}
	reply, _ := gen(e, first)      // sequence 0
	gen(e, []llama.Token{5, 6, 7}) // sequence 1, the one left with nothing cached
	busy, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{9, 9, 9}, MaxTokens: 200, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close() // sequence 2, never read: it stalls and stays busy
	second := slices.Concat(first, reply, []llama.Token{110, 120})
	got, res := gen(e, second)
	if want := len(first) + n - 1; res.CachedTokens != want {
		t.Errorf("resumed: %d cached tokens, want %d", res.CachedTokens, want)
	}
	if c := e.Counters(); c.KVCopies != 1 {
		t.Errorf("%d KV copies, want 1 (into sequence 1, between 0 and 2)", c.KVCopies)
	}
	want, _ := gen(openEngine(t, engine.Config{Model: path, Parallel: 1, FlashAttention: fa}), second)
	if !slices.Equal(got, want) {
		t.Errorf("resumed from the copied KV: got %v, want %v (decoded afresh)", got, want)
	}
}

// TestEngineCompactsSequences cancels the middle one of three requests
// generating together: the gap it leaves (sequences 0 and 2 busy, which
// llama.cpp would decode in two passes a step) is closed by moving the
// third request to sequence 1, and its tokens are those it gets alone.
func TestEngineCompactsSequences(t *testing.T) {
	withFlashAttention(t, compactsSequences)
}

func compactsSequences(t *testing.T, fa llama.FlashAttention) {
	path := tinyModel(t, "tiny-dense")
	const n = 40
	prompts := [][]llama.Token{{1, 70, 80}, {1, 33, 34}, {1, 100, 101, 102}}
	alone := func(p []llama.Token) []llama.Token {
		st, err := openEngine(t, engine.Config{Model: path, Parallel: 1, FlashAttention: fa}).Generate(context.Background(), engine.Request{Tokens: p, MaxTokens: n, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := tokensOf(t, st)
		return toks
	}
	want := alone(prompts[2])
	e := openEngine(t, engine.Config{Model: path, Parallel: 3, FlashAttention: fa})
	streams := make([]*engine.Stream, len(prompts))
	for i, p := range prompts {
		st, err := e.Generate(context.Background(), engine.Request{Tokens: p, MaxTokens: n, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = st
	}
	var got []llama.Token
	var wg sync.WaitGroup
	wg.Go(func() { tokensOf(t, streams[0]) })
	wg.Go(func() { got, _ = tokensOf(t, streams[2]) })
	for range streams[1].Deltas() {
		streams[1].Close() // after its first token
	}
	wg.Wait()
	if c := e.Counters(); c.KVCopies == 0 {
		t.Errorf("no KV copies: the gap left by the cancelled request was not closed")
	}
	if !slices.Equal(got, want) {
		t.Errorf("moved request: got %v, want %v (alone)", got, want)
	}
}

// TestEngineSequenceStreams checks that each sequence has a KV stream of
// its own of ContextSize cells, as llama-server's slots do. In one cache
// shared by all, each sequence's attention spans the cells of all: at
// 512-token prompts four streams decoded 0.74-0.81x as fast
// (llama.BenchmarkBatchedDecode, unified/split).
func TestEngineSequenceStreams(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense"), ContextSize: 256, Parallel: 4})
	if got := engine.SeqCells(e); got != 256 {
		t.Errorf("each sequence has %d KV cells, want its own 256", got)
	}
}

// TestEngineQueueAndOverload fills one sequence and a queue of one: the
// third request is refused at once with ErrOverloaded, the queued one runs
// when the first is cancelled, and a cancelled request frees its sequence.
func TestEngineQueueAndOverload(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense"), Parallel: 1, QueueSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	long, err := e.Generate(ctx, engine.Request{Tokens: []llama.Token{1, 2, 3}, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the long request holds the sequence.
	for e.Counters().GenTokens == 0 {
		time.Sleep(time.Millisecond)
	}
	queued, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 5}, MaxTokens: 3, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 6}, MaxTokens: 3}); !errors.Is(err, engine.ErrOverloaded) {
		t.Fatalf("third request: got %v, want ErrOverloaded", err)
	}
	cancel()
	if r := long.Result(); r.StopReason != engine.StopCancelled || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("cancelled request: stop %s, err %v", r.StopReason, r.Err)
	}
	toks, r := tokensOf(t, queued)
	if len(toks) != 3 || r.StopReason != engine.StopLength {
		t.Errorf("queued request: %d tokens, stop %s, err %v", len(toks), r.StopReason, r.Err)
	}
}

// TestEngineCancelWhileQueued cancels a request that waits in the queue
// behind one that holds the only sequence (its reader does not read, so it
// holds it until closed): the queued request must end at once and give
// its place in the queue back, not when the sequence frees.
func TestEngineCancelWhileQueued(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense"), Parallel: 1, QueueSize: 1})
	holder, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 2, 3}, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for e.Counters().Active == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	queued, err := e.Generate(ctx, engine.Request{Tokens: []llama.Token{1, 5}, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 6}, MaxTokens: 3}); !errors.Is(err, engine.ErrOverloaded) {
		t.Fatalf("with the queue full: got %v, want ErrOverloaded", err)
	}
	cancel()
	ended := make(chan engine.Result, 1)
	go func() { ended <- queued.Result() }()
	select {
	case r := <-ended:
		if r.StopReason != engine.StopCancelled || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("cancelled queued request: stop %s, err %v", r.StopReason, r.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled queued request did not end while the sequence stayed busy")
	}
	if c := e.Counters(); c.Waiting != 0 || c.Active != 1 {
		t.Errorf("counters after the cancel: %+v, want 1 active and 0 waiting", c)
	}
	next, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 7}, MaxTokens: 3, IgnoreEOS: true})
	if err != nil {
		t.Fatalf("the queue's place was not given back: %v", err)
	}
	holder.Close()
	if toks, r := tokensOf(t, next); len(toks) != 3 {
		t.Errorf("request queued after the cancel: %d tokens, stop %s, err %v", len(toks), r.StopReason, r.Err)
	}
}

// TestEnginePersonasWithoutAdapters names thousands of personas in
// requests that use no adapter (refused, here, for naming an unknown
// one): none is registered, so the persona table cannot fill and the
// default persona keeps working.
func TestEnginePersonasWithoutAdapters(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense")})
	for i := range 5000 {
		_, err := e.Generate(context.Background(), engine.Request{Prompt: "a", Persona: fmt.Sprintf("p%d", i), Adapter: "nope"})
		if !errors.Is(err, engine.ErrUnknownAdapter) {
			t.Fatalf("request %d: got %v, want ErrUnknownAdapter", i, err)
		}
	}
	for _, p := range []string{"", "someone-new"} {
		st, err := e.Generate(context.Background(), engine.Request{Prompt: "a", Persona: p, MaxTokens: 2})
		if err != nil {
			t.Fatalf("persona %q after 5000 others: %v", p, err)
		}
		st.Close()
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: "a", Persona: "bad\nname"}); !errors.Is(err, engine.ErrBadRequest) {
		t.Errorf("persona with a newline: got %v, want ErrBadRequest", err)
	}
}

func TestEngineRequestErrors(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense"), ContextSize: 64})
	long := make([]llama.Token, 64)
	for i := range long {
		long[i] = 1
	}
	for _, tc := range []struct {
		name string
		req  engine.Request
		want error
	}{
		{"empty", engine.Request{}, engine.ErrEmptyPrompt},
		{"two prompts", engine.Request{Prompt: "a", Tokens: []llama.Token{1}}, engine.ErrBadRequest},
		{"too long", engine.Request{Tokens: long}, engine.ErrPromptTooLong},
		{"negative max", engine.Request{Prompt: "a", MaxTokens: -1}, engine.ErrBadRequest},
		{"bad token", engine.Request{Tokens: []llama.Token{1, 1 << 20}}, engine.ErrBadRequest},
		{"empty stop", engine.Request{Prompt: "a", Stop: []string{""}}, engine.ErrBadRequest},
		{"bad top_p", engine.Request{Prompt: "a", Sampling: engine.Sampling{Temperature: 1, TopP: 2}}, engine.ErrBadRequest},
		{"unknown adapter", engine.Request{Prompt: "a", Adapter: "nope"}, engine.ErrUnknownAdapter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Generate(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEngineStopStrings takes a stretch of the model's own greedy output
// as a stop string: the second run must end just before it, with the text
// before it intact.
func TestEngineStopStrings(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense")})
	req := engine.Request{Prompt: "The quick brown fox", MaxTokens: 40, IgnoreEOS: true}
	st, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := st.Text()
	if len(full) < 12 {
		t.Fatalf("greedy output too short to cut: %q", full)
	}
	stop := full[len(full)/2 : len(full)/2+3]
	want := full[:strings.Index(full, stop)]
	req.Stop = []string{"\x00never", stop}
	st, err = e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got, res := st.Text()
	if got != want || res.StopReason != engine.StopString {
		t.Errorf("with stop %q: got %q (%s), want %q (stop)", stop, got, res.StopReason, want)
	}
}

// TestEngineEvents checks the request, first-token and completion events
// of one request, in order, with the request's ID, and their JSON forms.
func TestEngineEvents(t *testing.T) {
	b := bus.New()
	var c collector
	if _, err := engine.SubscribeInference(b, c.module()); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense"), Bus: b})
	st, err := e.Generate(context.Background(), engine.Request{Prompt: "hi", Persona: "alice", MaxTokens: 5, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	_, res := st.Text()
	want := []string{bus.KeyLLMRequest, bus.KeyLLMFirstToken, bus.KeyLLMComplete}
	if got := c.keys(st.ID()); !slices.Equal(got, want) {
		t.Fatalf("events of %s: got %v, want %v", st.ID(), got, want)
	}
	c.mu.Lock()
	last := c.got[len(c.got)-1]
	c.mu.Unlock()
	done, err := engine.CompleteTopic.Decode(last.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if done.CompletionTokens != 5 || done.StopReason != engine.StopLength || done.Persona != "alice" || done.PromptTokens != res.PromptTokens {
		t.Errorf("completion %+v", done)
	}
	raw, _ := json.Marshal(done)
	var m map[string]any
	json.Unmarshal(raw, &m)
	if id, _ := m["id"].(string); id != st.ID().String() {
		t.Errorf("JSON id %v, want the UUID string %s (%s)", m["id"], st.ID(), raw)
	}
	if _, ok := m["total_ms"].(float64); !ok {
		t.Errorf("JSON total_ms missing: %s", raw)
	}
	// One-token requests race their own acceptance the hardest: the
	// request event must still come first.
	for range 200 {
		one, err := e.Generate(context.Background(), engine.Request{Prompt: "hi", MaxTokens: 1})
		if err != nil {
			t.Fatal(err)
		}
		one.Text()
		if got := c.keys(one.ID()); !slices.Equal(got, want) {
			t.Fatalf("events of one-token request %s: got %v, want %v", one.ID(), got, want)
		}
	}
}

// TestEngineAdapters checks adapter ownership end to end: a persona that
// does not own an adapter is refused, the denial is published and in the
// audit log; the owner's request changes the output, and a request
// without the adapter decoded beside it gets the base model's tokens.
func TestEngineAdapters(t *testing.T) {
	dir := t.TempDir()
	path := tinyModel(t, "tiny-dense")
	spec, _ := modelgen.Preset("tiny-dense")
	lora := filepath.Join(dir, "lora.gguf")
	if err := modelgen.WriteLoRA(lora, spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 8); err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	var denials collector
	if _, err := b.SubscribeArtifact(bus.Exact(bus.KeyAccessDenied), denials.module()); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit.log")
	e, err := engine.Open(context.Background(), engine.Config{
		Model: path, Threads: 2, ContextSize: 128, Bus: b, AuditLog: logPath,
		Adapters: []engine.AdapterSpec{{Name: "alice-style", Path: lora, Owner: "alice"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	prompt := []llama.Token{1, 70, 80, 90}
	if _, err := e.Generate(context.Background(), engine.Request{Tokens: prompt, Persona: "bob", Adapter: "alice-style"}); !errors.Is(err, engine.ErrAccessDenied) {
		t.Fatalf("bob with alice's adapter: got %v, want ErrAccessDenied", err)
	}
	base, err := e.Generate(context.Background(), engine.Request{Tokens: prompt, Persona: "bob", MaxTokens: 8, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	styled, err := e.Generate(context.Background(), engine.Request{Tokens: prompt, Persona: "alice", Adapter: "alice-style", MaxTokens: 8, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var bt, st []llama.Token
	wg.Go(func() { bt, _ = tokensOf(t, base) })
	wg.Go(func() { st, _ = tokensOf(t, styled) })
	wg.Wait()
	alone, err := e.Generate(context.Background(), engine.Request{Tokens: prompt, MaxTokens: 8, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	at, _ := tokensOf(t, alone)
	if !slices.Equal(bt, at) {
		t.Errorf("base request beside an adapter request: got %v, want %v", bt, at)
	}
	if slices.Equal(st, at) {
		t.Errorf("the adapter changed nothing: %v", st)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(denials.got); n != 1 {
		t.Errorf("%d access-denied events, want 1", n)
	}
	sum, err := audit.Verify(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != 1 {
		t.Errorf("audit log holds %d entries, want the 1 denial", sum.Entries)
	}
	// The entry names the personas, not only their IDs, which are new in
	// every process.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"ActorName":"bob"`) || !strings.Contains(string(raw), `"OwnerName":"alice"`) {
		t.Errorf("the audit entry does not name bob and alice: %s", raw)
	}
}

// TestEngineBusCommand asks for inference through the bus runtime, as a
// module that does not import engine would, with a JSON payload.
func TestEngineBusCommand(t *testing.T) {
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-dense")})
	res, err := e.Runtime().Send(context.Background(), engine.ModuleName, bus.Command{
		Name: bus.KeyLLMRequest, Payload: json.RawMessage(`{"prompt":"hello","max_tokens":4,"ignore_eos":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := res.(engine.Response)
	if !ok || r.CompletionTokens != 4 || r.StopReason != engine.StopLength || r.Text == "" {
		t.Errorf("got %#v", res)
	}
	if _, err := e.Runtime().Send(context.Background(), engine.ModuleName, bus.Command{Name: bus.KeyLLMRequest, Payload: json.RawMessage(`{"prompt":`)}); err == nil {
		t.Error("a malformed payload was accepted")
	}
}

// TestEngineResidencyFaults runs a budgeted MoE engine and checks that
// page-ins are published as residency faults attributed to the request.
func TestEngineResidencyFaults(t *testing.T) {
	b := bus.New()
	var c collector
	if _, err := b.SubscribeArtifact(bus.Exact(bus.KeyResidencyFault), c.module()); err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, engine.Config{Model: tinyModel(t, "tiny-moe"), Bus: b, Budget: 1 << 20})
	st, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 70, 80}, MaxTokens: 6, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, res := tokensOf(t, st); res.Err != nil {
		t.Fatal(res.Err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		t.Fatal("no residency faults with every expert evicted")
	}
	for _, a := range c.got {
		f, err := engine.ResidencyFaultTopic.Decode(a.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if f.ID != st.ID() || f.Bytes <= 0 || f.Layer < 0 || f.Expert < 0 || f.To == "" {
			t.Fatalf("fault %+v (request %s)", f, st.ID())
		}
	}
	if got := e.Counters().ResidencyFaults; got != uint64(len(c.got)) {
		t.Errorf("counter %d, events %d", got, len(c.got))
	}
}

// TestEngineCloseWhileStreaming closes the Engine under running streams:
// they end with ErrEngineClosed, Generate is refused after, and closing
// twice is fine.
func TestEngineCloseWhileStreaming(t *testing.T) {
	e, err := engine.Open(context.Background(), engine.Config{Model: tinyModel(t, "tiny-dense"), Threads: 2, ContextSize: 512, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	var streams []*engine.Stream
	for range 3 {
		st, err := e.Generate(context.Background(), engine.Request{Tokens: []llama.Token{1, 2}, IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	for e.Counters().GenTokens < 4 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- e.Close() }()
	for i, st := range streams {
		if r := st.Result(); !errors.Is(r.Err, engine.ErrEngineClosed) {
			t.Errorf("stream %d: %s, %v", i, r.StopReason, r.Err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close hung")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: "x"}); !errors.Is(err, engine.ErrEngineClosed) {
		t.Errorf("Generate after Close: %v", err)
	}
}

// TestEngineOpenErrors checks that a failed Open returns the error and
// frees what it had opened (no panic on the way out).
func TestEngineOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		want string // in the error
	}{
		{"no model", engine.Config{}, "model"},
		{"missing file", engine.Config{Model: filepath.Join(dir, "nope.gguf")}, "nope.gguf"},
		{"negative parallel", engine.Config{Model: "x.gguf", Parallel: -1}, "-1"},
		{"batch below parallel", engine.Config{Model: tinyModel(t, "tiny-dense"), Parallel: 4, BatchSize: 2}, "2"},
		{"budget on a dense model", engine.Config{Model: tinyModel(t, "tiny-dense"), Budget: 1 << 20}, "expert"},
		{"missing adapter", engine.Config{Model: tinyModel(t, "tiny-dense"), Adapters: []engine.AdapterSpec{{Name: "a", Path: filepath.Join(dir, "a.gguf")}}}, "a.gguf"},
		{"missing audit dir", engine.Config{Model: tinyModel(t, "tiny-dense"), AuditLog: filepath.Join(dir, "no", "such", "audit.log")}, "audit"},
		{"missing backend dir", engine.Config{Model: tinyModel(t, "tiny-dense"), BackendDir: filepath.Join(dir, "lib")}, "lib"},
		{"backend dir without backends", engine.Config{Model: tinyModel(t, "tiny-dense"), BackendDir: dir}, "no ggml backend library"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.Open(context.Background(), tc.cfg)
			if err == nil || e != nil {
				t.Fatalf("got %v, %v; want an error", e, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %q, want it to name %q", err, tc.want)
			}
		})
	}
}

// TestResultTokensPerSecond counts the decodes after the first token: one
// fewer than the tokens, unless an end-of-generation token (sampled after
// the last token was decoded) ended the request.
func TestResultTokensPerSecond(t *testing.T) {
	for _, tc := range []struct {
		n    int
		stop engine.StopReason
		want float64
	}{
		{5, engine.StopLength, 4}, {5, engine.StopString, 4}, {5, engine.StopEOG, 5},
		{1, engine.StopLength, 0}, {1, engine.StopEOG, 1}, {0, engine.StopEOG, 0},
	} {
		r := engine.Result{CompletionTokens: tc.n, StopReason: tc.stop, Generation: time.Second}
		if got := r.TokensPerSecond(); got != tc.want {
			t.Errorf("%d tokens, stop %s: %v tokens/s, want %v", tc.n, tc.stop, got, tc.want)
		}
	}
}

// TestEngineChatTemplateFallback opens models whose GGUF carries a chat
// template llama.cpp recognises (kept) and one it does not (chat falls
// back to the default rather than failing every chat request).
func TestEngineChatTemplateFallback(t *testing.T) {
	spec, err := modelgen.Preset("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tmpl, want string
	}{
		{"known", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", ""},
		{"unknown", "{% for m in messages %}[[{{ m.content }}]]{% endfor %}", llama.DefaultChatTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec.ChatTemplate = tc.tmpl
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			e := openEngine(t, engine.Config{Model: path})
			want := tc.want
			if want == "" {
				want = tc.tmpl
			}
			if got := e.ChatTemplate(); got != want {
				t.Errorf("chat template %q, want %q", got, want)
			}
			st, err := e.Generate(context.Background(), engine.Request{Messages: []llama.ChatMessage{{Role: "user", Content: "hi"}}, MaxTokens: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, r := st.Text(); r.Err != nil || r.PromptTokens < 3 {
				t.Errorf("chat request: %+v", r)
			}
		})
	}
}
