package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-llm/strata/llama"
)

// Generator runs the prompt-then-token loop over one llama.Context and
// Sampler, sequence 0. It owns a reusable batch and does not allocate per
// generated token. It is used by one goroutine at a time.
type Generator struct {
	ctx   *llama.Context
	smp   *llama.Sampler
	vocab *llama.Vocab
	batch *llama.Batch
	pos   int32 // next position in sequence 0
	last  llama.Token
}

// NewGenerator prepares a generator; Close frees its batch (not ctx or
// smp, which the caller owns).
func NewGenerator(ctx *llama.Context, smp *llama.Sampler) (*Generator, error) {
	b, err := llama.NewBatch(ctx.NBatch(), 1)
	if err != nil {
		return nil, err
	}
	return &Generator{ctx: ctx, smp: smp, vocab: ctx.Model().Vocab(), batch: b, last: llama.NullToken}, nil
}

// Close frees the generator's batch. It is idempotent.
func (g *Generator) Close() error { return g.batch.Close() }

// Pos is the number of tokens in the sequence so far.
func (g *Generator) Pos() int32 { return g.pos }

// Reset forgets the sequence: the KV cache is cleared and positions start
// at 0 again.
func (g *Generator) Reset() {
	g.ctx.ClearMemory(false)
	g.smp.Reset()
	g.pos = 0
	g.last = llama.NullToken
}

// Prompt decodes tokens in batches of at most NBatch, leaving the logits of
// the last one ready for Next. Cancelling ctx stops it between or within
// batches.
func (g *Generator) Prompt(ctx context.Context, tokens []llama.Token) error {
	if len(tokens) == 0 {
		return fmt.Errorf("engine: prompt: no tokens")
	}
	if int(g.pos)+len(tokens) > g.ctx.NCtx() {
		return fmt.Errorf("engine: prompt: %d tokens after %d do not fit a context of %d", len(tokens), g.pos, g.ctx.NCtx())
	}
	for len(tokens) > 0 {
		n := min(len(tokens), g.batch.Cap())
		g.batch.Clear()
		if err := g.batch.AddSequence(tokens[:n], g.pos, 0); err != nil {
			return err
		}
		if err := g.ctx.DecodeContext(ctx, g.batch); err != nil {
			return fmt.Errorf("engine: prompt: %w", err)
		}
		g.pos += int32(n)
		tokens = tokens[n:]
	}
	return nil
}

// Next samples the next token from the pending logits and decodes it, so
// that the logits after it are pending in turn. It returns the sampled
// token and whether it ends generation (an EOG token is returned but not
// decoded). It does not allocate.
func (g *Generator) Next() (tok llama.Token, eog bool, err error) {
	if tok, err = g.smp.Sample(g.ctx, -1); err != nil {
		return tok, false, fmt.Errorf("engine: sample: %w", err)
	}
	if g.vocab.IsEOG(tok) {
		return tok, true, nil
	}
	return tok, false, g.Feed(tok)
}

// Feed decodes tok as the next token of the sequence without sampling, so
// that the logits after it are pending, as after Next. It is llama-bench's
// tg step, with tokens the caller chose. It does not allocate.
func (g *Generator) Feed(tok llama.Token) error {
	if int(g.pos) >= g.ctx.NCtx() {
		return fmt.Errorf("engine: context of %d tokens is full: %w", g.ctx.NCtx(), llama.ErrKVCacheFull)
	}
	g.batch.Clear()
	if err := g.batch.Add(tok, g.pos, 0, true); err != nil {
		return err
	}
	if err := g.ctx.Decode(g.batch); err != nil {
		return err
	}
	g.pos++
	g.last = tok
	return nil
}

// Stats describes one Generate call, measured by the Go loop itself and by
// llama.cpp's counters over the same decodes.
type Stats struct {
	PromptTokens int
	PromptTime   time.Duration
	GenTokens    int           // tokens returned by Next (an EOG included)
	GenDecodes   int           // single-token decodes run
	GenTime      time.Duration // wall time of the token loop
	StopReason   string        // "length", "eog", "cancelled", "callback"
	Perf         llama.Perf    // llama.cpp's counters for this call
}

// PromptTokensPerSecond is the prompt throughput the Go side saw.
func (s Stats) PromptTokensPerSecond() float64 { return perSecond(s.PromptTokens, s.PromptTime) }

// GenTokensPerSecond is the generation throughput of the Go loop: decodes
// per wall-clock second, sampling and Go overhead included.
func (s Stats) GenTokensPerSecond() float64 { return perSecond(s.GenDecodes, s.GenTime) }

// LoopEfficiency is GenTokensPerSecond over llama.cpp's own eval
// throughput for the same decodes: the share of the C speed the Go loop
// keeps (1 means no overhead).
func (s Stats) LoopEfficiency() float64 {
	c := s.Perf.EvalTokensPerSecond()
	if c == 0 {
		return 0
	}
	return s.GenTokensPerSecond() / c
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate decodes prompt, then generates up to n tokens, calling emit for
// each (emit returning false stops early). It resets the perf counters
// first so that Stats.Perf covers exactly this call.
func (g *Generator) Generate(ctx context.Context, prompt []llama.Token, n int, emit func(llama.Token) bool) (Stats, error) {
	var st Stats
	g.ctx.ResetPerf()
	t0 := time.Now()
	if err := g.Prompt(ctx, prompt); err != nil {
		// An aborted decode is a cancellation only when ctx ended: an
		// observer (the expert pager, failing to page) aborts too.
		if errors.Is(err, llama.ErrAborted) && ctx.Err() != nil {
			st.StopReason = "cancelled"
		}
		return st, err
	}
	g.ctx.Synchronize()
	st.PromptTokens = len(prompt)
	st.PromptTime = time.Since(t0)

	st.StopReason = "length"
	t1 := time.Now()
	for st.GenTokens < n {
		if ctx.Err() != nil {
			st.StopReason = "cancelled"
			break
		}
		tok, eog, err := g.Next()
		if err != nil {
			st.GenTime = time.Since(t1)
			st.Perf = g.ctx.Perf()
			return st, err
		}
		st.GenTokens++
		if !eog {
			st.GenDecodes++
		}
		if emit != nil && !emit(tok) {
			st.StopReason = "callback"
			break
		}
		if eog {
			st.StopReason = "eog"
			break
		}
	}
	g.ctx.Synchronize() // count the last decode's GPU time in the loop's
	st.GenTime = time.Since(t1)
	st.Perf = g.ctx.Perf()
	if st.StopReason == "cancelled" {
		return st, fmt.Errorf("engine: generate: %w", ctx.Err())
	}
	return st, nil
}
