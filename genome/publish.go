package genome

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// events is the manager's outbox for faults and evictions. Callers never
// block on the bus: emit does a non-blocking send into a bounded queue and
// counts what does not fit (Stats.DroppedEvents); one goroutine drains the
// queue into the Publisher, holding no lock of the manager, so a slow
// subscriber delays only later events, never PageIn. A queue was chosen
// over publishing after unlocking in the caller because bus dispatch is
// synchronous: a subscriber's handler would otherwise run on the inference
// goroutine. Denials are the exception (Local.deny): they must not be
// dropped, and a denied call is not inference, so they are published by
// the caller.
//
// The queue holds the events by value, faults and evictions in fields of
// their own, so that queueing one allocates nothing: the box the
// Publisher's payload needs is made by the drain goroutine, off the
// paging path.
type events struct {
	pub  atomic.Pointer[publisherBox]
	ctr  *counters
	mu   sync.RWMutex // guards closed and sends on q against close(q)
	q    chan outEvent
	done chan struct{}
	shut bool
	// drainer is the goroutine id of drain: subscribers run on it, and a
	// Flush or Close from a subscriber must not wait for itself.
	drainer atomic.Uint64
}

type publisherBox struct{ p Publisher }

// outEvent is one queued event: a fault or an eviction, by value, or a
// Flush marker.
type outEvent struct {
	kind  eventKind
	fault PageFault
	evict EvictionRecord
	flush chan struct{} // kind eventFlush: closed once the events before it are published
}

// eventKind says which field of an outEvent is the event.
type eventKind uint8

const (
	eventFault eventKind = iota
	eventEviction
	eventFlush
)

func (e *events) start(n int, c *counters) {
	e.ctr = c
	e.q = make(chan outEvent, n)
	e.done = make(chan struct{})
	go e.drain()
}

func (e *events) drain() {
	defer close(e.done)
	e.drainer.Store(goid())
	for ev := range e.q {
		var err error
		b := e.pub.Load()
		switch {
		case ev.kind == eventFlush:
			close(ev.flush)
		case b == nil:
		case ev.kind == eventFault:
			err = b.p.Publish(KeyPageFault, ev.fault)
		case ev.kind == eventEviction:
			err = b.p.Publish(KeyEviction, ev.evict)
		}
		if err != nil {
			e.ctr.publishErrs.Add(1)
		}
	}
}

// SetPublisher sends later events to p (nil: stop publishing). Events
// raised while no publisher is set are not queued.
func (e *events) SetPublisher(p Publisher) {
	if p == nil {
		e.pub.Store(nil)
		return
	}
	e.pub.Store(&publisherBox{p})
}

// emitFault queues a KeyPageFault event without blocking.
func (e *events) emitFault(f *PageFault) {
	if e.pub.Load() != nil {
		e.send(outEvent{kind: eventFault, fault: *f})
	}
}

// emitEviction queues a KeyEviction event without blocking.
func (e *events) emitEviction(r *EvictionRecord) {
	if e.pub.Load() != nil {
		e.send(outEvent{kind: eventEviction, evict: *r})
	}
}

// send queues ev without blocking, or counts it dropped.
func (e *events) send(ev outEvent) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.shut {
		return
	}
	select {
	case e.q <- ev:
	default:
		e.ctr.dropped.Add(1)
	}
}

// Flush waits until every event queued before it has been published.
// Called from a subscriber of the manager's events (which runs on the
// goroutine that publishes them), it cannot wait for the events behind
// the one being handled, and returns ErrFlushInSubscriber at once instead
// of deadlocking.
func (e *events) Flush(ctx context.Context) error {
	if e.onDrainer() {
		return ErrFlushInSubscriber
	}
	done := make(chan struct{})
	e.mu.RLock()
	if e.shut {
		e.mu.RUnlock()
		return nil
	}
	select {
	case e.q <- outEvent{kind: eventFlush, flush: done}:
		e.mu.RUnlock()
	case <-ctx.Done():
		e.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop delivers what is queued and ends the drain goroutine. Called from
// a subscriber, it closes the queue but does not wait: the drain goroutine
// finishes the queue once the subscriber returns.
func (e *events) stop() {
	e.mu.Lock()
	if !e.shut {
		e.shut = true
		close(e.q)
	}
	e.mu.Unlock()
	if e.onDrainer() {
		return
	}
	<-e.done
}

// onDrainer reports whether the caller runs on the drain goroutine, that
// is, inside a subscriber's handler.
func (e *events) onDrainer() bool {
	d := e.drainer.Load()
	return d != 0 && d == goid()
}

// goid returns the id of the calling goroutine, parsed from the header
// of its stack trace ("goroutine 18 [running]:"). Go has no other way to
// ask; it costs about a microsecond and is used only off the paging path
// (Flush, Close, and once by the drain goroutine).
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
