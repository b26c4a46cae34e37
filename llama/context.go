package llama

// #include "shim.h"
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"
)

// FlashAttention selects llama.cpp's flash-attention mode.
type FlashAttention int

// Flash-attention modes, as enum llama_flash_attn_type.
const (
	FlashAttentionAuto FlashAttention = C.LLAMA_FLASH_ATTN_TYPE_AUTO
	FlashAttentionOff  FlashAttention = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	FlashAttentionOn   FlashAttention = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
)

// ParseFlashAttention reads a flash-attention mode as llama.cpp's tools
// take it: on, off or auto (also 1, 0, -1, and enabled, disabled, true,
// false).
func ParseFlashAttention(s string) (FlashAttention, error) {
	switch s {
	case "on", "enabled", "true", "1":
		return FlashAttentionOn, nil
	case "off", "disabled", "false", "0":
		return FlashAttentionOff, nil
	case "auto", "-1":
		return FlashAttentionAuto, nil
	}
	return 0, fmt.Errorf("flash attention %q is not on, off or auto (or 1, 0, -1)", s)
}

// String is on, off or auto.
func (f FlashAttention) String() string {
	switch f {
	case FlashAttentionOn:
		return "on"
	case FlashAttentionOff:
		return "off"
	case FlashAttentionAuto:
		return "auto"
	}
	return fmt.Sprintf("FlashAttention(%d)", int(f))
}

// ContextParams configures NewContext. Zero fields take llama.cpp's
// defaults (n_ctx from the model, n_batch 2048, n_ubatch 512, one
// sequence, GGML_DEFAULT_N_THREADS threads, F16 KV cache, flash attention
// off).
type ContextParams struct {
	NCtx         int // context length in tokens; 0 = the model's training length
	NBatch       int // logical batch size: most tokens one Decode may take
	NUbatch      int // physical batch size
	NSeqMax      int // distinct sequences (parallel streams)
	Threads      int // threads for generation (single-token decodes)
	ThreadsBatch int // threads for prompt (multi-token) decodes; 0 = Threads
	// FlashAttention defaults to off in the zero value; set
	// FlashAttentionAuto to let llama.cpp decide.
	FlashAttention FlashAttention
	TypeK, TypeV   GGMLType // KV cache element types; 0 (F32) means the default F16
	// Observer, if set, is called for graph tensors whose names match its
	// prefixes while they are computed.
	Observer *Observer
	// KVUnified shares one KV buffer among all sequences. Without it each
	// of NSeqMax sequences has its own stream, and KeepSeq/RemoveSeq act
	// within the stream of the sequence named.
	KVUnified bool
	// NoPerf turns off llama.cpp's timing counters.
	NoPerf bool
}

// Context is an inference context: a KV cache and compute buffers over a
// Model. It is used by one goroutine at a time, except Interrupt, which
// may be called from any goroutine, also while Close runs. Close it before
// its Model (Model.Close refuses with ErrInUse otherwise).
type Context struct {
	c     *C.struct_llama_context
	model *Model
	nVoc  int

	obs  *observer
	obsH cgo.Handle
	cobs *C.strata_observer

	// mu guards the abort flag's lifetime and the decode it belongs to:
	// Interrupt may run on any goroutine, and must neither write into a
	// flag Close has freed nor stop a decode that started after the one it
	// was meant for.
	mu       sync.Mutex
	abort    *C.int32_t // polled by ggml between graph nodes
	decoding bool       // a llama_decode is running
	gen      uint64     // number of the current (or last) decode

	lastBatch int              // tokens in the last decoded batch (bounds Logits)
	adapters  []appliedAdapter // the adapter set llama.cpp has; see lora.go

	// pool and poolBatch are the CPU backend's thread pools for
	// generation and for prompt batches (the same pool when the counts
	// agree); see setPools.
	pool, poolBatch *C.struct_ggml_threadpool
}

// NewContext creates a context for m.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	if m == nil || m.c == nil {
		return nil, fmt.Errorf("llama: new context: %w", ErrClosed)
	}
	cp := C.llama_context_default_params()
	if p.NCtx < 0 || p.NBatch < 0 || p.NUbatch < 0 || p.NSeqMax < 0 || p.Threads < 0 || p.ThreadsBatch < 0 {
		return nil, fmt.Errorf("llama: new context: negative size in %+v", p)
	}
	if p.NCtx > 0 {
		cp.n_ctx = C.uint32_t(p.NCtx)
	}
	if p.NBatch > 0 {
		cp.n_batch = C.uint32_t(p.NBatch)
	}
	if p.NUbatch > 0 {
		cp.n_ubatch = C.uint32_t(p.NUbatch)
	}
	if p.NSeqMax > 0 {
		cp.n_seq_max = C.uint32_t(p.NSeqMax)
	}
	if p.Threads > 0 {
		cp.n_threads = C.int32_t(p.Threads)
		cp.n_threads_batch = C.int32_t(p.Threads)
	}
	if p.ThreadsBatch > 0 {
		cp.n_threads_batch = C.int32_t(p.ThreadsBatch)
	}
	cp.flash_attn_type = C.enum_llama_flash_attn_type(p.FlashAttention)
	if p.TypeK != TypeF32 {
		cp.type_k = C.enum_ggml_type(p.TypeK)
	}
	if p.TypeV != TypeF32 {
		cp.type_v = C.enum_ggml_type(p.TypeV)
	}
	cp.no_perf = C.bool(p.NoPerf)
	cp.kv_unified = C.bool(p.KVUnified)

	ctx := &Context{model: m, nVoc: m.vocab.Size()}
	ctx.abort = (*C.int32_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int32_t(0)))))
	if p.Observer != nil {
		if p.Observer.Func == nil {
			C.free(unsafe.Pointer(ctx.abort))
			return nil, fmt.Errorf("llama: new context: Observer.Func is nil")
		}
		ctx.obs = &observer{fn: p.Observer.Func}
		ctx.obsH = cgo.NewHandle(ctx.obs)
		all := 0
		if len(p.Observer.Prefixes) == 0 {
			all = 1
		}
		ctx.cobs = C.strata_observer_new(C.uintptr_t(ctx.obsH), C.int(len(p.Observer.Prefixes)), C.int(all), ctx.abort)
		if ctx.cobs == nil {
			ctx.obsH.Delete()
			C.free(unsafe.Pointer(ctx.abort))
			return nil, &Error{Op: "NewContext", Detail: "observer allocation failed"}
		}
		for i, pre := range p.Observer.Prefixes {
			cs := C.CString(pre)
			C.strata_observer_set_prefix(ctx.cobs, C.int(i), cs)
			C.free(unsafe.Pointer(cs))
		}
		C.strata_set_observer(&cp, ctx.cobs)
	}

	m.mu.Lock()
	if m.c == nil {
		m.mu.Unlock()
		ctx.freeObserver()
		C.free(unsafe.Pointer(ctx.abort))
		return nil, fmt.Errorf("llama: new context: %w", ErrClosed)
	}
	logSink.takeLastError()
	ctx.c = C.llama_init_from_model(m.c, cp)
	if ctx.c == nil {
		m.mu.Unlock()
		ctx.freeObserver()
		C.free(unsafe.Pointer(ctx.abort))
		return nil, &Error{Op: "NewContext", Detail: orDefault(logSink.takeLastError(), "llama_init_from_model returned NULL")}
	}
	m.contexts++
	m.mu.Unlock()
	C.strata_set_abort(ctx.c, ctx.abort)
	ctx.setPools(int(C.llama_n_threads(ctx.c)), int(C.llama_n_threads_batch(ctx.c)))
	runtime.SetFinalizer(ctx, func(c *Context) {
		if c.c != nil {
			logSink.emit(ggmlLogWarn, "strata: llama.Context garbage-collected without Close; its memory leaks")
		}
	})
	return ctx, nil
}

func (c *Context) freeObserver() {
	if c.cobs != nil {
		C.strata_observer_free(c.cobs)
		c.cobs = nil
		c.obsH.Delete()
	}
}

// Close frees the context and releases its adapters. It is idempotent.
func (c *Context) Close() error {
	if c == nil || c.c == nil {
		return nil
	}
	m := c.model
	m.mu.Lock()
	C.llama_free(c.c)
	c.c = nil
	c.freePools()
	c.releaseAdapters()
	m.contexts--
	m.mu.Unlock()
	c.freeObserver()
	c.mu.Lock()
	C.free(unsafe.Pointer(c.abort))
	c.abort = nil
	c.mu.Unlock()
	runtime.SetFinalizer(c, nil)
	return nil
}

// Model is the model the context was created for.
func (c *Context) Model() *Model { return c.model }

// NCtx, NBatch, NUbatch and NSeqMax report the sizes llama.cpp chose; 0
// after Close. (Every method of a closed Context is safe to call: those
// that return an error return ErrClosed, the others do nothing.)
func (c *Context) NCtx() int {
	if c.c == nil {
		return 0
	}
	return int(C.llama_n_ctx(c.c))
}

func (c *Context) NBatch() int {
	if c.c == nil {
		return 0
	}
	return int(C.llama_n_batch(c.c))
}

func (c *Context) NUbatch() int {
	if c.c == nil {
		return 0
	}
	return int(C.llama_n_ubatch(c.c))
}

func (c *Context) NSeqMax() int {
	if c.c == nil {
		return 0
	}
	return int(C.llama_n_seq_max(c.c))
}

// NCtxSeq is how many KV cells one sequence can use: NCtx with
// KVUnified, else NCtx / NSeqMax (each sequence its own stream); 0 after
// Close.
func (c *Context) NCtxSeq() int {
	if c.c == nil {
		return 0
	}
	return int(C.llama_n_ctx_seq(c.c))
}

// SetThreads sets the generation and prompt thread counts.
func (c *Context) SetThreads(gen, batch int) {
	if c.c == nil {
		return
	}
	C.llama_set_n_threads(c.c, C.int32_t(gen), C.int32_t(batch))
	c.setPools(gen, batch)
}

// setPools gives the context persistent CPU thread pools of gen and
// batch threads, as upstream's tools attach theirs. Without one, ggml's
// CPU backend (built without OpenMP, as here) creates and joins a fresh
// pool for every graph it computes: once per token of a dense model, and
// once per graph split of an observed one (17 per token of bench-moe
// under a budget, the decode stopping after each layer's router). The
// pools' workers poll briefly between graphs (ggml's default, 50), then
// sleep. A pool that cannot be made leaves the context on ggml's
// per-graph pools, which compute the same.
func (c *Context) setPools(gen, batch int) {
	if gen <= 0 || batch <= 0 {
		return
	}
	newPool := func(n int) *C.struct_ggml_threadpool {
		tpp := C.ggml_threadpool_params_default(C.int(n))
		return C.ggml_threadpool_new(&tpp)
	}
	pool := newPool(gen)
	if pool == nil {
		return
	}
	poolBatch := pool
	if batch != gen {
		if poolBatch = newPool(batch); poolBatch == nil {
			C.ggml_threadpool_free(pool)
			return
		}
	}
	C.llama_attach_threadpool(c.c, pool, poolBatch)
	c.freePools()
	c.pool, c.poolBatch = pool, poolBatch
}

// freePools frees the thread pools; the context must have let go of them
// (freed, or attached others).
func (c *Context) freePools() {
	if c.poolBatch != nil && c.poolBatch != c.pool {
		C.ggml_threadpool_free(c.poolBatch)
	}
	if c.pool != nil {
		C.ggml_threadpool_free(c.pool)
	}
	c.pool, c.poolBatch = nil, nil
}

// Threads returns the generation and prompt thread counts.
func (c *Context) Threads() (gen, batch int) {
	if c.c == nil {
		return 0, 0
	}
	return int(C.llama_n_threads(c.c)), int(C.llama_n_threads_batch(c.c))
}

// Decode runs the model over the batch. It does not allocate on success.
// It returns ErrKVCacheFull (wrapped in *Error) when the KV cache has no
// room, ErrAborted after Interrupt.
func (c *Context) Decode(b *Batch) error {
	if c.c == nil {
		return fmt.Errorf("llama: decode: %w", ErrClosed)
	}
	if b == nil || b.c.n_tokens == 0 {
		return fmt.Errorf("llama: decode: %w: empty batch", ErrInvalidBatch)
	}
	c.mu.Lock()
	c.gen++
	c.decoding = true
	atomic.StoreInt32((*int32)(unsafe.Pointer(c.abort)), 0)
	c.mu.Unlock()
	rc := C.llama_decode(c.c, b.c)
	c.mu.Lock()
	c.decoding = false
	c.mu.Unlock()
	if c.obs != nil && c.obs.panicked != nil {
		// Even when the panic hit the graph's last node and llama.cpp
		// finished, the observer did not see what it was asked to.
		c.lastBatch = 0
		err := c.obs.panicked
		c.obs.panicked = nil
		if rc != 0 {
			return fmt.Errorf("llama: decode: %w (%w)", err, decodeError(int(rc)))
		}
		return fmt.Errorf("llama: decode: %w", err)
	}
	if rc != 0 {
		c.lastBatch = 0
		return decodeError(int(rc))
	}
	c.lastBatch = int(b.c.n_tokens)
	return nil
}

func decodeError(rc int) error {
	e := &Error{Op: "Context.Decode", Code: rc}
	switch {
	case rc == 1:
		e.Err = ErrKVCacheFull
	case rc == 2:
		e.Err = ErrAborted
	case rc == -1:
		e.Err = ErrInvalidBatch
		e.Detail = logSink.takeLastError()
	default:
		e.Detail = logSink.takeLastError()
	}
	return e
}

// DecodeContext is Decode that stops early with ErrAborted when ctx is
// cancelled. Watching ctx costs an allocation per call; a per-token loop
// that wants none checks ctx between tokens and calls Decode.
func (c *Context) DecodeContext(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrAborted, err)
	}
	// The decode about to start gets the next number; an AfterFunc that
	// fires late (stop does not wait for one already running) finds a
	// different number and leaves later decodes alone.
	c.mu.Lock()
	gen := c.gen + 1
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.interrupt(gen) })
	err := c.Decode(b)
	stop()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return err
}

// Synchronize waits until the work of the last Decode is done. Decode may
// return before an asynchronous backend (CUDA) has finished; reading
// logits or sampling waits implicitly, so only code that times decodes
// needs this.
func (c *Context) Synchronize() {
	if c.c != nil {
		C.llama_synchronize(c.c)
	}
}

// Interrupt asks a running Decode to stop at the next graph node; it
// returns ErrAborted. It is safe to call from any goroutine. A Decode that
// starts later is not affected.
func (c *Context) Interrupt() { c.interrupt(0) }

// interrupt raises the abort flag if a decode is running and, when gen is
// not 0, it is decode number gen.
func (c *Context) interrupt(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abort != nil && c.decoding && (gen == 0 || gen == c.gen) {
		atomic.StoreInt32((*int32)(unsafe.Pointer(c.abort)), 1)
	}
}

// Logits returns the logits of batch position i of the last Decode (i < 0
// counts from the end), a view of llama.cpp's buffer of vocabulary size.
// It is valid until the next Decode; copy it to keep it.
func (c *Context) Logits(i int) ([]float32, error) {
	if c.c == nil {
		return nil, fmt.Errorf("llama: logits: %w", ErrClosed)
	}
	if i >= c.lastBatch || -i > c.lastBatch {
		return nil, fmt.Errorf("%w: position %d of a batch of %d", ErrNoLogits, i, c.lastBatch)
	}
	p := C.llama_get_logits_ith(c.c, C.int32_t(i))
	if p == nil {
		logSink.takeLastError()
		return nil, fmt.Errorf("%w: position %d was not marked for output", ErrNoLogits, i)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), c.nVoc), nil
}

// ClearMemory empties the KV cache; data also zeroes its buffers.
func (c *Context) ClearMemory(data bool) {
	if c.c == nil {
		return
	}
	C.llama_memory_clear(C.llama_get_memory(c.c), C.bool(data))
}

// RemoveSeq removes positions [p0, p1) of sequence seq from the KV cache
// (p0 < 0: from the start, p1 < 0: to the end; seq < 0: every sequence).
// It reports false when a partial removal is not possible.
func (c *Context) RemoveSeq(seq, p0, p1 int32) bool {
	if c.c == nil {
		return false
	}
	return bool(C.llama_memory_seq_rm(C.llama_get_memory(c.c), C.llama_seq_id(seq), C.llama_pos(p0), C.llama_pos(p1)))
}

// CopySeq makes positions [p0, p1) of sequence src also belong to dst.
func (c *Context) CopySeq(src, dst, p0, p1 int32) {
	if c.c == nil {
		return
	}
	C.llama_memory_seq_cp(C.llama_get_memory(c.c), C.llama_seq_id(src), C.llama_seq_id(dst), C.llama_pos(p0), C.llama_pos(p1))
}

// KeepSeq removes every sequence but seq.
func (c *Context) KeepSeq(seq int32) {
	if c.c == nil {
		return
	}
	C.llama_memory_seq_keep(C.llama_get_memory(c.c), C.llama_seq_id(seq))
}

// ShiftSeq adds delta to the positions [p0, p1) of sequence seq (a context
// shift). Check CanShift first.
func (c *Context) ShiftSeq(seq, p0, p1, delta int32) {
	if c.c == nil {
		return
	}
	C.llama_memory_seq_add(C.llama_get_memory(c.c), C.llama_seq_id(seq), C.llama_pos(p0), C.llama_pos(p1), C.llama_pos(delta))
}

// CanShift reports whether the memory supports ShiftSeq.
func (c *Context) CanShift() bool {
	return c.c != nil && bool(C.llama_memory_can_shift(C.llama_get_memory(c.c)))
}

// SeqPosRange returns the smallest and largest position of seq in the KV
// cache, or (-1, -1) when it is empty.
func (c *Context) SeqPosRange(seq int32) (min, max int32) {
	if c.c == nil {
		return -1, -1
	}
	mem := C.llama_get_memory(c.c)
	return int32(C.llama_memory_seq_pos_min(mem, C.llama_seq_id(seq))), int32(C.llama_memory_seq_pos_max(mem, C.llama_seq_id(seq)))
}

// Perf is llama.cpp's timing counters for a context (llama_perf_context).
type Perf struct {
	StartMs      float64 // absolute start time
	LoadMs       float64 // model load time
	PromptMs     float64 // time in multi-token decodes
	EvalMs       float64 // time in single-token decodes
	PromptTokens int     // tokens processed by multi-token decodes
	EvalTokens   int     // single-token decodes
	GraphReused  int     // times a compute graph was reused
}

// PromptTokensPerSecond and EvalTokensPerSecond are the throughputs the
// counters imply.
func (p Perf) PromptTokensPerSecond() float64 { return rate(p.PromptTokens, p.PromptMs) }
func (p Perf) EvalTokensPerSecond() float64   { return rate(p.EvalTokens, p.EvalMs) }

func rate(n int, ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	return float64(n) / (ms / 1e3)
}

// Perf returns the context's counters. It waits for a decode still running
// on an asynchronous backend, so the counters include every decode made.
func (c *Context) Perf() Perf {
	if c.c == nil {
		return Perf{}
	}
	C.llama_synchronize(c.c)
	d := C.llama_perf_context(c.c)
	return Perf{
		StartMs: float64(d.t_start_ms), LoadMs: float64(d.t_load_ms),
		PromptMs: float64(d.t_p_eval_ms), EvalMs: float64(d.t_eval_ms),
		PromptTokens: int(d.n_p_eval), EvalTokens: int(d.n_eval), GraphReused: int(d.n_reused),
	}
}

// ResetPerf zeroes the counters. It first waits for a decode still in
// flight, whose time would otherwise be booked after the reset.
func (c *Context) ResetPerf() {
	if c.c == nil {
		return
	}
	C.llama_synchronize(c.c)
	C.llama_perf_context_reset(c.c)
}
