package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// SamplerParams configures a sampler chain. The chain applies, in order:
// repetition penalties, top-k, top-p, min-p, temperature, then picks a
// token — greedily when Greedy is set or Temperature is 0, else by seeded
// random draw. Zero values disable a stage.
type SamplerParams struct {
	Greedy      bool
	Temperature float32
	TopK        int
	TopP        float32 // 0 or 1 disables
	MinP        float32
	// Repetition penalties over the last PenaltyLastN tokens (0 disables,
	// -1 means the context size).
	PenaltyLastN     int
	RepeatPenalty    float32 // 1 disables
	FrequencyPenalty float32
	PresencePenalty  float32
	// Seed for the random draw; 0xFFFFFFFF asks llama.cpp for a random one.
	Seed uint32
	// Vocab is the vocabulary of the model the sampler serves. The
	// repetition penalties need it (llama.cpp sizes their token counts by
	// it); other stages do not.
	Vocab *Vocab
}

// Sampler is a llama.cpp sampler chain. It is used by one goroutine at a
// time.
//
// Two common chains skip llama_sampler_sample's first step, which copies
// every logit into an array of candidates (128,256 of them for Llama 3):
// greedy ones take the largest logit straight from llama.cpp's output, and
// ones that start with top-k (no penalties) pick the k largest in one pass
// and hand those to the chain's later stages. They choose the same tokens
// as the chain (TestSamplerFastPaths); BenchmarkSample measures both.
type Sampler struct {
	c    *C.struct_llama_sampler // the whole chain, or its stages after top-k
	mode samplerMode
	k    int                 // top-k
	buf  *C.llama_token_data // k candidates, C memory
}

type samplerMode int

const (
	sampleChain samplerMode = iota
	sampleGreedy
	sampleTopK
)

// maxFastTopK bounds the k that takes the one-pass path (a heap of k).
const maxFastTopK = 1024

// NewSampler builds a sampler chain from p.
func NewSampler(p SamplerParams) (*Sampler, error) { return newSampler(p, true) }

func newSampler(p SamplerParams, fast bool) (*Sampler, error) {
	Init()
	for _, c := range []struct {
		bad  bool
		name string
		v    any
		want string
	}{
		{p.Temperature < 0, "temperature", p.Temperature, "0 or more (0: greedy)"},
		{p.TopK < 0, "top-k", p.TopK, "0 or more (0: off)"},
		{p.TopP < 0 || p.TopP > 1, "top-p", p.TopP, "0 to 1"},
		{p.MinP < 0 || p.MinP > 1, "min-p", p.MinP, "0 to 1"},
		{p.PenaltyLastN < -1, "penalty last-n", p.PenaltyLastN, "-1 (the context) or more"},
	} {
		if c.bad {
			return nil, fmt.Errorf("llama: sampler: %s %v: want %s", c.name, c.v, c.want)
		}
	}
	cp := C.llama_sampler_chain_default_params()
	chain := C.llama_sampler_chain_init(cp)
	if chain == nil {
		return nil, &Error{Op: "NewSampler", Detail: "llama_sampler_chain_init returned NULL"}
	}
	add := func(stage *C.struct_llama_sampler) { C.llama_sampler_chain_add(chain, stage) }
	s := &Sampler{c: chain}
	penalties := p.PenaltyLastN != 0 && (p.RepeatPenalty != 1 && p.RepeatPenalty != 0 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0)
	if penalties {
		rp := p.RepeatPenalty
		if rp == 0 {
			rp = 1
		}
		if p.Vocab == nil {
			C.llama_sampler_free(chain)
			return nil, fmt.Errorf("llama: new sampler: repetition penalties need SamplerParams.Vocab")
		}
		add(C.llama_sampler_init_penalties(C.int32_t(p.Vocab.Size()), C.int32_t(p.PenaltyLastN), C.float(rp), C.float(p.FrequencyPenalty), C.float(p.PresencePenalty)))
	}
	if p.Greedy || p.Temperature == 0 {
		add(C.llama_sampler_init_greedy())
		if fast && !penalties {
			s.mode = sampleGreedy
		}
	} else {
		if fast && !penalties && p.TopK > 0 && p.TopK <= maxFastTopK {
			s.mode, s.k = sampleTopK, p.TopK
			s.buf = (*C.llama_token_data)(C.malloc(C.size_t(p.TopK) * C.sizeof_llama_token_data))
		} else if p.TopK > 0 {
			add(C.llama_sampler_init_top_k(C.int32_t(p.TopK)))
		}
		if p.TopP > 0 && p.TopP < 1 {
			add(C.llama_sampler_init_top_p(C.float(p.TopP), 1))
		}
		if p.MinP > 0 {
			add(C.llama_sampler_init_min_p(C.float(p.MinP), 1))
		}
		add(C.llama_sampler_init_temp(C.float(p.Temperature)))
		add(C.llama_sampler_init_dist(C.uint32_t(p.Seed)))
	}
	runtime.SetFinalizer(s, func(s *Sampler) {
		if s.c != nil {
			logSink.emit(ggmlLogWarn, "strata: llama.Sampler garbage-collected without Close; its memory leaks")
		}
	})
	return s, nil
}

// Sample picks a token from the logits at batch position idx (-1: the
// last) of ctx's last Decode and records it in the chain's history (for
// penalties). It does not allocate. After a Decode that failed or was
// aborted there are no logits to sample, and it returns ErrNoLogits
// (llama.cpp would read past them).
func (s *Sampler) Sample(ctx *Context, idx int) (Token, error) {
	if s.c == nil || ctx == nil || ctx.c == nil {
		return 0, fmt.Errorf("llama: sample: %w", ErrClosed)
	}
	if idx >= ctx.lastBatch || -idx > ctx.lastBatch {
		return 0, fmt.Errorf("%w: position %d of a batch of %d", ErrNoLogits, idx, ctx.lastBatch)
	}
	var t C.int32_t
	switch s.mode {
	case sampleGreedy:
		t = C.strata_sample_greedy(s.c, ctx.c, C.int32_t(idx))
	case sampleTopK:
		t = C.strata_sample_top_k(s.c, ctx.c, C.int32_t(idx), C.int32_t(s.k), s.buf)
	default:
		t = C.strata_sample(s.c, ctx.c, C.int32_t(idx))
	}
	switch {
	case t == -2:
		return 0, &Error{Op: "Sample", Detail: "the sampler chose no token"}
	case t < 0:
		logSink.takeLastError()
		return 0, fmt.Errorf("%w: position %d was not marked for output", ErrNoLogits, idx)
	}
	return Token(t), nil
}

// Accept records t in the chain's history without sampling, e.g. for the
// prompt tokens when penalties should see them.
func (s *Sampler) Accept(t Token) {
	if s.c != nil {
		C.llama_sampler_accept(s.c, C.llama_token(t))
	}
}

// Reset clears the chain's history and reseeds nothing.
func (s *Sampler) Reset() {
	if s.c != nil {
		C.llama_sampler_reset(s.c)
	}
}

// Close frees the chain. It is idempotent.
func (s *Sampler) Close() error {
	if s == nil || s.c == nil {
		return nil
	}
	C.llama_sampler_free(s.c)
	s.c = nil
	C.free(unsafe.Pointer(s.buf))
	s.buf = nil
	runtime.SetFinalizer(s, nil)
	return nil
}
