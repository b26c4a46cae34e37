package bus

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// recorder is a Module that remembers what it received.
type recorder struct {
	name string

	mu        sync.Mutex
	events    []Event
	artifacts []Artifact
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) HandleEvent(ev Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) OnArtifact(a Artifact) {
	r.mu.Lock()
	r.artifacts = append(r.artifacts, a)
	r.mu.Unlock()
}

func (r *recorder) HandleCommand(_ context.Context, cmd Command) (any, error) {
	return "ack:" + cmd.Name, nil
}

func (r *recorder) eventNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Name)
	}
	return out
}

func (r *recorder) artifactKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.artifacts {
		out = append(out, a.Key)
	}
	return out
}

// mustSubscribe subscribes m to pattern and fails the test on error.
func mustSubscribe(tb testing.TB, b *MessageBus, pattern string, m Module) *Subscription {
	tb.Helper()
	s, err := b.Subscribe(pattern, m)
	if err != nil {
		tb.Fatalf("Subscribe(%q): %v", pattern, err)
	}
	return s
}

func mustSubscribeArtifact(tb testing.TB, b *MessageBus, sel Selector, m Module) *Subscription {
	tb.Helper()
	s, err := b.SubscribeArtifact(sel, m)
	if err != nil {
		tb.Fatalf("SubscribeArtifact(%v): %v", sel, err)
	}
	return s
}

func sameStrings(a, b []string) bool { return slices.Equal(a, b) }
