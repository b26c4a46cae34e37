package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestPublishDeliversInSubscriptionOrder(t *testing.T) {
	b := New()
	var order []string
	mk := func(name string) Module {
		return ModuleFuncs{ModuleName: name, Artifact: func(Artifact) { order = append(order, name) }}
	}
	mustSubscribeArtifact(t, b, Prefix("genome/"), mk("p1"))
	mustSubscribeArtifact(t, b, Exact(KeyEviction), mk("e1"))
	mustSubscribeArtifact(t, b, Prefix(""), mk("p2"))
	mustSubscribeArtifact(t, b, Exact(KeyEviction), mk("e2"))
	if err := b.Publish(KeyEviction, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"p1", "e1", "p2", "e2"}; !sameStrings(order, want) {
		t.Errorf("got order %v, want %v", order, want)
	}
}

// The cache must never hide a subscription change.
func TestCacheInvalidation(t *testing.T) {
	b := New()
	r1, r2 := &recorder{name: "1"}, &recorder{name: "2"}
	s1 := mustSubscribe(t, b, "a:*", r1)
	publish := func() {
		t.Helper()
		if err := b.Publish("a:b", nil); err != nil {
			t.Fatal(err)
		}
	}
	publish() // fills the cache
	s2 := mustSubscribe(t, b, "a:>", r2)
	publish()
	s1.Unsubscribe()
	publish()
	s1.Unsubscribe() // idempotent
	s2.Unsubscribe()
	publish()
	if got, want := len(r1.eventNames()), 2; got != want {
		t.Errorf("first subscriber: got %d events, want %d", got, want)
	}
	if got, want := len(r2.eventNames()), 2; got != want {
		t.Errorf("second subscriber: got %d events, want %d", got, want)
	}
	if st := b.Stats(); st.Published != 4 || st.CacheMisses != 4 {
		t.Errorf("stats: got %+v, want 4 published and 4 misses (every change clears the cache)", st)
	}
	publish()
	if st := b.Stats(); st.CacheMisses != 4 {
		t.Errorf("repeat publish: got %d misses, want 4 (a cache hit)", st.CacheMisses)
	}
}

func TestCacheIsBounded(t *testing.T) {
	b := New()
	mustSubscribe(t, b, ">", &recorder{})
	for i := 0; i < 3*cacheMax; i++ {
		if err := b.Publish(fmt.Sprintf("k:%d", i), nil); err != nil {
			t.Fatal(err)
		}
		if n := b.Stats().CacheEntries; n > cacheMax {
			t.Fatalf("after %d keys: got %d cache entries, want at most %d", i+1, n, cacheMax)
		}
	}
}

func TestPanicIsRecoveredAndOthersStillDelivered(t *testing.T) {
	b := New()
	before, after := &recorder{name: "before"}, &recorder{name: "after"}
	mustSubscribeArtifact(t, b, Prefix("x/"), before)
	mustSubscribeArtifact(t, b, Prefix("x/"), ModuleFuncs{ModuleName: "boom", Artifact: func(Artifact) { panic("kaboom") }})
	mustSubscribeArtifact(t, b, Prefix("x/"), after)
	err := b.Publish("x/y.z", nil)
	var he *HandlerError
	if !errors.As(err, &he) || !errors.Is(err, ErrHandlerPanic) {
		t.Fatalf("got %v, want a *HandlerError wrapping ErrHandlerPanic", err)
	}
	if he.Module != "boom" || he.Key != "x/y.z" || he.Panic != "kaboom" {
		t.Errorf("got %+v, want module boom, key x/y.z, panic kaboom", he)
	}
	if len(before.artifactKeys()) != 1 || len(after.artifactKeys()) != 1 {
		t.Errorf("got %d and %d deliveries to the other subscribers, want 1 and 1",
			len(before.artifactKeys()), len(after.artifactKeys()))
	}
	if got := b.Stats().Panics; got != 1 {
		t.Errorf("got %d panics counted, want 1", got)
	}
}

func TestEventHandlerErrorsAreJoined(t *testing.T) {
	b := New()
	errA, errB := errors.New("a failed"), errors.New("b failed")
	mustSubscribe(t, b, "e", ModuleFuncs{ModuleName: "a", Event: func(Event) error { return errA }})
	mustSubscribe(t, b, "e", ModuleFuncs{ModuleName: "ok"})
	mustSubscribe(t, b, "e", ModuleFuncs{ModuleName: "b", Event: func(Event) error { return errB }})
	mustSubscribe(t, b, "e", ModuleFuncs{ModuleName: "p", Event: func(Event) error { panic(errors.New("p")) }})
	err := b.Publish("e", nil)
	for _, want := range []error{errA, errB, ErrHandlerPanic} {
		if !errors.Is(err, want) {
			t.Errorf("got %v, want it to wrap %v", err, want)
		}
	}
	if st := b.Stats(); st.HandlerErrors != 2 || st.Panics != 1 {
		t.Errorf("got %+v, want 2 handler errors and 1 panic", st)
	}
}

// A handler may publish, subscribe and unsubscribe: no lock is held while it
// runs. A deadlock here hangs the test.
func TestReentrantHandlers(t *testing.T) {
	b := New()
	inner := &recorder{name: "inner"}
	var sub *Subscription
	var handlerErrs []error
	outer := ModuleFuncs{ModuleName: "outer", Artifact: func(a Artifact) {
		s, err := b.Subscribe("late", inner)
		handlerErrs = append(handlerErrs, err)
		handlerErrs = append(handlerErrs, b.Publish("late", a.Key))
		handlerErrs = append(handlerErrs, b.Publish(KeyAuditEntryRecorded, nil))
		s.Unsubscribe()
		sub.Unsubscribe() // unsubscribe itself
	}}
	sub = mustSubscribeArtifact(t, b, Exact(KeyAccessDenied), outer)
	mustSubscribeArtifact(t, b, Exact(KeyAuditEntryRecorded), inner)
	for range 2 {
		if err := b.Publish(KeyAccessDenied, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range handlerErrs {
		if err != nil {
			t.Errorf("handler: got %v, want nil", err)
		}
	}
	if got, want := inner.eventNames(), []string{"late"}; !sameStrings(got, want) {
		t.Errorf("inner events: got %v, want %v (the second publish must not reach the unsubscribed outer)", got, want)
	}
	if got, want := inner.artifactKeys(), []string{KeyAuditEntryRecorded}; !sameStrings(got, want) {
		t.Errorf("inner artifacts: got %v, want %v", got, want)
	}
}

func TestModuleFuncsDefaults(t *testing.T) {
	m := ModuleFuncs{ModuleName: "m"}
	if err := m.HandleEvent(Event{}); err != nil {
		t.Errorf("HandleEvent: got %v, want nil", err)
	}
	m.OnArtifact(Artifact{})
	if _, err := m.HandleCommand(context.Background(), Command{Name: "x"}); !errors.Is(err, ErrNoHandler) {
		t.Errorf("HandleCommand: got %v, want ErrNoHandler", err)
	}
	var _ Module = &m // both value and pointer implement Module
}
