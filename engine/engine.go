package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-llm/strata/audit"
	"github.com/strata-llm/strata/bus"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/llama"
)

// Config configures Open. Zero fields take the defaults their comments
// give.
type Config struct {
	// Model is the GGUF file to serve.
	Model string
	// Name is the model's name in events and the OpenAI API; default the
	// file name without ".gguf".
	Name string
	// Threads for decoding; default runtime.NumCPU(). ggml's workers
	// spin at their barriers, so Go code running on their cores slows
	// every decode: a program that decodes on all its cores does well to
	// lower GOMAXPROCS to the cores left over (at least 1), as strata run
	// and serve do (README, "Serving").
	Threads int
	// ContextSize is each sequence's context in tokens: a request's
	// prompt plus its generated tokens must fit. Each sequence has a KV
	// stream of its own of that many cells (llama.cpp rounds it up to a
	// multiple of 256), as llama-server's slots do: in one cache shared
	// by all, every sequence's attention would span the cells of all.
	// Default 4096, or the model's training context when that is smaller.
	ContextSize int
	// Parallel is how many requests are decoded together (sequences in
	// one llama.cpp context, continuous batching); default 4.
	Parallel int
	// QueueSize is how many admitted requests may wait for a free
	// sequence; beyond it Generate fails with ErrOverloaded. Default 64.
	QueueSize int
	// BatchSize is the most tokens one decode carries (llama.cpp's
	// n_batch): generating sequences first, prompt chunks in what is left.
	// Default 512.
	BatchSize int
	// GPULayers offloads that many layers to a GPU backend (-1: all).
	GPULayers int
	// BackendDir, if set, loads ggml backends (libggml-cuda.so, …) from
	// that folder before the model.
	BackendDir string
	// FlashAttention is llama.cpp's flash-attention mode (default off).
	FlashAttention llama.FlashAttention
	// NoPromptCache makes every request decode its whole prompt
	// (Request.NoPromptCache for all). The cache shows through a
	// request's CachedTokens and its time to the first token whether
	// earlier prompts of its persona started the same way; where clients
	// share a persona and must not learn of each other's prompts, turn it
	// off.
	NoPromptCache bool
	// Budget, when positive, pages the model's MoE experts through the
	// genome within that many bytes (see Budget and PagedExperts).
	Budget int64
	// Prefetch, with a Budget, predicts each MoE layer's experts from the
	// layer before and reads them ahead off the decoding goroutine
	// (BudgetOptions.Prefetch).
	Prefetch bool
	// Bus receives the Engine's events and the genome's; nil means a bus
	// of the Engine's own (Engine.Bus).
	Bus *bus.MessageBus
	// AuditLog, if set, is the path of a tamper-evident audit log the
	// Engine opens: access denials (adapters refused to a persona) and
	// refusals are recorded there before the request is refused.
	AuditLog string
	// Adapters are the LoRA adapters requests may name.
	Adapters []AdapterSpec
	// Logger receives the Engine's own log lines; nil discards them.
	Logger *slog.Logger
}

// AdapterSpec is one LoRA adapter a request may ask for by Name.
type AdapterSpec struct {
	Name  string
	Path  string
	Scale float32 // 0 means 1
	// Owner is the persona the adapter belongs to: only its requests may
	// use it. Empty means every persona may.
	Owner string
}

// DefaultPersona is the persona of requests that name none.
const DefaultPersona = "default"

// maxPersonas bounds the personas an Engine registers, since request
// headers name them. Only requests for an adapter register theirs (the
// genome checks and audits the access); the default persona and the
// adapters' owners are registered when the Engine opens.
const maxPersonas = 4096

// Engine serves one model to many concurrent requests: each request is a
// sequence of one shared llama.cpp context, and every decode step carries
// a token (or a prompt chunk) of every active sequence. It publishes
// inference events on its bus. Engine is safe for concurrent use; Close
// and Shutdown may be called in any order, any number of times.
type Engine struct {
	cfg    Config
	name   string
	model  *llama.Model
	vocab  *llama.Vocab
	lctx   *llama.Context
	budget *Budget
	gm     *genome.Local
	bus    *bus.MessageBus
	rt     *bus.Runtime
	alog   *audit.Log
	rec    *audit.Recorder
	tmpl   string
	log    *slog.Logger

	adapters map[string]*adapter
	self     genome.PersonaID // the engine's own persona in the genome

	queue    chan *request
	quit     chan struct{} // closed by Close: the loop cancels everything and returns
	loopDone chan struct{}

	// inflight is read-held by Generate while it tokenizes and checks a
	// request against the model and genome; Close write-holds it before
	// freeing them, so no request is prepared on a freed model.
	inflight sync.RWMutex

	mu       sync.Mutex // guards personas, closing, draining
	personas map[string]genome.PersonaID
	closing  bool
	closeErr error
	closed   chan struct{} // closed when Close has freed everything

	st  stats
	sch scheduler // used by the loop goroutine only
}

// adapter is a loaded LoRA adapter and its page in the genome.
type adapter struct {
	spec AdapterSpec
	a    *llama.Adapter
	page genome.PageRef
}

// stats are the Engine's counters, read by Stats.
type stats struct {
	accepted, rejected, completed atomic.Uint64
	promptTokens, genTokens       atomic.Uint64
	cachedTokens, kvCopies        atomic.Uint64
	active, waiting               atomic.Int64
	faults                        atomic.Uint64
}

// Counters is a snapshot of the Engine's counters.
type Counters struct {
	Accepted, Rejected, Completed uint64 // requests
	PromptTokens, GenTokens       uint64 // prompt tokens decoded, tokens generated
	CachedTokens                  uint64 // prompt tokens whose KV a sequence held already
	KVCopies                      uint64 // KV streams copied to keep the busy sequence ids consecutive
	Active, Waiting               int    // sequences decoding, requests queued
	ResidencyFaults               uint64
}

// Open loads cfg.Model and starts the Engine's decoding goroutine.
// Cancelling ctx stops a load in progress.
func Open(ctx context.Context, cfg Config) (_ *Engine, err error) {
	if cfg.Model == "" {
		return nil, fmt.Errorf("engine: open: no model path")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"Threads", cfg.Threads}, {"ContextSize", cfg.ContextSize}, {"Parallel", cfg.Parallel}, {"QueueSize", cfg.QueueSize}, {"BatchSize", cfg.BatchSize}} {
		if v.n < 0 {
			return nil, fmt.Errorf("engine: open: Config.%s is %d", v.name, v.n)
		}
	}
	if cfg.Budget < 0 {
		return nil, fmt.Errorf("engine: open: Config.Budget is %d", cfg.Budget)
	}
	cfg.Threads = orInt(cfg.Threads, runtime.NumCPU())
	cfg.Parallel = orInt(cfg.Parallel, 4)
	cfg.QueueSize = orInt(cfg.QueueSize, 64)
	cfg.BatchSize = orInt(cfg.BatchSize, 512)
	if cfg.BatchSize < cfg.Parallel {
		// A step decodes one token of every generating sequence.
		return nil, fmt.Errorf("engine: open: Config.BatchSize %d is below Config.Parallel %d", cfg.BatchSize, cfg.Parallel)
	}
	e := &Engine{
		cfg: cfg, bus: cfg.Bus, log: cfg.Logger,
		adapters: map[string]*adapter{},
		personas: map[string]genome.PersonaID{},
		queue:    make(chan *request, cfg.QueueSize),
		quit:     make(chan struct{}),
		loopDone: make(chan struct{}),
		closed:   make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.bus == nil {
		e.bus = bus.New()
	}
	e.rt = bus.NewRuntime(e.bus)
	e.name = cfg.Name
	if e.name == "" {
		e.name = strings.TrimSuffix(filepath.Base(cfg.Model), ".gguf")
	}
	defer func() {
		if err != nil {
			e.free()
		}
	}()

	if cfg.BackendDir != "" {
		if _, err := llama.LoadBackends(cfg.BackendDir); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
	}
	mp := llama.ModelParams{GPULayers: cfg.GPULayers}
	if cfg.Budget > 0 {
		mp = PagedExperts(mp)
	}
	if e.model, err = llama.LoadModelContext(ctx, cfg.Model, mp); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	e.vocab = e.model.Vocab()
	e.tmpl = llama.DefaultChatTemplate
	if t, ok := e.model.ChatTemplate(""); ok {
		// llama.cpp recognises templates by their text; one it does not
		// know would fail every chat request, so chat falls back to the
		// default, as llama-server's non-Jinja path does.
		probe := []llama.ChatMessage{{Role: "user", Content: "hi"}}
		if _, err := llama.ApplyChatTemplate(t, probe, true); err == nil {
			e.tmpl = t
		} else {
			e.log.Warn("the model's chat template is not one llama.cpp knows; chat requests use the default", "default", llama.DefaultChatTemplate, "err", err)
		}
	}

	// The genome holds the expert pages (with a budget) and the adapters'
	// ownership; its events go on the Engine's bus.
	if cfg.Budget > 0 {
		if e.budget, err = NewBudgetWith(ctx, e.model, cfg.Budget, BudgetOptions{Prefetch: cfg.Prefetch}); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
		e.gm = e.budget.Genome
	} else if e.gm, err = genome.NewLocal(genome.Config{}); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	e.gm.AttachBus(e.bus)
	e.self = genome.NewPersonaID()
	full := genome.FullAccess
	if err := e.gm.RegisterPersona(genome.Persona{ID: e.self, Name: "engine", Access: &full}); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}

	if cfg.AuditLog != "" {
		if e.alog, err = audit.Open(cfg.AuditLog, &audit.Options{Sync: audit.SyncEveryEntry}); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
		e.rec = audit.NewRecorder(e.alog, e.bus, audit.WithDirectDenials())
		if err := e.rt.Register(e.rec); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
		// Denials are recorded by the denying call itself, before the
		// request is refused, so none is lost to a full event queue.
		e.gm.SetDenialRecorder(func(d genome.AccessDenied) error { _, err := e.rec.RecordDenial(d); return err })
	}
	// The default persona is registered up front, so that personas named
	// by requests can never crowd it out of the table.
	if _, err := e.persona(DefaultPersona); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	for _, spec := range cfg.Adapters {
		if err := e.addAdapter(spec); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
	}
	if err := e.rt.Register(e.module()); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}

	seqCtx := cfg.ContextSize
	if seqCtx == 0 {
		seqCtx = 4096
		if t := e.model.TrainContext(); t > 0 && t < seqCtx {
			seqCtx = t
		}
	}
	e.cfg.ContextSize = seqCtx
	cp := llama.ContextParams{
		NCtx: seqCtx * cfg.Parallel, NBatch: cfg.BatchSize, NUbatch: min(cfg.BatchSize, 512),
		NSeqMax: cfg.Parallel, Threads: cfg.Threads, FlashAttention: cfg.FlashAttention,
	}
	if e.budget != nil {
		// Page-ins run under pprof labels (layer, expert, persona), so
		// /debug/pprof attributes paging time by layer; the label sets
		// are built once here and switching them allocates nothing.
		if err := e.budget.Pager.LabelPageIns(e.model.Layers(), e.model.ExpertCount()); err != nil {
			return nil, fmt.Errorf("engine: open: %w", err)
		}
		cp.Observer = e.budget.Pager.ObserverWithFaults(e.sch.onFault)
	}
	if e.lctx, err = llama.NewContext(e.model, cp); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	if err := e.sch.init(e); err != nil {
		return nil, fmt.Errorf("engine: open: %w", err)
	}
	go e.loop()
	return e, nil
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// addAdapter loads one adapter and registers it in the genome, owned by
// its persona.
func (e *Engine) addAdapter(spec AdapterSpec) error {
	if spec.Name == "" || spec.Path == "" {
		return fmt.Errorf("adapter %+v: needs a name and a path", spec)
	}
	if _, dup := e.adapters[spec.Name]; dup {
		return fmt.Errorf("adapter %q: named twice", spec.Name)
	}
	if spec.Scale == 0 {
		spec.Scale = 1
	}
	a, err := e.model.LoadAdapter(spec.Path)
	if err != nil {
		return fmt.Errorf("adapter %q: %w", spec.Name, err)
	}
	id, err := e.gm.RegisterArtifact(genome.ArtifactSpec{Name: spec.Name, Path: spec.Path, Kind: genome.ArtifactAdapter})
	if err != nil {
		return fmt.Errorf("adapter %q: %w", spec.Name, err)
	}
	ad := &adapter{spec: spec, a: a, page: genome.WholePage(id)}
	if spec.Owner != "" {
		owner, err := e.persona(spec.Owner)
		if err != nil {
			return err
		}
		if err := e.gm.RegisterPageOwner(e.self, ad.page, owner); err != nil {
			return fmt.Errorf("adapter %q: owner %q: %w", spec.Name, spec.Owner, err)
		}
	}
	e.adapters[spec.Name] = ad
	return nil
}

// persona returns the genome ID of the named persona, registering it
// with the default access table the first time it is seen.
func (e *Engine) persona(name string) (genome.PersonaID, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.personas[name]; ok {
		return id, nil
	}
	if len(e.personas) >= maxPersonas {
		return genome.PersonaID{}, fmt.Errorf("%w: more than %d personas", ErrBadRequest, maxPersonas)
	}
	if err := checkPersona(name); err != nil {
		return genome.PersonaID{}, err
	}
	id := genome.NewPersonaID()
	if err := e.gm.RegisterPersona(genome.Persona{ID: id, Name: name}); err != nil {
		return genome.PersonaID{}, err
	}
	e.personas[name] = id
	return id, nil
}

// checkPersona refuses persona names that are too long or hold control
// characters: they go into events and the audit log.
func checkPersona(name string) error {
	if len(name) > 128 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: persona name %.40q", ErrBadRequest, name)
	}
	return nil
}

// Name is the model's name as requests and events see it.
func (e *Engine) Name() string { return e.name }

// Model is the loaded model. It stays valid until Close.
func (e *Engine) Model() *llama.Model { return e.model }

// Bus is the bus the Engine publishes on.
func (e *Engine) Bus() *bus.MessageBus { return e.bus }

// Runtime is the bus runtime holding the Engine's module ("inference",
// which answers bus.KeyLLMRequest commands) and, with an audit log, the
// audit Recorder.
func (e *Engine) Runtime() *bus.Runtime { return e.rt }

// Genome is the working-set manager of the model's expert pages and the
// adapters.
func (e *Engine) Genome() *genome.Local { return e.gm }

// Budget is the expert-paging budget, or nil when Config.Budget was 0.
func (e *Engine) Budget() *Budget { return e.budget }

// ContextSize is each sequence's context in tokens.
func (e *Engine) ContextSize() int { return e.cfg.ContextSize }

// Parallel is the number of sequences decoded together.
func (e *Engine) Parallel() int { return e.cfg.Parallel }

// ChatTemplate is the template chat requests are formatted with.
func (e *Engine) ChatTemplate() string { return e.tmpl }

// Counters returns the Engine's counters.
func (e *Engine) Counters() Counters {
	return Counters{
		Accepted: e.st.accepted.Load(), Rejected: e.st.rejected.Load(), Completed: e.st.completed.Load(),
		PromptTokens: e.st.promptTokens.Load(), GenTokens: e.st.genTokens.Load(), CachedTokens: e.st.cachedTokens.Load(), KVCopies: e.st.kvCopies.Load(),
		Active: int(e.st.active.Load()), Waiting: int(e.st.waiting.Load()), ResidencyFaults: e.st.faults.Load(),
	}
}

// Close cancels every request (their streams end with ErrEngineClosed),
// stops the decoding goroutine and frees the context, adapters, model,
// genome and audit log, in that order. It is idempotent and may race with
// Generate and Shutdown.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.closed
		return e.closeErr
	}
	e.closing = true
	e.mu.Unlock()
	close(e.quit)
	e.lctx.Interrupt()
	<-e.loopDone
	e.inflight.Lock()
	e.closeErr = e.free()
	e.inflight.Unlock()
	close(e.closed)
	return e.closeErr
}

// Shutdown stops admitting requests and waits for those in flight to
// finish; when ctx ends first it cancels them. Then it closes the Engine.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	already := e.closing
	if !already {
		// Under e.mu: a Generate past its check has taken its place in
		// the queue, and the count below includes it.
		e.sch.draining.Store(true)
	}
	e.mu.Unlock()
	if !already {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
	wait:
		for e.st.active.Load()+e.st.waiting.Load() > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
			}
		}
	}
	return e.Close()
}

// free releases everything Open acquired; nil fields are skipped.
func (e *Engine) free() error {
	var errs []error
	e.sch.free()
	if e.lctx != nil {
		errs = append(errs, e.lctx.Close())
	}
	for _, a := range e.adapters {
		errs = append(errs, a.a.Close())
	}
	if e.budget != nil {
		errs = append(errs, e.budget.Close())
	} else if e.gm != nil {
		errs = append(errs, e.gm.Close())
	}
	if e.model != nil {
		errs = append(errs, e.model.Close())
	}
	if e.rec != nil {
		e.rt.Unregister(e.rec.Name())
		errs = append(errs, e.rec.Err())
	}
	if e.alog != nil {
		errs = append(errs, e.alog.Close())
	}
	return errors.Join(errs...)
}

// Sampling configures how a request's tokens are picked. The zero value
// is greedy.
type Sampling struct {
	Temperature      float32 `json:"temperature,omitempty"` // 0: greedy
	TopK             int     `json:"top_k,omitempty"`
	TopP             float32 `json:"top_p,omitempty"`
	MinP             float32 `json:"min_p,omitempty"`
	Seed             uint32  `json:"seed,omitempty"` // RandomSeed for a random one
	RepeatPenalty    float32 `json:"repeat_penalty,omitempty"`
	RepeatLastN      int     `json:"repeat_last_n,omitempty"`
	FrequencyPenalty float32 `json:"frequency_penalty,omitempty"`
	PresencePenalty  float32 `json:"presence_penalty,omitempty"`
}

// DefaultSampling is llama-server's sampling, which strata serve applies
// to what a request leaves out and strata run's flags default to:
// temperature 0.8 among the 40 most likely tokens, top-p 0.95, min-p
// 0.05, a random seed.
var DefaultSampling = Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, Seed: RandomSeed}

// RandomSeed asks llama.cpp for a random seed.
const RandomSeed uint32 = 0xFFFFFFFF

// Request is one generation. Exactly one of Prompt, Messages and Tokens is
// set.
type Request struct {
	// ID names the request in events; zero means a new random one.
	ID      uuid.UUID `json:"id,omitzero"`
	Persona string    `json:"persona,omitempty"` // empty: DefaultPersona
	// Prompt is raw text, tokenized with the model's BOS rule.
	Prompt string `json:"prompt,omitempty"`
	// Messages are formatted with the model's chat template (or chatml
	// when it has none) and end with an open assistant turn.
	Messages []llama.ChatMessage `json:"messages,omitempty"`
	// Tokens is an already tokenized prompt.
	Tokens []llama.Token `json:"tokens,omitempty"`
	// MaxTokens bounds the generated tokens; 0 means until the
	// sequence's context is full.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Stop ends generation at the first occurrence of any of these
	// strings, which are not part of the output (at most 16).
	Stop []string `json:"stop,omitempty"`
	// IgnoreEOS keeps generating past end-of-generation tokens (for
	// benchmarks).
	IgnoreEOS bool     `json:"ignore_eos,omitempty"`
	Sampling  Sampling `json:"sampling,omitzero"`
	// Adapter names one of Config.Adapters; the persona must be allowed
	// to use it.
	Adapter string `json:"adapter,omitempty"`
	// NoPromptCache decodes the whole prompt even where a free sequence
	// still holds the KV of a prefix of it (llama-server's cache_prompt
	// false). By default a request takes the free sequence whose last
	// request, of the same persona and adapter, shares the longest
	// prefix with its prompt, and decodes only the rest: a chat's next
	// turn decodes the new messages, not the whole conversation again.
	NoPromptCache bool `json:"no_prompt_cache,omitempty"`
}

// StopReason says why a request ended.
type StopReason string

// The stop reasons.
const (
	StopEOG       StopReason = "eog"       // the model produced an end-of-generation token
	StopString    StopReason = "stop"      // a stop string appeared
	StopLength    StopReason = "length"    // MaxTokens or the context was reached
	StopCancelled StopReason = "cancelled" // the caller's context ended or the stream was closed
	StopError     StopReason = "error"     // decoding failed; Result.Err says why
)

// Result is how a request ended, with its usage and timings.
type Result struct {
	ID               uuid.UUID
	StopReason       StopReason
	PromptTokens     int
	CachedTokens     int // of PromptTokens, those whose KV a sequence held from an earlier request
	CompletionTokens int
	QueueWait        time.Duration // accepted until its first decode
	PromptEval       time.Duration // first decode until the first token
	Generation       time.Duration // first token until the last
	Total            time.Duration // accepted until done
	Err              error         // set with StopError and StopCancelled
}

// TokensPerSecond is the generation speed the request saw: the decodes
// after its first token over the time they took. Those are one fewer than
// its tokens, since the last token sampled is not decoded, except when an
// end-of-generation token ended it: then every token was decoded.
func (r Result) TokensPerSecond() float64 {
	n := r.CompletionTokens - 1
	if r.StopReason == StopEOG {
		n++
	}
	if n < 1 || r.Generation <= 0 {
		return 0
	}
	return float64(n) / r.Generation.Seconds()
}

// Delta is one generated token and the text it completes. Text may be
// empty (the token's bytes are held back while they could still be the
// start of a stop string or of a multi-byte character) or carry bytes of
// earlier tokens released now.
type Delta struct {
	Token llama.Token
	n     uint8
	small [40]byte
	big   string // text longer than small, rare
}

// Text returns the delta's text.
func (d *Delta) Text() string {
	if d.big != "" {
		return d.big
	}
	return string(d.small[:d.n])
}

// AppendText appends the delta's text to dst without an allocation of
// its own.
func (d *Delta) AppendText(dst []byte) []byte {
	if d.big != "" {
		return append(dst, d.big...)
	}
	return append(dst, d.small[:d.n]...)
}

// Stream is one request's output. Read it with Deltas to the end, or
// Close it; a Stream neither read nor closed holds its sequence until its
// context ends.
type Stream struct {
	r *request
}

// ID is the request's ID.
func (s *Stream) ID() uuid.UUID { return s.r.id }

// PromptTokens is the length of the tokenized prompt.
func (s *Stream) PromptTokens() int { return len(s.r.tokens) }

// Deltas yields the generated tokens as they are decoded. Breaking out of
// the loop cancels the request. After the loop, Result says how it ended.
func (s *Stream) Deltas() iter.Seq[Delta] {
	return func(yield func(Delta) bool) {
		for d := range s.r.out {
			if !yield(d) {
				s.Close()
				return
			}
		}
	}
}

// Text reads the whole stream and returns its text with the Result.
func (s *Stream) Text() (string, Result) {
	var b []byte
	for d := range s.Deltas() {
		b = d.AppendText(b)
	}
	return string(b), s.Result()
}

// Result waits for the request to end and returns how it did.
func (s *Stream) Result() Result {
	<-s.r.done
	return s.r.res
}

// Close cancels the request if it is still running and waits for it to
// end. It is idempotent.
func (s *Stream) Close() {
	s.r.cancel()
	for range s.r.out {
	}
	<-s.r.done
}

// Generate admits req and returns its stream. Errors that can be known
// before decoding are returned here: a bad or empty request, a prompt
// longer than the context, an unknown or denied adapter, an overloaded
// queue, a closed Engine. ctx bounds the whole request: cancelling it
// ends the stream with StopCancelled and frees its sequence at once (whose
// KV stays cached for a next request that starts the same way).
func (e *Engine) Generate(ctx context.Context, req Request) (*Stream, error) {
	e.inflight.RLock()
	defer e.inflight.RUnlock()
	e.mu.Lock()
	closing := e.closing
	e.mu.Unlock()
	if closing || e.sch.draining.Load() {
		e.st.rejected.Add(1)
		return nil, ErrEngineClosed
	}
	r, err := e.prepare(ctx, req)
	if err != nil {
		e.st.rejected.Add(1)
		return nil, err
	}
	// A place in the queue is taken under e.mu, where Shutdown starts
	// draining: a request it does not see counted is refused.
	e.mu.Lock()
	if e.closing || e.sch.draining.Load() {
		e.mu.Unlock()
		r.release()
		e.st.rejected.Add(1)
		return nil, ErrEngineClosed
	}
	waiting := e.st.waiting.Load()
	if waiting >= int64(e.cfg.QueueSize) {
		e.mu.Unlock()
		r.release()
		e.st.rejected.Add(1)
		return nil, fmt.Errorf("%w (%d running, %d queued)", ErrOverloaded, e.cfg.Parallel, e.cfg.QueueSize)
	}
	e.st.waiting.Add(1)
	e.mu.Unlock()
	e.st.accepted.Add(1)
	// Published before the loop can see r, so it precedes r's first-token
	// and completion events; outside e.mu, so a subscriber may call
	// Generate.
	RequestTopic.Publish(e.bus, RequestAccepted{
		ID: r.id, Persona: r.persona, Model: e.name, Adapter: req.Adapter, PromptTokens: len(r.tokens),
		MaxTokens: r.maxTokens, Queued: int(e.st.active.Load() + waiting), Time: r.accepted,
	})
	// The send happens under e.mu so that Close cannot finish between the
	// check and the send and leave r in a queue nobody reads. It never
	// blocks: the queue holds QueueSize requests, and waiting counts them.
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		e.sch.finishUnstarted(r, StopCancelled, ErrEngineClosed)
		e.st.waiting.Add(-1)
		return &Stream{r: r}, nil
	}
	e.queue <- r
	e.mu.Unlock()
	return &Stream{r: r}, nil
}

// prepare checks and tokenizes req, builds its sampler, and checks the
// persona's right to its adapter.
func (e *Engine) prepare(ctx context.Context, req Request) (*request, error) {
	set := 0
	for _, b := range []bool{req.Prompt != "", len(req.Messages) > 0, len(req.Tokens) > 0} {
		if b {
			set++
		}
	}
	if set == 0 {
		return nil, ErrEmptyPrompt
	}
	if set > 1 {
		return nil, fmt.Errorf("%w: set one of prompt, messages and tokens", ErrBadRequest)
	}
	if req.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: max_tokens %d", ErrBadRequest, req.MaxTokens)
	}
	if len(req.Stop) > 16 {
		return nil, fmt.Errorf("%w: %d stop strings (at most 16)", ErrBadRequest, len(req.Stop))
	}
	maxStop := 0
	for _, s := range req.Stop {
		if s == "" || len(s) > 256 {
			return nil, fmt.Errorf("%w: stop string of %d bytes (want 1 to 256)", ErrBadRequest, len(s))
		}
		maxStop = max(maxStop, len(s))
	}
	persona := req.Persona
	if persona == "" {
		persona = DefaultPersona
	}
	if err := checkPersona(persona); err != nil {
		return nil, err
	}
	var ad *adapter
	if req.Adapter != "" {
		if ad = e.adapters[req.Adapter]; ad == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownAdapter, req.Adapter)
		}
		pid, err := e.persona(persona)
		if err != nil {
			return nil, err
		}
		if err := e.gm.AuditAccess(pid, ad.page); err != nil {
			if errors.Is(err, genome.ErrAccessDenied) {
				return nil, fmt.Errorf("%w: persona %q may not use adapter %q: %w", ErrAccessDenied, persona, req.Adapter, err)
			}
			return nil, fmt.Errorf("engine: adapter %q: %w", req.Adapter, err)
		}
	}

	tokens := req.Tokens
	var err error
	switch {
	case len(req.Messages) > 0:
		text, err := llama.ApplyChatTemplate(e.tmpl, req.Messages, true)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		// The template writes the BOS text itself where the model wants it.
		if tokens, err = e.vocab.Tokenize(text, false, true); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	case req.Prompt != "":
		if tokens, err = e.vocab.Tokenize(req.Prompt, true, false); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	default:
		for i, t := range tokens {
			if t < 0 || int(t) >= e.vocab.Size() {
				return nil, fmt.Errorf("%w: token %d at %d is not in the vocabulary of %d", ErrBadRequest, t, i, e.vocab.Size())
			}
		}
	}
	if len(tokens) == 0 {
		return nil, ErrEmptyPrompt
	}
	if len(tokens) >= e.cfg.ContextSize {
		return nil, fmt.Errorf("%w: %d prompt tokens, context of %d per sequence", ErrPromptTooLong, len(tokens), e.cfg.ContextSize)
	}
	maxTok := e.cfg.ContextSize - len(tokens)
	if req.MaxTokens > 0 {
		maxTok = min(maxTok, req.MaxTokens)
	}

	sp := req.Sampling
	smp, err := llama.NewSampler(llama.SamplerParams{
		Temperature: sp.Temperature, TopK: sp.TopK, TopP: sp.TopP, MinP: sp.MinP, Seed: sp.Seed,
		PenaltyLastN: sp.RepeatLastN, RepeatPenalty: sp.RepeatPenalty,
		FrequencyPenalty: sp.FrequencyPenalty, PresencePenalty: sp.PresencePenalty, Vocab: e.vocab,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	id := req.ID
	if id == (uuid.UUID{}) {
		id = uuid.New()
	}
	rctx, cancel := context.WithCancel(ctx)
	return &request{
		ctx: rctx, cancel: cancel, id: id, persona: persona, tokens: tokens, maxTokens: maxTok,
		stops: req.Stop, maxStop: maxStop, ignoreEOS: req.IgnoreEOS, noCache: req.NoPromptCache || e.cfg.NoPromptCache, smp: smp, adapter: ad,
		out: make(chan Delta, 64), done: make(chan struct{}), accepted: time.Now(),
	}, nil
}

// request is an admitted request; the loop goroutine owns its mutable
// fields once it is queued.
type request struct {
	ctx       context.Context
	cancel    context.CancelFunc
	id        uuid.UUID
	persona   string
	tokens    []llama.Token
	maxTokens int
	stops     []string
	maxStop   int
	ignoreEOS bool
	noCache   bool
	cached    int // prompt tokens whose KV the slot held
	smp       *llama.Sampler
	adapter   *adapter

	out  chan Delta
	done chan struct{}
	res  Result // written before done is closed

	accepted, started, first time.Time
}

// release frees a request that never reached the loop.
func (r *request) release() {
	r.cancel()
	r.smp.Close()
}
