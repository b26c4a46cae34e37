package bus

import (
	"context"
	"errors"
	"testing"
)

// declared is a recorder that declares its subscriptions.
type declared struct {
	recorder
	sels []Selector
	pats []string
}

func (d *declared) ArtifactSelectors() []Selector { return d.sels }
func (d *declared) EventPatterns() []string       { return d.pats }

func TestRuntimeRegisterRoutesEverything(t *testing.T) {
	b := New()
	rt := NewRuntime(b)
	m := &declared{
		recorder: recorder{name: "genome-watch"},
		// Overlapping selectors: each message must still arrive once.
		sels: []Selector{Exact(KeyPageFault), Prefix("genome/"), Prefix("inference/llm.")},
		pats: []string{"sys:*", "sys:>"},
	}
	if err := rt.Register(m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{KeyPageFault, KeyEviction, KeyLLMComplete, "audit/log.entry_recorded", "sys:tick", "sys:a:b", "other"} {
		if err := b.Publish(key, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := m.artifactKeys(), []string{KeyPageFault, KeyEviction, KeyLLMComplete}; !sameStrings(got, want) {
		t.Errorf("artifacts: got %v, want %v", got, want)
	}
	if got, want := m.eventNames(), []string{"sys:tick", "sys:a:b"}; !sameStrings(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}

	res, err := rt.Send(context.Background(), "genome-watch", Command{Name: "status"})
	if err != nil || res != "ack:status" {
		t.Errorf("Send: got %v, %v, want ack:status, nil", res, err)
	}

	if err := rt.Unregister("genome-watch"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(KeyPageFault, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("sys:tick", nil); err != nil {
		t.Fatal(err)
	}
	if got := len(m.artifactKeys()) + len(m.eventNames()); got != 5 {
		t.Errorf("after Unregister: got %d deliveries in all, want still 5", got)
	}
	if got := rt.Modules(); len(got) != 0 {
		t.Errorf("Modules after Unregister: got %v, want none", got)
	}
}

func TestRuntimeErrors(t *testing.T) {
	b := New()
	rt := NewRuntime(b)
	if err := rt.Register(&declared{recorder: recorder{name: "a"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", rt.Register(&declared{recorder: recorder{name: "a"}}), ErrDuplicateModule},
		{"nil", rt.Register(nil), ErrNilModule},
		{"empty name", rt.Register(&recorder{}), ErrEmptyModuleName},
		{"bad selector", rt.Register(&declared{recorder: recorder{name: "b"}, sels: []Selector{Exact(KeyEviction), Prefix("x//")}}), ErrInvalidSelector},
		{"bad pattern", rt.Register(&declared{recorder: recorder{name: "c"}, pats: []string{"ok", "a:>:b"}}), ErrInvalidPattern},
		{"unknown unregister", rt.Unregister("zz"), ErrUnknownModule},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if _, err := rt.Send(context.Background(), "zz", Command{}); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("Send to unknown: got %v, want ErrUnknownModule", err)
	}
	// A failed Register subscribes nothing.
	if err := b.Publish(KeyEviction, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := rt.Modules(), []string{"a"}; !sameStrings(got, want) {
		t.Errorf("Modules: got %v, want %v", got, want)
	}
	if _, ok := rt.Module("b"); ok {
		t.Error("module b registered after a failed Register")
	}
}

func TestRuntimeSendRecoversPanic(t *testing.T) {
	rt := NewRuntime(New())
	m := ModuleFuncs{ModuleName: "p", Command: func(context.Context, Command) (any, error) { panic("no") }}
	if err := rt.Register(m); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Send(context.Background(), "p", Command{Name: "go"}); !errors.Is(err, ErrHandlerPanic) {
		t.Errorf("got %v, want ErrHandlerPanic", err)
	}
}

// A handler may register and unregister modules.
func TestRuntimeReentrant(t *testing.T) {
	b := New()
	rt := NewRuntime(b)
	late := &declared{recorder: recorder{name: "late"}, sels: []Selector{Prefix("x/")}}
	var errs []error
	starter := &declared{recorder: recorder{name: "starter"}, pats: []string{"start"}}
	if err := rt.Register(starter); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe("start", ModuleFuncs{ModuleName: "hook", Event: func(Event) error {
		errs = append(errs, rt.Register(late), b.Publish("x/y.z", nil), rt.Unregister("late"))
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("start", nil); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Errorf("in handler: got %v, want nil", err)
		}
	}
	if got := late.artifactKeys(); !sameStrings(got, []string{"x/y.z"}) {
		t.Errorf("got %v, want [x/y.z]", got)
	}
}
