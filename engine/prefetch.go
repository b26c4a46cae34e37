package engine

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"

	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// Prefetcher reads the MoE experts that layer L+1's router will pick while
// layer L still computes, so that the genome's synchronous page-in at
// L+1 finds their bytes in the page cache (Eliseev & Mazur 2023, "Fast
// inference of mixture-of-experts language models with offloading").
//
// Prediction. Once llama.cpp has computed layer L's FFN input ("ffn_inp-L",
// the residual stream after L's attention), the prefetcher applies layer
// L+1's router to it: logits = W · (x ⊙ g), W being
// blk.<L+1>.ffn_gate_inp.weight ([n_embd, n_expert] in ggml order: one row
// of n_embd per expert) and g blk.<L+1>.ffn_norm.weight, the scale of the
// RMS norm llama.cpp applies before the router (its 1/rms factor is left
// out: a positive factor does not change the top-k). The top n_expert_used
// of each token, united over the batch's rows, is the prediction. The
// residual stream changes little from one layer to the next, which is why
// this works; Stats measures how well (Recall). Batches of more than
// MaxPredictRows tokens (prompts) are not predicted: they route to nearly
// every expert anyway.
//
// Router weights are read once from the model file at NewBudgetWith —
// the gguf package gives their offsets; any type gguf.Decode reads is
// accepted — and kept premultiplied by g as float32 (n_moe_layer ×
// n_expert × n_embd × 4 bytes: 8 MiB for bench-moe), outside the budget.
// The product runs on the decoding goroutine: n_embd × n_expert
// multiply-adds per token and layer.
//
// Reading. Predicted experts that the genome does not hold in a resident
// tier are queued to a small pool of reader goroutines, which have the
// genome read their extents (genome.Local.Extents) into the page cache
// (genome.ArtifactFile.ReadAhead): the 2 MiB-aligned blocks inside an
// extent as whole folios, so that the page-in maps each with one PMD
// (without them, on bench-moe-wide in a 2 GiB cgroup at -budget 1GiB,
// prefetch ran at 4.57-5.16 tokens/s, slower than none; with them
// 8.33-9.97), and the rest exactly (POSIX_FADV_WILLNEED through a
// POSIX_FADV_RANDOM descriptor), asynchronously. Nothing is copied:
// reading into a scratch buffer instead cost a memcpy of every expert on
// cores the decode needs (bench-moe in a 2 GiB cgroup, budget 1 GiB, 2
// threads, alternating: 3.16-3.70 tokens/s with the copy, 4.10-4.23
// without). The genome's tiers and accounting are untouched: its page-in
// at L+1 still moves the expert from Cold to Warm, and finds the pages
// cached (or waits on those still being read) instead of reading them.
//
// Where the prediction missed, the layer's routed experts that are not
// resident are read side by side: the decoding goroutine pages in the
// first itself and queues the others to the pool (fanOut;
// bench-moe-uniform in 2 GiB, budget 1 GiB, alternating: 2.83-3.31
// tokens/s without, 3.10-3.35 with; on bench-moe, whose prediction misses
// 4%, no difference beyond the noise).
//
// The decoding goroutine never waits for the pool: a prediction that finds
// the queue full is dropped and counted. An expert read for L+1 that L+1
// did not use, and that the genome still does not hold, is dropped from
// the page cache again (genome.ArtifactFile.DropCached, by the pool), so that wrong
// guesses do not linger outside the budget.
//
// A Prefetcher serves every Observer of its ExpertPager; it is safe for
// concurrent use. Close stops the readers.
type Prefetcher struct {
	gm      *genome.Local
	id      genome.ArtifactID
	nEmbd   int
	nExpert int
	nUsed   int
	words   int // uint64 words of one layer's expert set
	// router holds, by layer, n_expert rows of n_embd weights (the router
	// times the FFN norm's weight); nil for a layer without a router.
	router [][]float32
	// extents holds, by layer and expert, the page-aligned bytes of the
	// expert in the model file.
	extents [][][]genome.Extent

	f        *os.File             // POSIX_FADV_RANDOM descriptor of the model file: the routers, and experts off Linux
	af       *genome.ArtifactFile // the genome's file, which reads ahead (Linux)
	jobs     chan prefetchJob
	done     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	inflight []atomic.Bool // by layer*nExpert+expert: a read is queued or running
	// dropAfter, by the same index: a drop came while a read was queued
	// or running; the read is skipped if it has not started, else its
	// pages are dropped when it ends (the drop alone would find them
	// still coming).
	dropAfter []atomic.Bool

	st prefetchCounters
}

// MaxPredictRows is the most tokens a batch may hold for the Prefetcher
// to predict its routing.
const MaxPredictRows = 4

// DefaultPrefetchReaders is the reader pool's size when
// BudgetOptions.PrefetchReaders is 0.
const DefaultPrefetchReaders = 2

// prefetchJob is one expert for a reader: read it, or drop it from the
// page cache (a wrong guess).
type prefetchJob struct {
	layer, expert int32
	drop          bool
}

type prefetchCounters struct {
	layers, predicted, actual, hits    atomic.Uint64
	queued, resident, full, skipped    atomic.Uint64
	read, bytesRead, dropped, readErrs atomic.Uint64
	fanned, stale                      atomic.Uint64
}

// PrefetchStats counts what a Prefetcher did. Recall and Precision are
// measured on the layer routings that had a prediction.
type PrefetchStats struct {
	Layers    uint64 // layer routings that had a prediction
	Predicted uint64 // experts predicted for them (united over a batch's rows)
	Actual    uint64 // experts they were routed to
	Hits      uint64 // experts both predicted and routed to
	Queued    uint64 // reads queued: predicted experts that were not resident
	Resident  uint64 // predicted experts already resident, or being read: nothing to queue
	Full      uint64 // reads and drops not queued because the queue was full
	Skipped   uint64 // batches not predicted: more than MaxPredictRows tokens
	Read      uint64 // expert reads done
	BytesRead uint64 // bytes those reads asked the kernel for
	Dropped   uint64 // wrong guesses dropped from the page cache
	Errors    uint64 // reads or drops that failed
	FannedOut uint64 // reads of a layer's routed experts queued beside the decoding goroutine's own (fanOut)
	Stale     uint64 // reads not done: the guess was scored wrong before a reader reached it
}

// Recall is |predicted ∩ routed| / |routed|: the share of the experts the
// routers picked that were predicted one layer ahead. A guess of
// n_expert_used experts at random scores n_expert_used / n_expert.
func (s PrefetchStats) Recall() float64 { return ratio(s.Hits, s.Actual) }

// Precision is |predicted ∩ routed| / |predicted|.
func (s PrefetchStats) Precision() float64 { return ratio(s.Hits, s.Predicted) }

// Sub returns the counts of s since o, an earlier Stats of the same
// Prefetcher: the figures of one run.
func (s PrefetchStats) Sub(o PrefetchStats) PrefetchStats {
	return PrefetchStats{
		Layers: s.Layers - o.Layers, Predicted: s.Predicted - o.Predicted, Actual: s.Actual - o.Actual, Hits: s.Hits - o.Hits,
		Queued: s.Queued - o.Queued, Resident: s.Resident - o.Resident, Full: s.Full - o.Full, Skipped: s.Skipped - o.Skipped,
		Read: s.Read - o.Read, BytesRead: s.BytesRead - o.BytesRead, Dropped: s.Dropped - o.Dropped, Errors: s.Errors - o.Errors,
		FannedOut: s.FannedOut - o.FannedOut, Stale: s.Stale - o.Stale,
	}
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Stats returns the counts so far.
func (p *Prefetcher) Stats() PrefetchStats {
	c := &p.st
	return PrefetchStats{
		Layers: c.layers.Load(), Predicted: c.predicted.Load(), Actual: c.actual.Load(), Hits: c.hits.Load(),
		Queued: c.queued.Load(), Resident: c.resident.Load(), Full: c.full.Load(), Skipped: c.skipped.Load(),
		Read: c.read.Load(), BytesRead: c.bytesRead.Load(), Dropped: c.dropped.Load(), Errors: c.readErrs.Load(),
		FannedOut: c.fanned.Load(), Stale: c.stale.Load(),
	}
}

// newPrefetcher reads the routers of the model f describes (registered in
// gm as id) and starts readers goroutines acting for persona.
func newPrefetcher(gm *genome.Local, id genome.ArtifactID, persona genome.PersonaID, f *gguf.File, readers int) (*Prefetcher, error) {
	nLayer, nExpert, nUsed := f.BlockCount(), f.ExpertCount(), f.ExpertUsedCount()
	if nExpert <= 0 || nUsed <= 0 || nUsed > nExpert || nLayer <= 0 {
		return nil, fmt.Errorf("engine: prefetch: %s: %d layers, %d experts, %d used", f.Path, nLayer, nExpert, nUsed)
	}
	if readers <= 0 {
		readers = DefaultPrefetchReaders
	}
	p := &Prefetcher{gm: gm, id: id, nExpert: nExpert, nUsed: nUsed, words: (nExpert + 63) / 64,
		router: make([][]float32, nLayer), extents: make([][][]genome.Extent, nLayer),
		inflight: make([]atomic.Bool, nLayer*nExpert), dropAfter: make([]atomic.Bool, nLayer*nExpert)}
	file, err := openRandom(f.Path)
	if err != nil {
		return nil, fmt.Errorf("engine: prefetch: %w", err)
	}
	p.f = file
	moe := 0
	for l := range nLayer {
		w, err := p.loadRouter(f, l)
		if err != nil {
			file.Close()
			return nil, err
		}
		if w == nil {
			continue
		}
		ext := make([][]genome.Extent, nExpert)
		for e := range nExpert {
			if ext[e], err = gm.Extents(persona, genome.ExpertPage(id, l, e)); err != nil {
				file.Close()
				return nil, fmt.Errorf("engine: prefetch: layer %d expert %d: %w", l, e, err)
			}
		}
		p.router[l], p.extents[l] = w, ext
		moe++
	}
	if moe == 0 {
		file.Close()
		return nil, fmt.Errorf("engine: prefetch: %s has no ffn_gate_inp router", f.Path)
	}
	if p.af, err = gm.File(id); err != nil {
		file.Close()
		return nil, fmt.Errorf("engine: prefetch: %w", err)
	}
	p.jobs = make(chan prefetchJob, 4*MaxPredictRows*nUsed)
	p.done = make(chan struct{})
	for range readers {
		p.wg.Add(1)
		go p.reader()
	}
	return p, nil
}

// loadRouter reads layer l's router, times its FFN norm's weight; nil
// when the layer has no router (a dense layer).
func (p *Prefetcher) loadRouter(f *gguf.File, l int) ([]float32, error) {
	name := fmt.Sprintf("blk.%d.ffn_gate_inp.weight", l)
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, nil
	}
	if len(ti.Dims) != 2 || ti.Dims[1] != uint64(p.nExpert) || ti.Dims[0] == 0 || ti.Dims[0] > 1<<20 {
		return nil, fmt.Errorf("engine: prefetch: %s: %s has shape %v, want [n_embd, %d]", f.Path, name, ti.Dims, p.nExpert)
	}
	if p.nEmbd == 0 {
		p.nEmbd = int(ti.Dims[0])
	} else if int(ti.Dims[0]) != p.nEmbd {
		return nil, fmt.Errorf("engine: prefetch: %s: %s has rows of %d, layers before %d", f.Path, name, ti.Dims[0], p.nEmbd)
	}
	w, err := p.readTensor(f, ti, p.nEmbd*p.nExpert)
	if err != nil {
		return nil, err
	}
	norm := fmt.Sprintf("blk.%d.ffn_norm.weight", l)
	if ni, ok := f.Tensor(norm); ok {
		g, err := p.readTensor(f, ni, p.nEmbd)
		if err != nil {
			return nil, err
		}
		for e := range p.nExpert {
			row := w[e*p.nEmbd : (e+1)*p.nEmbd]
			for i := range row {
				row[i] *= g[i]
			}
		}
	}
	return w, nil
}

// readTensor reads tensor ti of f as n float32 values.
func (p *Prefetcher) readTensor(f *gguf.File, ti gguf.TensorInfo, n int) ([]float32, error) {
	if ti.Elements() != uint64(n) || ti.Size > 1<<32 {
		return nil, fmt.Errorf("engine: prefetch: %s: %s has %d elements, want %d", f.Path, ti.Name, ti.Elements(), n)
	}
	raw := make([]byte, ti.Size)
	if _, err := p.f.ReadAt(raw, int64(ti.Offset)); err != nil {
		return nil, fmt.Errorf("engine: prefetch: %s: %s at %d: %w", f.Path, ti.Name, ti.Offset, err)
	}
	v, err := gguf.Decode(make([]float32, 0, n), ti.Type, raw)
	if err != nil || len(v) != n {
		return nil, fmt.Errorf("engine: prefetch: %s: %s (%v): %d values, %w", f.Path, ti.Name, ti.Type, len(v), errors.Join(err, errors.New("cannot decode")))
	}
	return v, nil
}

// Close stops the readers, waiting for the reads in flight, and closes
// the file. Reads still queued are dropped. It is idempotent.
func (p *Prefetcher) Close() error {
	if p == nil || !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	p.wg.Wait()
	return p.f.Close()
}

// prefetchState is one Observer's prediction state, used only by its
// context's decoding goroutine.
type prefetchState struct {
	scores []float32 // by expert, one token's router logits
	top    []int     // the best experts so far, best first
	pred   []uint64  // by layer (words each): the experts predicted for it
	queued []uint64  // by layer: the experts whose read this state queued
	has    []bool    // by layer: pred holds a prediction for the coming routing
}

func (p *Prefetcher) newState() *prefetchState {
	n := len(p.router)
	return &prefetchState{scores: make([]float32, p.nExpert), top: make([]int, 0, p.nUsed),
		pred: make([]uint64, n*p.words), queued: make([]uint64, n*p.words), has: make([]bool, n)}
}

// predict runs on layer L's ffn_inp: it predicts layer L+1's experts and
// queues reads of those not resident. It allocates nothing.
func (p *Prefetcher) predict(t *llama.Tensor, s *prefetchState) error {
	next := t.Layer() + 1
	if next <= 0 || next >= len(p.router) || p.router[next] == nil {
		return nil
	}
	s.has[next] = false
	shape := t.Shape()
	if int(shape[0]) != p.nEmbd {
		return fmt.Errorf("engine: prefetch: ffn_inp-%d has rows of %d, the router of layer %d takes %d", next-1, shape[0], next, p.nEmbd)
	}
	rows := int(shape[1] * shape[2] * shape[3])
	if rows == 0 {
		return nil
	}
	if rows > MaxPredictRows {
		p.st.skipped.Add(1)
		return nil
	}
	x, err := t.Float32s()
	if err != nil {
		return fmt.Errorf("engine: prefetch: %w", err)
	}
	pred := s.pred[next*p.words : (next+1)*p.words]
	clear(pred)
	w := p.router[next]
	for r := range rows {
		row := x[r*p.nEmbd : (r+1)*p.nEmbd]
		for e := range p.nExpert {
			s.scores[e] = dot(w[e*p.nEmbd:(e+1)*p.nEmbd], row)
		}
		for _, e := range p.topK(s) {
			pred[e/64] |= 1 << (e % 64)
		}
	}
	s.has[next] = true
	queued := s.queued[next*p.words : (next+1)*p.words]
	for i, word := range pred {
		for word != 0 {
			e := i*64 + bits.TrailingZeros64(word)
			word &= word - 1
			if p.gm.TierOf(genome.ExpertPage(p.id, next, e)).Resident() {
				p.st.resident.Add(1)
				continue
			}
			if p.send(prefetchJob{layer: int32(next), expert: int32(e)}) {
				queued[i] |= 1 << (e % 64)
			}
		}
	}
	return nil
}

// topK returns the indices of the nUsed largest scores, best first, in
// s.top.
func (p *Prefetcher) topK(s *prefetchState) []int {
	top := s.top[:0]
	for e, v := range s.scores {
		if len(top) == p.nUsed && v <= s.scores[top[len(top)-1]] {
			continue
		}
		i := len(top)
		if i < p.nUsed {
			top = append(top, e)
		} else {
			i--
		}
		for i > 0 && s.scores[top[i-1]] < v {
			top[i] = top[i-1]
			i--
		}
		top[i] = e
	}
	s.top = top
	return top
}

// dot is the inner product of a and b (len(b) >= len(a)).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// score runs after layer's routing was paged in (routed holds its
// experts): it counts the prediction's hits, and has the experts read for
// the layer that it did not use dropped again.
func (p *Prefetcher) score(layer int, routed []uint64, s *prefetchState) {
	if layer < 0 || layer >= len(s.has) || !s.has[layer] {
		return
	}
	s.has[layer] = false
	pred := s.pred[layer*p.words : (layer+1)*p.words]
	queued := s.queued[layer*p.words : (layer+1)*p.words]
	var predicted, actual, hits int
	for i := range pred {
		predicted += bits.OnesCount64(pred[i])
		actual += bits.OnesCount64(routed[i])
		hits += bits.OnesCount64(pred[i] & routed[i])
		wrong := queued[i] &^ routed[i]
		queued[i] = 0
		for wrong != 0 {
			e := i*64 + bits.TrailingZeros64(wrong)
			wrong &= wrong - 1
			p.send(prefetchJob{layer: int32(layer), expert: int32(e), drop: true})
		}
	}
	p.st.layers.Add(1)
	p.st.predicted.Add(uint64(predicted))
	p.st.actual.Add(uint64(actual))
	p.st.hits.Add(uint64(hits))
}

// fanOut queues reads of the experts of layer's routing (ids, repeats
// allowed) that are not resident, all but the first: the decoding
// goroutine is about to page that one in itself, and the kernel reads
// the rest meanwhile, so that a layer's misses are read side by side
// rather than one after another. A routed expert is never dropped again,
// so these reads are not marked queued for score. fan is scratch of a
// bit per expert (the observer's seen set, which it clears after). It
// allocates nothing.
func (p *Prefetcher) fanOut(layer int, ids []int32, fan []uint64) {
	if layer < 0 || layer >= len(p.extents) {
		return
	}
	mine := true // the first miss is the decoding goroutine's
	clear(fan)
	for _, e := range ids {
		if e < 0 || int(e) >= len(p.extents[layer]) {
			continue // not an expert of this layer: the pager reports it
		}
		w, bit := e/64, uint64(1)<<(e%64)
		if fan[w]&bit != 0 {
			continue
		}
		fan[w] |= bit
		if p.gm.TierOf(genome.ExpertPage(p.id, layer, int(e))).Resident() {
			continue
		}
		if mine {
			mine = false
			continue
		}
		if p.inflight[layer*p.nExpert+int(e)].Load() {
			continue // the prediction's read is on its way
		}
		if p.send(prefetchJob{layer: int32(layer), expert: e}) {
			p.st.fanned.Add(1)
		}
	}
}

// send queues j without blocking; it reports whether j was queued. A read
// of an expert already being read is not queued twice.
func (p *Prefetcher) send(j prefetchJob) bool {
	if p.closed.Load() {
		return false
	}
	fl := &p.inflight[int(j.layer)*p.nExpert+int(j.expert)]
	if !j.drop && !fl.CompareAndSwap(false, true) {
		p.st.resident.Add(1) // being read
		return true
	}
	select {
	case p.jobs <- j:
		if !j.drop {
			p.st.queued.Add(1)
		}
		return true
	default:
		if !j.drop {
			fl.Store(false)
		}
		p.st.full.Add(1)
		return false
	}
}

// reader is one goroutine of the pool.
func (p *Prefetcher) reader() {
	defer p.wg.Done()
	buf := make([]byte, readAheadBuf)
	for {
		select {
		case <-p.done:
			return
		case j := <-p.jobs:
			p.run(j, buf)
		}
	}
}

// run reads expert j into the page cache, or drops it, unless the genome
// holds it in a resident tier by now. A drop and the read it undoes may
// run on two readers at once: dropAfter hands the drop to whichever of
// them sees the read over, once. A drop always consumes the flag it set
// (itself, or through the read in flight), so none is left behind for a
// later read.
func (p *Prefetcher) run(j prefetchJob, buf []byte) {
	i := int(j.layer)*p.nExpert + int(j.expert)
	fl, after := &p.inflight[i], &p.dropAfter[i]
	if j.drop {
		after.Store(true)
		if fl.Load() || !after.Swap(false) {
			return // the read in flight drops it when it ends, or did
		}
		p.drop(j)
		return
	}
	if after.Swap(false) {
		// Its layer was routed, and the guess scored wrong, before the
		// read began: nothing to read, nothing to drop.
		fl.Store(false)
		p.st.stale.Add(1)
		return
	}
	defer func() {
		fl.Store(false)
		if after.Swap(false) {
			p.drop(j)
		}
	}()
	ext := p.extents[j.layer][j.expert]
	if p.gm.TierOf(genome.ExpertPage(p.id, int(j.layer), int(j.expert))).Resident() {
		p.st.resident.Add(1)
		return
	}
	var n int64
	for _, e := range ext {
		select {
		case <-p.done:
			return
		default:
		}
		got, err := p.readAhead(e, buf)
		n += got
		if err != nil {
			p.st.readErrs.Add(1)
			return
		}
	}
	p.st.read.Add(1)
	p.st.bytesRead.Add(uint64(n))
}

// drop drops a wrong guess's pages from the page cache, unless the genome
// holds the expert by now; pages mapped or locked elsewhere stay anyway.
func (p *Prefetcher) drop(j prefetchJob) {
	if p.gm.TierOf(genome.ExpertPage(p.id, int(j.layer), int(j.expert))).Resident() {
		return
	}
	for _, e := range p.extents[j.layer][j.expert] {
		if err := p.dropCached(e); err != nil {
			p.st.readErrs.Add(1)
			return
		}
	}
	p.st.dropped.Add(1)
}
