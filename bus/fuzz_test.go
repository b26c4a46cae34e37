package bus

import (
	"regexp"
	"strings"
	"testing"
)

// The reference implementation: regular expressions for validity and a
// recursive matcher over strings.Split, deliberately unlike the trie.
var (
	refSeg      = `[A-Za-z0-9_-]+`
	refName     = regexp.MustCompile(`^` + refSeg + `(:` + refSeg + `)*$`)
	refPattern  = regexp.MustCompile(`^(` + refSeg + `|\*)(:(` + refSeg + `|\*))*(:>)?$|^>$`)
	refArtifact = regexp.MustCompile(`^` + refSeg + `/` + refSeg + `\.` + refSeg + `$`)
	refPrefix   = regexp.MustCompile(`^([A-Za-z0-9_-]*|` + refSeg + `/[A-Za-z0-9_-]*|` + refSeg + `/` + refSeg + `\.[A-Za-z0-9_-]*)$`)
)

func refMatch(pat, name []string) bool {
	switch {
	case len(pat) == 0:
		return len(name) == 0
	case pat[0] == ">":
		return len(name) > 0
	case len(name) == 0:
		return false
	case pat[0] == "*" || pat[0] == name[0]:
		return refMatch(pat[1:], name[1:])
	}
	return false
}

// splitInputs turns fuzz input into at most 8 lines.
func splitInputs(s string) []string {
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		lines = lines[:8]
	}
	return lines
}

// checkDelivery publishes key and compares who received it with want.
func checkDelivery(t *testing.T, b *MessageBus, key string, recs []*recorder, want []bool) {
	t.Helper()
	for _, r := range recs {
		r.events, r.artifacts = nil, nil
	}
	validKey := refName.MatchString(key) || refArtifact.MatchString(key)
	err := b.Publish(key, nil)
	if (err == nil) != validKey {
		t.Fatalf("Publish(%q): got error %v, want valid=%v", key, err, validKey)
	}
	for i, r := range recs {
		got := len(r.events)+len(r.artifacts) > 0
		if got != want[i] {
			t.Fatalf("subscription %d (%q), key %q: delivered %v, want %v", i, r.name, key, got, want[i])
		}
		if n := len(r.events) + len(r.artifacts); n > 1 {
			t.Fatalf("subscription %d: got %d deliveries, want at most 1", i, n)
		}
	}
}

func FuzzEventMatch(f *testing.F) {
	f.Add("a:*:c\na:>\n>\n*\na:b:c", "a:b:c")
	f.Add("data:users:created\ndata:*\n*:*:*", "data:users:created")
	f.Add("a::b\n>:a\na*", "a:b")
	f.Add("x", "genome/working_set.page_fault")
	f.Fuzz(func(t *testing.T, patterns, name string) {
		b := New()
		pats := splitInputs(patterns)
		var recs []*recorder
		var subs []*Subscription
		for _, p := range pats {
			r := &recorder{name: p}
			s, err := b.Subscribe(p, r)
			if (err == nil) != refPattern.MatchString(p) {
				t.Fatalf("Subscribe(%q): got error %v, want valid=%v", p, err, refPattern.MatchString(p))
			}
			recs = append(recs, r)
			subs = append(subs, s)
		}
		want := func() []bool {
			w := make([]bool, len(pats))
			for i, p := range pats {
				w[i] = subs[i] != nil && refName.MatchString(name) && refMatch(strings.Split(p, ":"), strings.Split(name, ":"))
			}
			return w
		}
		checkDelivery(t, b, name, recs, want())
		checkDelivery(t, b, name, recs, want()) // from the cache
		for i := 0; i < len(subs); i += 2 {
			if subs[i] != nil {
				subs[i].Unsubscribe()
				subs[i] = nil
			}
		}
		checkDelivery(t, b, name, recs, want())
	})
}

func FuzzArtifactMatch(f *testing.F) {
	f.Add("genome/\ngenome/working_set.\ng\n\ncognition/", "genome/working_set.page_fault", uint8(0))
	f.Add("a/b.c\na/b.cd\na/b\na", "a/b.cd", uint8(5))
	f.Add("x//\ndata:", "data:x", uint8(255))
	f.Fuzz(func(t *testing.T, selectors, key string, exactMask uint8) {
		b := New()
		lines := splitInputs(selectors)
		var recs []*recorder
		var subs []*Subscription
		var exact []bool
		for i, s := range lines {
			isExact := exactMask&(1<<i) != 0
			sel, valid := Prefix(s), refPrefix.MatchString(s)
			if isExact {
				sel, valid = Exact(s), refArtifact.MatchString(s)
			}
			r := &recorder{name: s}
			sub, err := b.SubscribeArtifact(sel, r)
			if (err == nil) != valid {
				t.Fatalf("SubscribeArtifact(%v): got error %v, want valid=%v", sel, err, valid)
			}
			recs, subs, exact = append(recs, r), append(subs, sub), append(exact, isExact)
		}
		want := func() []bool {
			w := make([]bool, len(lines))
			for i, s := range lines {
				match := strings.HasPrefix(key, s)
				if exact[i] {
					match = key == s
				}
				w[i] = subs[i] != nil && refArtifact.MatchString(key) && match
			}
			return w
		}
		checkDelivery(t, b, key, recs, want())
		checkDelivery(t, b, key, recs, want())
		for i := 1; i < len(subs); i += 2 {
			if subs[i] != nil {
				subs[i].Unsubscribe()
				subs[i] = nil
			}
		}
		checkDelivery(t, b, key, recs, want())
	})
}
