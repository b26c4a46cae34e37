package bus

import (
	"errors"
	"testing"
)

func TestEventMatching(t *testing.T) {
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{"data:users:created", "data:users:created", true},
		{"data:users:created", "data:users:deleted", false},
		{"data:users:created", "data:users", false},
		{"data:users", "data:users:created", false},
		{"data:*:created", "data:users:created", true},
		{"data:*:created", "data:orders:created", true},
		{"data:*:created", "data:created", false},
		{"data:*:created", "data:a:b:created", false},
		{"*", "tick", true},
		{"*", "a:b", false},
		{"*:*", "a:b", true},
		{"*:*", "a", false},
		{"data:>", "data:users", true},
		{"data:>", "data:users:created:now", true},
		{"data:>", "data", false}, // ">" needs at least one segment
		{">", "a", true},
		{">", "a:b:c", true},
		{"*:>", "a", false},
		{"*:>", "a:b", true},
		{"data:*:>", "data:users:created", true},
		{"data:*:>", "data:users", false},
		{"a:b:c", "a:b:c:d", false},
		{"a:*:c", "a:b:d", false},
		{"a:b", "A:b", false}, // case matters
		{"tick", "tick", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"|"+tt.name, func(t *testing.T) {
			b := New()
			r := &recorder{name: "r"}
			mustSubscribe(t, b, tt.pattern, r)
			if err := b.Publish(tt.name, 1); err != nil {
				t.Fatalf("Publish(%q): %v", tt.name, err)
			}
			got := len(r.eventNames()) == 1
			if got != tt.want {
				t.Errorf("pattern %q, name %q: delivered %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
			if len(r.artifactKeys()) != 0 {
				t.Errorf("got artifacts %v for an event, want none", r.artifactKeys())
			}
		})
	}
}

func TestArtifactMatching(t *testing.T) {
	tests := []struct {
		sel  Selector
		key  string
		want bool
	}{
		{Exact("genome/working_set.page_fault"), "genome/working_set.page_fault", true},
		{Exact("genome/working_set.page_fault"), "genome/working_set.page_faults", false},
		{Exact("genome/working_set.page_fault"), "genome/working_set.eviction", false},
		{Prefix("cognition/"), "cognition/recall.hit", true},
		{Prefix("cognition/"), "cognitionx/a.b", false},
		{Prefix("cognition"), "cognitionx/a.b", true}, // whole-string prefix, by design
		{Prefix("genome/working_set."), "genome/working_set.eviction", true},
		{Prefix("genome/working_set."), "genome/working_sets.eviction", false},
		{Prefix("genome/working_set.page_fault"), "genome/working_set.page_fault", true},
		{Prefix(""), "any/key.here", true},
		{Prefix("inference/llm.first"), "inference/llm.first_token", true},
		{Prefix("inference/llm.first"), "inference/llm.complete", false},
		{Prefix("g"), "genome/working_set.page_fault", true},
		{Prefix("h"), "genome/working_set.page_fault", false},
	}
	for _, tt := range tests {
		t.Run(tt.sel.String()+"|"+tt.key, func(t *testing.T) {
			b := New()
			r := &recorder{name: "r"}
			mustSubscribeArtifact(t, b, tt.sel, r)
			// Unrelated selectors make the radix tree branch and split.
			for _, p := range []string{"gen/", "genomes/", "inference/", "cognition/recall.", "a/b.c"} {
				mustSubscribeArtifact(t, b, Prefix(p), &recorder{name: p})
			}
			if err := b.Publish(tt.key, 1); err != nil {
				t.Fatalf("Publish(%q): %v", tt.key, err)
			}
			got := len(r.artifactKeys()) == 1
			if got != tt.want {
				t.Errorf("%v, key %q: delivered %v, want %v", tt.sel, tt.key, got, tt.want)
			}
		})
	}
}

// An artifact key is never fed through the colon matcher, and an event name
// never reaches artifact selectors, even the catch-all ones.
func TestKeyShapesAreDisjoint(t *testing.T) {
	b := New()
	r := &recorder{name: "r"}
	mustSubscribe(t, b, ">", r)
	mustSubscribeArtifact(t, b, Prefix(""), r)
	for _, key := range []string{"genome/working_set.page_fault", "tick", "a:b:c"} {
		if err := b.Publish(key, nil); err != nil {
			t.Fatalf("Publish(%q): %v", key, err)
		}
	}
	if got, want := r.eventNames(), []string{"tick", "a:b:c"}; !sameStrings(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}
	if got, want := r.artifactKeys(), []string{"genome/working_set.page_fault"}; !sameStrings(got, want) {
		t.Errorf("artifacts: got %v, want %v", got, want)
	}
}

func TestInvalidKeys(t *testing.T) {
	tests := []struct {
		key    string
		pos    int
		reason string
	}{
		{"", 0, "empty"},
		{"a::b", 2, "empty segment"},
		{":a", 0, "empty segment"},
		{"a:", 2, "empty segment"},
		{"a:*", 2, "wildcard in a published name"},
		{"a:>", 2, "wildcard in a published name"},
		{"a b", 1, "bad character ' '"},
		{"a.b", 1, "'/' and '.' belong to artifact keys, not event names"},
		{"genome/working_set", 18, "missing '.' between surface and event"},
		{"genome/working_set.", 19, "empty event after '.'"},
		{"/a.b", 0, "empty module before '/'"},
		{"a/.b", 2, "empty surface before '.'"},
		{"a/b.c/d", 5, "more than one '/'"},
		{"a/b.c.d", 5, "more than one '.' after the '/'"},
		{"a.x/b.c", 1, "'.' before the '/' that ends the module"},
		{"a:b/c.d", 1, "':' belongs to event names and patterns, not artifact keys"},
		{"a/b.c\n", 5, `bad character '\x0a'`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := New().Publish(tt.key, nil)
			var ke *KeyError
			if !errors.As(err, &ke) || !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("Publish(%q): got %v, want a *KeyError wrapping ErrInvalidKey", tt.key, err)
			}
			if ke.Pos != tt.pos || ke.Reason != tt.reason {
				t.Errorf("Publish(%q): got pos %d %q, want pos %d %q", tt.key, ke.Pos, ke.Reason, tt.pos, tt.reason)
			}
		})
	}
}

func TestInvalidPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		reason  string
	}{
		{"", "empty"},
		{"a::b", "empty segment"},
		{"a:>:b", `">" must be the last segment`},
		{">:a", `">" must be the last segment`},
		{"a:b*", "wildcard must be a whole segment"},
		{"a:>x", "wildcard must be a whole segment"},
		{"a/b.c", "'/' and '.' belong to artifact keys, not event names"},
		{"a:é", `bad character '\xc3'`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := New().Subscribe(tt.pattern, &recorder{})
			var ke *KeyError
			if !errors.As(err, &ke) || !errors.Is(err, ErrInvalidPattern) {
				t.Fatalf("Subscribe(%q): got %v, want a *KeyError wrapping ErrInvalidPattern", tt.pattern, err)
			}
			if ke.Reason != tt.reason {
				t.Errorf("Subscribe(%q): got reason %q, want %q", tt.pattern, ke.Reason, tt.reason)
			}
		})
	}
}

func TestInvalidSelectors(t *testing.T) {
	tests := []struct {
		sel  Selector
		want error
	}{
		{Selector{}, ErrInvalidSelector},
		{Exact(""), ErrInvalidKey},
		{Exact("genome/working_set"), ErrInvalidKey},
		{Exact("data:users"), ErrInvalidKey},
		{Prefix("a//"), ErrInvalidSelector},
		{Prefix("a/b.c."), ErrInvalidSelector},
		{Prefix("data:"), ErrInvalidSelector},
		{Prefix("a*"), ErrInvalidSelector},
	}
	for _, tt := range tests {
		t.Run(tt.sel.String(), func(t *testing.T) {
			_, err := New().SubscribeArtifact(tt.sel, &recorder{})
			if !errors.Is(err, tt.want) {
				t.Errorf("SubscribeArtifact(%v): got %v, want %v", tt.sel, err, tt.want)
			}
		})
	}
	if _, err := New().Subscribe("a", nil); !errors.Is(err, ErrNilModule) {
		t.Errorf("Subscribe(nil module): got %v, want ErrNilModule", err)
	}
}

func TestValidKeysAccepted(t *testing.T) {
	for _, key := range []string{
		KeyPageFault, KeyEviction, KeyAccessDenied, KeyLLMRequest, KeyLLMFirstToken,
		KeyLLMComplete, KeyResidencyFault, KeyAuditEntryRecorded,
		KeyRefusal, KeyGovernorOverride, KeyFederationPolicyDrift,
	} {
		if err := ValidArtifactKey(key); err != nil {
			t.Errorf("ValidArtifactKey(%q): got %v, want nil", key, err)
		}
		if err := New().Publish(key, nil); err != nil {
			t.Errorf("Publish(%q): got %v, want nil", key, err)
		}
	}
	for _, name := range []string{"a", "data:users:created", "A-b_9:x"} {
		if err := ValidEventName(name); err != nil {
			t.Errorf("ValidEventName(%q): got %v, want nil", name, err)
		}
	}
}
