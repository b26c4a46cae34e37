package engine

import (
	"fmt"
	"sync"

	"github.com/strata-llm/strata/genome/routing"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// TraceHeader describes model m for a routing trace: its architecture,
// name, MoE layers and the bytes of one expert of each (read from the
// GGUF file m was loaded from).
func TraceHeader(m *llama.Model) (routing.Header, error) {
	f, err := gguf.Open(m.Path())
	if err != nil {
		return routing.Header{}, fmt.Errorf("engine: trace header: %w", err)
	}
	h, err := routing.HeaderFromGGUF(f)
	if err != nil {
		return routing.Header{}, fmt.Errorf("engine: trace header: %w", err)
	}
	return h, nil
}

// TraceRecorder writes the MoE routing llama.cpp computes — for every
// token, the experts each MoE layer chose — to a routing.Writer, through
// an llama.Observer on the router's ffn_moe_topk-<layer> tensors (as
// ExpertPager watches them). `strata paging sim` replays the trace.
//
// Which tokens are recorded. llama.cpp runs the graph once per ubatch,
// every MoE layer in turn, each giving one row of expert ids per token;
// but before the last layer's FFN it drops the rows of tokens whose
// logits were not asked for, so that layer routes only those. A trace
// holds every MoE layer's routing of each token it records, so the
// recorder keeps a graph run's tokens only when every MoE layer gave the
// same number of rows: every single-token decode (generation), and the
// prompt tokens of a batch that asked for all logits, or of a model whose
// last layer is dense. The other prompt tokens are counted in Dropped
// and left out, not recorded with a layer missing; a trace is thus
// generation-order routing, which is what paging a decode faces.
//
// The recorder follows one context decoding one sequence: pass its
// Observer to exactly one context (chain it with an ExpertPager's with
// ChainObservers), and decode one sequence there, since rows from a batch
// of several sequences would be recorded interleaved. Its methods other
// than the Observer's function may be called from any goroutine. In steady
// state (single-token decodes) it allocates nothing per token.
//
// A failure to record (a write error, a routing the header does not
// describe) stops the recording, not the decode: Err returns it.
type TraceRecorder struct {
	w    *routing.Writer
	h    routing.Header
	obs  *llama.Observer
	slot []int // model layer → index in h.Layers, -1 for a dense layer

	// The current graph run, used only by the decoding goroutine.
	rows  [][]int32 // per MoE layer, its rows of expert ids
	nrows []int     // per MoE layer, its row count
	next  int       // the MoE layer the run expects next
	gap   bool      // the run skipped or repeated a layer
	row   []int32   // one token's routing across the layers

	mu       sync.Mutex
	recorded int64
	dropped  int64
	err      error
}

// NewTraceRecorder records the routing of model m into w, whose header
// must describe m (TraceHeader). Close w once decoding is done; the
// recorder does not.
func NewTraceRecorder(m *llama.Model, w *routing.Writer) (*TraceRecorder, error) {
	h := w.Header()
	if h.Experts != m.ExpertCount() || h.Used != m.ExpertUsed() || h.Blocks != m.Layers() {
		return nil, fmt.Errorf("engine: trace recorder: the trace is of a model with %d layers and %d experts (%d used), %s has %d, %d (%d)",
			h.Blocks, h.Experts, h.Used, m.Path(), m.Layers(), m.ExpertCount(), m.ExpertUsed())
	}
	r := &TraceRecorder{
		w:     w,
		h:     h,
		slot:  make([]int, h.Blocks),
		rows:  make([][]int32, len(h.Layers)),
		nrows: make([]int, len(h.Layers)),
		row:   make([]int32, h.RowLen()),
	}
	for i := range r.slot {
		r.slot[i] = -1
	}
	for i, l := range h.Layers {
		r.slot[l.Index] = i
		r.rows[i] = make([]int32, 0, h.Used)
	}
	r.obs = &llama.Observer{Prefixes: []string{"ffn_moe_topk"}, Func: r.observe}
	return r, nil
}

// Observer returns the llama.Observer to pass in the ContextParams of the
// one context the recorder follows (the same one on every call).
func (r *TraceRecorder) Observer() *llama.Observer { return r.obs }

// Tokens returns the number of tokens recorded so far.
func (r *TraceRecorder) Tokens() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recorded
}

// Dropped returns the number of tokens decoded but not recorded, because
// the layers of their graph run routed different numbers of tokens (see
// TraceRecorder) or the run did not reach the last MoE layer.
func (r *TraceRecorder) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Err returns the error that stopped the recording, if any.
func (r *TraceRecorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fail records err once; the decode goes on unrecorded.
func (r *TraceRecorder) fail(err error) bool {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	return true
}

// observe takes one MoE layer's routing. It runs on the decoding
// goroutine between graph nodes.
func (r *TraceRecorder) observe(t *llama.Tensor) bool {
	r.mu.Lock()
	stopped := r.err != nil
	r.mu.Unlock()
	if stopped {
		return true
	}
	layer := t.Layer()
	if layer < 0 || layer >= len(r.slot) || r.slot[layer] < 0 {
		return r.fail(fmt.Errorf("engine: trace: routing tensor %s is of no MoE layer of the trace header", t.Name()))
	}
	ids, err := t.Int32s()
	if err != nil {
		return r.fail(fmt.Errorf("engine: trace: %w", err))
	}
	if len(ids)%r.h.Used != 0 {
		return r.fail(fmt.Errorf("engine: trace: layer %d routed %d ids, not a whole number of tokens of %d", layer, len(ids), r.h.Used))
	}
	i := r.slot[layer]
	if i == 0 {
		// A new graph run. A previous one that never reached the last
		// MoE layer (an aborted decode) leaves its tokens unrecorded.
		if r.next != 0 {
			r.drop(r.nrows[0])
		}
		r.gap = false
	} else if i != r.next {
		r.gap = true
	}
	r.rows[i] = append(r.rows[i][:0], ids...)
	r.nrows[i] = len(ids) / r.h.Used
	r.next = i + 1
	if i < len(r.h.Layers)-1 {
		return true
	}
	r.next = 0
	n := r.nrows[0]
	for _, k := range r.nrows {
		if k != n {
			r.gap = true
		}
	}
	if r.gap {
		r.drop(n)
		return true
	}
	u := r.h.Used
	for tok := range n {
		for li := range r.rows {
			copy(r.row[li*u:(li+1)*u], r.rows[li][tok*u:(tok+1)*u])
		}
		if err := r.w.Append(r.row); err != nil {
			return r.fail(fmt.Errorf("engine: trace: %w", err))
		}
	}
	r.mu.Lock()
	r.recorded += int64(n)
	r.mu.Unlock()
	return true
}

func (r *TraceRecorder) drop(n int) {
	r.mu.Lock()
	r.dropped += int64(n)
	r.mu.Unlock()
}

// ChainObservers returns one llama.Observer that hands each tensor to
// every one of obs whose prefixes match its name (all of them for an
// observer with no prefixes), in order, so that a context can page and
// record at once. The decode stops when any of them returns false; the
// ones after it do not see that tensor. Nil entries are skipped.
func ChainObservers(obs ...*llama.Observer) *llama.Observer {
	var list []*llama.Observer
	var prefixes []string
	all := false
	for _, o := range obs {
		if o == nil {
			continue
		}
		list = append(list, o)
		if len(o.Prefixes) == 0 {
			all = true
		}
		prefixes = append(prefixes, o.Prefixes...)
	}
	if all {
		prefixes = nil
	}
	return &llama.Observer{Prefixes: prefixes, Func: func(t *llama.Tensor) bool {
		for _, o := range list {
			if !matches(t, o.Prefixes) {
				continue
			}
			if !o.Func(t) {
				return false
			}
		}
		return true
	}}
}

func matches(t *llama.Tensor, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if t.HasPrefix(p) {
			return true
		}
	}
	return false
}
