package bus

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// counter counts deliveries per message id.
type counter struct {
	name string
	seen []atomic.Int32
	bad  atomic.Int32 // payloads that were not a known id
}

func newCounter(name string, n int) *counter {
	return &counter{name: name, seen: make([]atomic.Int32, n)}
}

func (c *counter) Name() string { return c.name }
func (c *counter) note(p any) {
	id, ok := p.(int)
	if !ok || id < 0 || id >= len(c.seen) {
		c.bad.Add(1)
		return
	}
	c.seen[id].Add(1)
}
func (c *counter) HandleEvent(ev Event) error { c.note(ev.Payload); return nil }
func (c *counter) OnArtifact(a Artifact)      { c.note(a.Payload) }

// Publishers, subscribers and unsubscribers run at once; every message must
// reach every stable subscriber whose selector matches exactly once, and a
// subscription must get nothing published after its Unsubscribe returned.
func TestConcurrentPublishSubscribeUnsubscribe(t *testing.T) {
	const publishers, perPublisher, churners, rounds = 4, 500, 3, 200
	total := publishers * perPublisher
	b := New()

	// Even ids go to artifact keys, odd ids to event names.
	exact := newCounter("exact", total)
	prefix := newCounter("prefix", total)
	events := newCounter("events", total)
	mustSubscribeArtifact(t, b, Exact(KeyPageFault), adapt(exact))
	mustSubscribeArtifact(t, b, Prefix("genome/"), adapt(prefix))
	mustSubscribe(t, b, "engine:*:token", adapt(events))

	var wg sync.WaitGroup
	errs := make(chan error, publishers+churners)
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				id := p*perPublisher + i
				var err error
				if id%2 == 0 {
					err = b.Publish(KeyPageFault, id)
				} else {
					err = b.Publish(fmt.Sprintf("engine:s%d:token", p), id)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for c := range churners {
		wg.Go(func() {
			marker := total + c // an id no publisher uses
			for range rounds {
				tr := newCounter("transient", total+churners)
				s1, err1 := b.SubscribeArtifact(Prefix("genome/working_set."), adapt(tr))
				s2, err2 := b.Subscribe("engine:>", adapt(tr))
				if err1 != nil || err2 != nil {
					errs <- fmt.Errorf("subscribe: %v, %v", err1, err2)
					return
				}
				s1.Unsubscribe()
				s2.Unsubscribe()
				if err := b.Publish(KeyEviction, marker); err != nil {
					errs <- err
					return
				}
				if n := tr.seen[marker].Load(); n != 0 {
					errs <- fmt.Errorf("transient subscription got %d messages published after Unsubscribe", n)
					return
				}
				for id := range total {
					if n := tr.seen[id].Load(); n > 1 {
						errs <- fmt.Errorf("transient subscription got message %d %d times", id, n)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for id := range total {
		wantArtifact := int32(1 - id%2)
		if got := exact.seen[id].Load(); got != wantArtifact {
			t.Fatalf("exact subscriber: message %d delivered %d times, want %d", id, got, wantArtifact)
		}
		if got := prefix.seen[id].Load(); got != wantArtifact {
			t.Fatalf("prefix subscriber: message %d delivered %d times, want %d", id, got, wantArtifact)
		}
		if got := events.seen[id].Load(); got != 1-wantArtifact {
			t.Fatalf("event subscriber: message %d delivered %d times, want %d", id, got, 1-wantArtifact)
		}
	}
	// prefix also saw the churners' markers on genome/working_set.eviction.
	for _, c := range []*counter{exact, events} {
		if n := c.bad.Load(); n != 0 {
			t.Errorf("%s: got %d unexpected payloads, want 0", c.name, n)
		}
	}
	if got, want := prefix.bad.Load(), int32(churners*rounds); got != want {
		t.Errorf("prefix: got %d marker messages, want %d", got, want)
	}
}

// adapt wraps a counter as a Module.
func adapt(c *counter) Module {
	return ModuleFuncs{ModuleName: c.name, Event: c.HandleEvent, Artifact: c.OnArtifact}
}
