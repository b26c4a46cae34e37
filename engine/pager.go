package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/llama"
)

// ExpertPager keeps the MoE experts that inference is routed to resident
// through the genome, within the genome's budget. It is an llama.Observer
// on the router's ffn_moe_topk-<layer> tensors: llama.cpp computes a
// layer's routing, the pager pages each chosen expert in (evicting others
// by the tiers' policies), and only then does the layer's expert matmul
// read those weights — from the very file pages the genome manages,
// because the genome is attached to llama.cpp's mapping.
//
// Without it an MoE model larger than memory pages through plain mmap
// faults and, under a memory limit, thrashes; DESIGN.md has the figures.
//
// An ExpertPager may serve several contexts at once: each gets its own
// Observer (call Observer once per context), whose state is used only by
// that context's decoding goroutine; the genome is safe for concurrent use.
// Err may be called from any goroutine.
type ExpertPager struct {
	gm      *genome.Local
	id      genome.ArtifactID
	persona genome.PersonaID
	ctx     context.Context
	words   int // uint64 words of one observer's seen set
	// labels are the pprof label contexts of page-ins, by layer and
	// expert (layer*words*64 + expert); nil unless LabelPageIns set them.
	labels []context.Context
	// pf, when not nil, predicts each layer's experts one layer ahead
	// and reads them (Budget's Prefetch); set before the first Observer.
	pf *Prefetcher

	busy atomic.Int64 // nanoseconds the observers spent, all contexts together

	mu  sync.Mutex
	err error
}

// Busy returns the time the decodes spent in the pager, all its
// observers together: paging experts in (waiting on their reads and
// evicting others) and, with a Prefetcher, predicting. llama.cpp's graph
// computation stops at each observed tensor until the observer returns,
// so this is time the decode did not compute.
func (p *ExpertPager) Busy() time.Duration { return time.Duration(p.busy.Load()) }

// NewExpertPager pages the experts of artifact id (registered with
// gm.RegisterGGUF and attached with gm.AttachMappings) on behalf of
// persona. nExpert is the model's expert count. ctx's values reach each
// page-in, but not its cancellation: the pager outlives the call that
// made it (engine.Open's ctx stops the load, not every later decode), and
// a decode is stopped through its context instead.
func NewExpertPager(ctx context.Context, gm *genome.Local, id genome.ArtifactID, persona genome.PersonaID, nExpert int) (*ExpertPager, error) {
	if nExpert <= 0 {
		return nil, fmt.Errorf("engine: expert pager: model has %d experts", nExpert)
	}
	return &ExpertPager{gm: gm, id: id, persona: persona, ctx: context.WithoutCancel(ctx), words: (nExpert + 63) / 64}, nil
}

// Observer returns a new llama.Observer to pass in the llama.ContextParams
// of one context.
func (p *ExpertPager) Observer() *llama.Observer { return p.ObserverWithFaults(nil) }

// FaultFunc is told of each expert a decode had to page in: the layer and
// expert, the batch row of the first token routed to it (of rows rows in
// that layer's routing: every token of the batch, or in the last layer
// only those whose output was asked for), and the genome's fault. It runs
// on the decoding goroutine, inside the decode. f is the observer's own,
// reused for the next fault: it is valid only during the call.
type FaultFunc func(layer, expert, row, rows int, f *genome.PageFault)

// ObserverWithFaults is Observer that also calls onFault (if not nil) for
// every page-in, so a caller that knows which request each batch row
// belongs to can attribute the fault.
func (p *ExpertPager) ObserverWithFaults(onFault FaultFunc) *llama.Observer {
	o := &observerState{seen: make([]uint64, p.words), onFault: onFault}
	prefixes := []string{topkPrefix}
	if p.pf != nil {
		// The prefetcher predicts layer L+1's routing from layer L's FFN
		// input.
		o.pf = p.pf.newState()
		prefixes = append(prefixes, "ffn_inp")
	}
	return &llama.Observer{Prefixes: prefixes, Func: func(t *llama.Tensor) bool {
		start := time.Now()
		ok := p.observe(t, o)
		p.busy.Add(int64(time.Since(start)))
		return ok
	}}
}

// topkPrefix names the router's choice of experts, one tensor per layer.
const topkPrefix = "ffn_moe_topk"

// observerState is one Observer's scratch, used only by its context's
// decoding goroutine.
type observerState struct {
	seen    []uint64 // experts already paged in this call, one bit each
	fault   genome.PageFault
	onFault FaultFunc
	pf      *prefetchState // nil without a Prefetcher
}

// Prefetcher returns the pager's Prefetcher, nil unless the Budget was
// made with BudgetOptions.Prefetch.
func (p *ExpertPager) Prefetcher() *Prefetcher { return p.pf }

// Err returns the first paging error. A paging error also stops the
// decode that hit it (it fails with llama.ErrAborted).
func (p *ExpertPager) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Explain returns err with the paging error that caused it, when err is
// a decode this pager stopped (llama.ErrAborted) and it has one; else err.
// A decode error alone says only "decode aborted".
func (p *ExpertPager) Explain(err error) error {
	if p == nil || !errors.Is(err, llama.ErrAborted) {
		return err
	}
	if perr := p.Err(); perr != nil {
		return fmt.Errorf("%w (%w)", perr, err)
	}
	return err
}

func (p *ExpertPager) fail(err error) bool {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	return false
}

// observe pages in the experts of one layer's routing. It runs on the
// decoding goroutine between graph nodes and allocates nothing, whether
// the experts are resident or fault (genome.Local.PageInTo; with the
// genome's pprof profiles on, pprof's stack captures aside).
func (p *ExpertPager) observe(t *llama.Tensor, o *observerState) bool {
	if o.pf != nil && !t.HasPrefix(topkPrefix) {
		if err := p.pf.predict(t, o.pf); err != nil {
			return p.fail(err)
		}
		return true
	}
	seen := o.seen
	layer := t.Layer()
	if layer < 0 {
		return true
	}
	ids, err := t.Int32s()
	if err != nil {
		return p.fail(fmt.Errorf("engine: expert pager: %w", err))
	}
	if o.pf != nil {
		p.pf.fanOut(layer, ids, seen)
	}
	clear(seen)
	defer p.unlabel()
	used := max(1, int(t.Shape()[0]))
	for k, e := range ids {
		if e < 0 || int(e) >= len(seen)*64 {
			return p.fail(fmt.Errorf("engine: expert pager: layer %d routed to expert %d", layer, e))
		}
		w, bit := e/64, uint64(1)<<(e%64)
		if seen[w]&bit != 0 {
			continue
		}
		seen[w] |= bit
		p.label(layer, e)
		_, faulted, err := p.gm.PageInTo(p.ctx, p.persona, genome.ExpertPage(p.id, layer, int(e)), &o.fault)
		if err != nil {
			return p.fail(fmt.Errorf("engine: expert pager: layer %d expert %d: %w", layer, e, err))
		}
		if faulted && o.onFault != nil {
			o.onFault(layer, int(e), k/used, len(ids)/used, &o.fault)
		}
	}
	if o.pf != nil {
		p.pf.score(layer, seen, o.pf)
	}
	return true
}
