package engine

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/llama"
)

// scheduler is the state of the Engine's decoding goroutine: the
// sequences of the shared context and the batch every step fills. Only
// that goroutine touches it (draining excepted), so it needs no lock, and
// a step allocates nothing.
type scheduler struct {
	e        *Engine
	batch    *llama.Batch
	slots    []slot
	step     uint64
	adapter  *adapter    // the adapter set on the context now
	rowReq   []*request  // batch row → request, for residency faults
	outReq   []*request  // output rows (the last layer's) → request
	queued   []*request  // taken off e.queue, waiting for a free slot, oldest first
	draining atomic.Bool // Shutdown: refuse new requests
}

// slot is one sequence of the context.
type slot struct {
	seq      int32
	r        *request // nil when free
	pos      int32    // next position in the sequence
	prefill  int      // prompt tokens decoded so far
	pending  llama.Token
	decode   bool   // pending is sampled and waits to be decoded
	logitIdx int    // batch row of its logits in this step; -1 none
	nGen     int    // tokens sampled
	lastStep uint64 // last step it was decoded in, for fairness between adapters
	ended    uint64 // the step its last request ended in, for pickSlot
	text     []byte // generated text not yet known to be free of a stop string
	released int    // bytes of text already sent
	stall    Delta  // a delta the reader had no room for, when stalled
	stalled  bool
	// kv are the tokens whose KV the sequence holds, at positions 0 to
	// len(kv)-1, once the step's decode has succeeded (fill adds the
	// step's tokens, rewind and an error take them back): the request's
	// and, once it has ended, its last request's, for a next one whose
	// prompt starts the same way. They were computed for kvPersona with
	// kvAdapter.
	kv        []llama.Token
	kvPersona string
	kvAdapter *adapter
}

func (s *scheduler) init(e *Engine) error {
	s.e = e
	b, err := llama.NewBatch(e.lctx.NBatch(), 1)
	if err != nil {
		return err
	}
	s.batch = b
	s.slots = make([]slot, e.cfg.Parallel)
	for i := range s.slots {
		s.slots[i] = slot{seq: int32(i), logitIdx: -1, text: make([]byte, 0, 512), kv: make([]llama.Token, 0, e.cfg.ContextSize)}
	}
	s.queued = make([]*request, 0, e.cfg.QueueSize)
	s.rowReq = make([]*request, 0, b.Cap())
	s.outReq = make([]*request, 0, b.Cap())
	return nil
}

func (s *scheduler) free() {
	if s.batch != nil {
		s.batch.Close()
	}
}

// loop is the decoding goroutine: admit, build one batch from every
// active sequence, decode, sample, deliver; until Close.
func (e *Engine) loop() {
	s := &e.sch
	defer close(e.loopDone)
	for {
		if !s.admit() {
			s.abortAll(ErrEngineClosed)
			return
		}
		s.reap()
		if s.active() == 0 {
			continue
		}
		n := s.fill()
		if n == 0 {
			// Every active sequence waits for its reader; let them read.
			select {
			case <-e.quit:
			case <-time.After(time.Millisecond):
			}
			continue
		}
		s.step++
		err := e.lctx.Decode(s.batch)
		if err != nil {
			select {
			case <-e.quit:
				s.abortAll(ErrEngineClosed)
				return
			default:
			}
			s.failBatch(err)
			continue
		}
		s.sampleAll()
	}
}

// active counts busy slots.
func (s *scheduler) active() int {
	n := 0
	for i := range s.slots {
		if s.slots[i].r != nil {
			n++
		}
	}
	return n
}

// admit moves queued requests into free slots, oldest first. It takes
// every request off e.queue at each step, so that one whose context ends
// while it waits is finished (and its place in the queue given back) by
// the next step, not when a slot frees. With no active sequence it blocks
// for the next request. It returns false when the Engine closes.
func (s *scheduler) admit() bool {
	e := s.e
	for {
		s.takeQueued()
		if !s.anyFree() {
			return !s.closed()
		}
		if len(s.queued) == 0 {
			if s.active() > 0 {
				return !s.closed()
			}
			select {
			case r := <-e.queue:
				s.queued = append(s.queued, r)
				continue
			case <-e.quit:
				return false
			}
		}
		r := s.queued[0]
		s.queued = s.queued[:copy(s.queued, s.queued[1:])]
		sl, n := s.pickSlot(r)
		s.start(sl, r, n)
		r.started = time.Now()
		// Counted active before it stops counting as waiting, so that
		// Shutdown never sees neither.
		e.st.active.Add(1)
		e.st.waiting.Add(-1)
	}
}

// anyFree reports whether a slot is free.
func (s *scheduler) anyFree() bool {
	for i := range s.slots {
		if s.slots[i].r == nil {
			return true
		}
	}
	return false
}

// pickSlot returns the free slot r starts in; there is one. A free
// slot's KV is the cache of its last request. r takes, in this order of
// preference: the slot whose KV holds the longest prefix of its prompt,
// when that is at least half of what the slot holds (worth more than
// what it overwrites: a new conversation that shares only the chat
// template's first tokens with a cached one goes elsewhere); a slot
// that keeps the busy sequence ids consecutive; a slot with nothing
// cached; the slot whose last request ended first. Consecutive ids
// matter because with a KV stream per sequence llama.cpp decodes only
// consecutive ids in one pass (split_equal): busy sequences 0 and 2
// cost two passes over the weights every step (a gap left anyway is
// closed by compact). It also returns how many of r's prompt tokens the
// slot's KV holds (reusable).
func (s *scheduler) pickSlot(r *request) (*slot, int) {
	var best *slot
	var bestKey [4]int64
	bestN := 0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r != nil {
			continue
		}
		var key [4]int64
		n := s.reusable(sl, r)
		if n > 0 && 2*n >= len(sl.kv) {
			key[0] = int64(n)
		}
		if s.consecutive(sl) {
			key[1] = 1
		}
		if len(sl.kv) == 0 {
			key[2] = 1
		}
		key[3] = -int64(sl.ended)
		if best == nil || cmpKey(key, bestKey) > 0 {
			best, bestKey, bestN = sl, key, n
		}
	}
	return best, bestN
}

func cmpKey(a, b [4]int64) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] > b[i] {
				return 1
			}
			return -1
		}
	}
	return 0
}

// consecutive reports whether the busy sequences and sl's have
// consecutive ids.
func (s *scheduler) consecutive(sl *slot) bool {
	lo, hi, n := s.busySpan(sl)
	return hi-lo+1 == n
}

// busySpan returns the lowest and highest id of the busy sequences, and
// extra's when it is not nil, and how many they are (0, and lo and hi
// -1, with none).
func (s *scheduler) busySpan(extra *slot) (lo, hi, n int32) {
	lo, hi = -1, -1
	for i := range s.slots {
		if sl := &s.slots[i]; sl.r != nil || sl == extra {
			if lo < 0 {
				lo = sl.seq
			}
			hi, n = sl.seq, n+1
		}
	}
	return lo, hi, n
}

// reusable is how many of r's prompt tokens sl's KV holds already and
// r may use: a prefix computed for the same persona and adapter, less
// the prompt's last token, which is decoded again for its logits.
func (s *scheduler) reusable(sl *slot, r *request) int {
	if r.noCache || sl.kvPersona != r.persona || sl.kvAdapter != r.adapter {
		return 0
	}
	n := 0
	for n < len(sl.kv) && n < len(r.tokens)-1 && sl.kv[n] == r.tokens[n] {
		n++
	}
	return n
}

// start gives free slot sl to r, keeping the KV of the n-token prefix
// r shares with the slot's last request (reusable) and dropping the
// rest. The whole prompt is decoded where llama.cpp cannot cut the
// sequence at the prefix (a recurrent or hybrid model's state) or no
// longer holds all of it (a sliding-window cache that moved on), which
// the positions it reports after the cut show.
func (s *scheduler) start(sl *slot, r *request, n int) {
	lctx := s.e.lctx
	if n > 0 {
		if !lctx.RemoveSeq(sl.seq, int32(n), -1) {
			n = 0
		} else if pmin, pmax := lctx.SeqPosRange(sl.seq); pmin != 0 || pmax != int32(n-1) {
			n = 0
		}
	}
	if n == 0 {
		lctx.RemoveSeq(sl.seq, -1, -1)
	}
	*sl = slot{seq: sl.seq, r: r, logitIdx: -1, text: sl.text[:0], ended: sl.ended,
		kv: sl.kv[:n], kvPersona: r.persona, kvAdapter: r.adapter, pos: int32(n), prefill: n}
	r.cached = n
	s.e.st.cachedTokens.Add(uint64(n))
}

// takeQueued moves the requests in e.queue to s.queued and finishes
// those whose context ended.
func (s *scheduler) takeQueued() {
	e := s.e
	s.drainQueue()
	kept := s.queued[:0]
	for _, r := range s.queued {
		if err := r.ctx.Err(); err != nil {
			// Counted out before its stream ends, so that a caller who
			// saw the end sees the queue's place given back.
			e.st.waiting.Add(-1)
			s.finishUnstarted(r, StopCancelled, err)
			continue
		}
		kept = append(kept, r)
	}
	clear(s.queued[len(kept):])
	s.queued = kept
}

// drainQueue moves the requests in e.queue to s.queued.
func (s *scheduler) drainQueue() {
	for {
		select {
		case r := <-s.e.queue:
			s.queued = append(s.queued, r)
		default:
			return
		}
	}
}

func (s *scheduler) closed() bool {
	select {
	case <-s.e.quit:
		return true
	default:
		return false
	}
}

// reap ends the requests whose context ended, and retries deliveries to
// readers that had no room.
func (s *scheduler) reap() {
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r == nil {
			continue
		}
		if err := sl.r.ctx.Err(); err != nil {
			s.finish(sl, StopCancelled, err)
			continue
		}
		if sl.stalled {
			select {
			case sl.r.out <- sl.stall:
				sl.stalled = false
			default:
			}
		}
	}
}

// compact keeps the busy sequence ids consecutive when a request that
// ended, or one that resumed its cached KV, left a gap among them:
// llama.cpp decodes only consecutive ids in one pass, so busy sequences 0
// and 2 would cost two passes over the weights every step. It moves the
// busy sequence with the highest id to the lowest free id below it
// (llama.cpp copies the KV stream before the next decode: 128 MiB for a
// 1B model's 4,096 cells), unless that request has fewer than
// minStepsToMove steps left. The free sequence it leaves keeps the same
// KV, as a cache.
func (s *scheduler) compact() {
	for {
		lo, hi, n := s.busySpan(nil)
		if n == 0 || hi-lo+1 == n {
			return
		}
		src := &s.slots[hi]
		if src.prefill >= len(src.r.tokens) && src.r.maxTokens-src.nGen < minStepsToMove {
			return
		}
		var dst *slot
		for i := range s.slots[:hi] {
			if sl := &s.slots[i]; sl.r == nil && sl.seq > lo {
				dst = sl
				break
			}
		}
		if dst == nil || !s.move(src, dst) {
			return
		}
	}
}

// minStepsToMove is the fewest steps a request must have left for
// compact to move it.
const minStepsToMove = 4

// move moves busy slot src's request, state and KV to free slot dst.
// src is left free, its KV cached as it was.
func (s *scheduler) move(src, dst *slot) bool {
	lctx := s.e.lctx
	lctx.RemoveSeq(dst.seq, -1, -1)
	lctx.CopySeq(src.seq, dst.seq, -1, -1)
	_, want := lctx.SeqPosRange(src.seq)
	if _, got := lctx.SeqPosRange(dst.seq); got != want {
		lctx.RemoveSeq(dst.seq, -1, -1) // llama.cpp could not copy it
		dst.kv = dst.kv[:0]
		return false
	}
	seq, text, kv := dst.seq, dst.text, dst.kv
	*dst = *src
	dst.seq = seq
	dst.kv = append(kv[:0], src.kv...)
	src.r, src.decode, src.logitIdx, src.stalled, src.stall = nil, false, -1, false, Delta{}
	src.text, src.ended = text[:0], s.step
	s.e.st.kvCopies.Add(1)
	return true
}

// fill builds the step's batch: one token of every generating sequence,
// then prompt chunks in the room left. Sequences of one adapter set only
// share a decode (llama.cpp applies adapters per context); when several
// sets are active, the one whose sequence waited longest goes first.
func (s *scheduler) fill() int {
	e := s.e
	s.compact()
	b := s.batch
	b.Clear()
	s.rowReq = s.rowReq[:0]
	s.outReq = s.outReq[:0]

	var pick *adapter
	oldest := ^uint64(0)
	for i := range s.slots {
		sl := &s.slots[i]
		sl.logitIdx = -1
		if sl.r != nil && !sl.stalled && sl.lastStep < oldest {
			oldest, pick = sl.lastStep, sl.r.adapter
		}
	}
	if oldest == ^uint64(0) {
		return 0
	}
	if pick != s.adapter {
		var err error
		if err = e.lctx.ClearAdapters(); err == nil && pick != nil {
			err = e.lctx.SetAdapter(pick.a, pick.spec.Scale)
		}
		if err != nil {
			name := "(none)"
			if pick != nil {
				name = pick.spec.Name
			}
			for i := range s.slots {
				if sl := &s.slots[i]; sl.r != nil && sl.r.adapter == pick {
					s.finish(sl, StopError, fmt.Errorf("engine: adapter %q: %w", name, err))
				}
			}
			s.adapter = nil
			e.lctx.ClearAdapters()
			return 0
		}
		s.adapter = pick
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r == nil || sl.stalled || sl.r.adapter != pick || !sl.decode {
			continue
		}
		sl.logitIdx = b.Len()
		b.Add(sl.pending, sl.pos, sl.seq, true)
		sl.kv = append(sl.kv, sl.pending)
		s.rowReq = append(s.rowReq, sl.r)
		s.outReq = append(s.outReq, sl.r)
		sl.lastStep = s.step + 1
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r == nil || sl.r.adapter != pick || sl.prefill >= len(sl.r.tokens) {
			continue
		}
		room := b.Cap() - b.Len()
		if room == 0 {
			break
		}
		toks := sl.r.tokens[sl.prefill:]
		n := min(len(toks), room)
		last := n == len(toks)
		for j, t := range toks[:n] {
			out := last && j == n-1
			b.Add(t, sl.pos+int32(j), sl.seq, out)
			s.rowReq = append(s.rowReq, sl.r)
		}
		sl.kv = append(sl.kv, toks[:n]...)
		if last {
			sl.logitIdx = b.Len() - 1
			s.outReq = append(s.outReq, sl.r)
		}
		sl.pos += int32(n)
		sl.prefill += n
		sl.lastStep = s.step + 1
		e.st.promptTokens.Add(uint64(n))
	}
	return b.Len()
}

// sampleAll samples a token for every sequence that had logits in the
// step and hands it to its reader.
func (s *scheduler) sampleAll() {
	e := s.e
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r == nil || sl.logitIdx < 0 {
			continue
		}
		if sl.decode {
			sl.pos++ // the pending token is in the KV cache now
			sl.decode = false
		}
		r := sl.r
		tok, err := r.smp.Sample(e.lctx, sl.logitIdx)
		if err != nil {
			s.finish(sl, StopError, fmt.Errorf("engine: sample: %w", err))
			continue
		}
		if sl.nGen == 0 {
			r.first = time.Now()
			FirstTokenTopic.Publish(e.bus, FirstToken{
				ID: r.id, Persona: r.persona, PromptTokens: len(r.tokens), CachedTokens: r.cached,
				QueueWait: Millis(r.started.Sub(r.accepted)), PromptEval: Millis(r.first.Sub(r.started)),
				TimeToFirstToken: Millis(r.first.Sub(r.accepted)),
			})
		}
		if e.vocab.IsEOG(tok) && !r.ignoreEOS {
			s.finish(sl, StopEOG, nil)
			continue
		}
		sl.nGen++
		e.st.genTokens.Add(1)
		stop := s.appendText(sl, tok)
		switch {
		case stop:
			s.finish(sl, StopString, nil)
		case sl.nGen >= r.maxTokens:
			s.finish(sl, StopLength, nil)
		default:
			sl.pending, sl.decode = tok, true
		}
	}
}

// appendText adds tok's piece to the slot's text, sends what is safe to
// send, and reports whether a stop string ended the text.
func (s *scheduler) appendText(sl *slot, tok llama.Token) (stopped bool) {
	r := sl.r
	before := len(sl.text)
	var err error
	if sl.text, err = s.e.vocab.AppendPiece(sl.text, tok, false); err != nil {
		sl.text = sl.text[:before]
	}
	safe := len(sl.text)
	if len(r.stops) > 0 {
		from := max(0, before-r.maxStop+1, sl.released)
		cut := -1
		for _, st := range r.stops {
			if i := indexFrom(sl.text, st, from); i >= 0 && (cut < 0 || i < cut) {
				cut = i
			}
		}
		if cut >= 0 {
			sl.text = sl.text[:cut]
			s.send(sl, tok, len(sl.text))
			return true
		}
		safe -= partialStop(sl.text[sl.released:], r.stops)
	}
	safe = runeBoundary(sl.text, sl.released, safe)
	s.send(sl, tok, safe)
	return false
}

// indexFrom is the index of sub in b at or after from, or -1.
func indexFrom(b []byte, sub string, from int) int {
	for i := from; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == sub {
			return i
		}
	}
	return -1
}

// partialStop is the length of the longest tail of b that is a proper
// prefix of a stop string: bytes that must wait for the next token.
func partialStop(b []byte, stops []string) int {
	hold := 0
	for _, st := range stops {
		for k := min(len(st)-1, len(b)); k > hold; k-- {
			if string(b[len(b)-k:]) == st[:k] {
				hold = k
				break
			}
		}
	}
	return hold
}

// runeBoundary moves end back so text[from:end] does not end inside a
// multi-byte UTF-8 character.
func runeBoundary(text []byte, from, end int) int {
	start := end
	for start > from && end-start < utf8.UTFMax && !utf8.RuneStart(text[start-1]) {
		start--
	}
	if start > from && utf8.RuneStart(text[start-1]) {
		start--
	}
	if start < end && !utf8.FullRune(text[start:end]) {
		return start
	}
	return end
}

// send releases text[released:upto] with tok to the reader. A reader with
// no room stalls its sequence (it is left out of decodes) rather than the
// whole batch.
func (s *scheduler) send(sl *slot, tok llama.Token, upto int) {
	d := Delta{Token: tok}
	if b := sl.text[sl.released:upto]; len(b) <= len(d.small) {
		d.n = uint8(copy(d.small[:], b))
	} else {
		d.big = string(b)
	}
	sl.released = upto
	if sl.released > 1024 {
		// Keep only what a stop string could still reach back into.
		n := copy(sl.text, sl.text[sl.released:])
		sl.text, sl.released = sl.text[:n], 0
	}
	select {
	case sl.r.out <- d:
	default:
		sl.stall, sl.stalled = d, true
	}
}

// finish ends a slot's request: the rest of its text is delivered and
// the completion event published. The sequence keeps its KV, for a next
// request that starts with the same tokens (pickSlot): its KV stream is
// its own, so the cells take no room from the other sequences. After an
// error they are dropped.
func (s *scheduler) finish(sl *slot, reason StopReason, err error) {
	e := s.e
	r := sl.r
	if reason == StopError {
		e.lctx.RemoveSeq(sl.seq, -1, -1)
		sl.kv = sl.kv[:0]
	}
	sl.r, sl.decode, sl.logitIdx, sl.ended = nil, false, -1, s.step
	e.st.active.Add(-1)
	now := time.Now()
	r.res = Result{
		ID: r.id, StopReason: reason, PromptTokens: len(r.tokens), CachedTokens: r.cached, CompletionTokens: sl.nGen,
		QueueWait: r.started.Sub(r.accepted), Total: now.Sub(r.accepted), Err: err,
	}
	if !r.first.IsZero() {
		r.res.PromptEval = r.first.Sub(r.started)
		r.res.Generation = now.Sub(r.first)
	}
	var tail []Delta
	if sl.stalled {
		tail = append(tail, sl.stall)
		sl.stalled = false
	}
	if reason != StopCancelled && sl.released < len(sl.text) {
		d := Delta{Token: llama.NullToken, big: string(sl.text[sl.released:])}
		tail = append(tail, d)
	}
	sl.text, sl.released = sl.text[:0], 0
	s.complete(r, tail)
}

// finishUnstarted ends a request that never got a slot.
func (s *scheduler) finishUnstarted(r *request, reason StopReason, err error) {
	now := time.Now()
	r.started = now
	r.res = Result{ID: r.id, StopReason: reason, PromptTokens: len(r.tokens), QueueWait: now.Sub(r.accepted), Total: now.Sub(r.accepted), Err: err}
	s.complete(r, nil)
}

// complete delivers tail, closes the stream and publishes the completion.
// A tail the reader has no room for is handed over by a goroutine that
// gives up when the request's context ends (Stream.Close cancels it).
func (s *scheduler) complete(r *request, tail []Delta) {
	e := s.e
	e.st.completed.Add(1)
	res := r.res
	ev := Complete{
		ID: r.id, Persona: r.persona, StopReason: res.StopReason, PromptTokens: res.PromptTokens,
		CachedTokens: res.CachedTokens, CompletionTokens: res.CompletionTokens, TokensPerSecond: res.TokensPerSecond(),
		PromptEval: Millis(res.PromptEval), Generation: Millis(res.Generation), Total: Millis(res.Total),
	}
	if res.Err != nil {
		ev.Error = res.Err.Error()
	}
	// Published before the stream ends, so a reader that saw the end can
	// count on the event.
	CompleteTopic.Publish(e.bus, ev)
	done := func() {
		close(r.out)
		r.smp.Close()
		r.cancel()
		close(r.done)
	}
	for len(tail) > 0 {
		select {
		case r.out <- tail[0]:
			tail = tail[1:]
			continue
		default:
		}
		break
	}
	if len(tail) == 0 {
		done()
	} else {
		go func() {
			defer done()
			for _, d := range tail {
				select {
				case r.out <- d:
				case <-r.ctx.Done():
					return
				}
			}
		}()
	}
}

// failBatch ends the requests of a decode that failed. When the KV cache
// was full, only the youngest sequence in the batch is failed, so the
// others can go on. (Each sequence has a stream of at least ContextSize
// cells and no request may outgrow ContextSize, so a full cache is not
// expected; the branch stays for a llama.cpp that reports one anyway.)
func (s *scheduler) failBatch(err error) {
	if b := s.e.budget; b != nil {
		err = b.Pager.Explain(err) // a paging error says why the decode stopped
	}
	if errors.Is(err, llama.ErrKVCacheFull) {
		var young *slot
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.r != nil && sl.lastStep == s.step && (young == nil || sl.r.accepted.After(young.r.accepted)) {
				young = sl
			}
		}
		if young != nil {
			s.finish(young, StopError, fmt.Errorf("engine: decode: %w", err))
		}
		s.rewind()
		return
	}
	for i := range s.slots {
		if sl := &s.slots[i]; sl.r != nil && sl.lastStep == s.step {
			s.finish(sl, StopError, fmt.Errorf("engine: decode: %w", err))
		}
	}
}

// rewind undoes the progress the failed step made: the KV cache dropped
// those tokens. A sampled token waits to be decoded again.
func (s *scheduler) rewind() {
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.r == nil || sl.lastStep != s.step {
			continue
		}
		if !sl.decode {
			_, pmax := s.e.lctx.SeqPosRange(sl.seq)
			sl.pos = pmax + 1
			sl.prefill = int(sl.pos)
		}
		sl.kv = sl.kv[:min(len(sl.kv), int(sl.pos))]
	}
}

// abortAll ends every request, running or queued, with err.
func (s *scheduler) abortAll(err error) {
	e := s.e
	for i := range s.slots {
		if sl := &s.slots[i]; sl.r != nil {
			s.finish(sl, StopCancelled, err)
		}
	}
	// Under e.mu no Generate is between its check and its send; once
	// the queue is emptied there, none will send again.
	e.mu.Lock()
	s.drainQueue()
	e.mu.Unlock()
	for _, r := range s.queued {
		e.st.waiting.Add(-1)
		s.finishUnstarted(r, StopCancelled, err)
	}
	clear(s.queued)
	s.queued = s.queued[:0]
}

// onFault attributes a residency fault met while decoding the current
// batch to the request whose token row was routed to the expert, and
// publishes it. It runs on the decoding goroutine, inside Decode.
func (s *scheduler) onFault(layer, expert, row, rows int, f *genome.PageFault) {
	e := s.e
	e.st.faults.Add(1)
	var r *request
	switch {
	case rows == len(s.rowReq) && row < rows:
		r = s.rowReq[row]
	case rows == len(s.outReq) && row < rows:
		r = s.outReq[row]
	}
	ev := ResidencyFault{Layer: layer, Expert: expert, Bytes: f.Bytes, Latency: Millis(f.Latency),
		From: f.From.String(), To: f.To.String(), Artifact: uuid.UUID(f.Page.Artifact)}
	if r != nil {
		ev.ID, ev.Persona = r.id, r.persona
	}
	ResidencyFaultTopic.Publish(e.bus, ev)
}
