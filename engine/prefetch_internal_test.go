package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/strata-llm/strata/llama"
)

// TestTopKAndDot checks the prediction's arithmetic against a plain sort
// and a plain loop.
func TestTopKAndDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ experts, used, embd int }{{8, 2, 128}, {64, 4, 2049}, {5, 5, 3}, {16, 1, 7}} {
		p := &Prefetcher{nExpert: tc.experts, nUsed: tc.used}
		s := &prefetchState{scores: make([]float32, tc.experts), top: make([]int, 0, tc.used)}
		for range 50 {
			a, b := make([]float32, tc.embd), make([]float32, tc.embd)
			var want float64
			for i := range a {
				a[i], b[i] = r.Float32()*2-1, r.Float32()*2-1
				want += float64(a[i]) * float64(b[i])
			}
			if got := float64(dot(a, b)); got-want > 1e-3 || want-got > 1e-3 {
				t.Fatalf("dot of %d: got %v, want %v", tc.embd, got, want)
			}
			for e := range s.scores {
				s.scores[e] = float32(r.IntN(20)) // ties too
			}
			got := slices.Clone(p.topK(s))
			order := make([]int, tc.experts)
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(x, y int) int {
				switch {
				case s.scores[x] > s.scores[y]:
					return -1
				case s.scores[x] < s.scores[y]:
					return 1
				}
				return 0
			})
			if u := slices.Compact(slices.Sorted(slices.Values(got))); len(u) != len(got) {
				t.Fatalf("topK: got %v, an expert twice", got)
			}
			if len(got) != tc.used {
				t.Fatalf("topK of %d: got %d experts, want %d", tc.experts, len(got), tc.used)
			}
			for i, e := range got {
				if s.scores[e] != s.scores[order[i]] {
					t.Fatalf("topK %v of scores %v: place %d holds %v, want %v", got, s.scores, i, s.scores[e], s.scores[order[i]])
				}
			}
		}
	}
}

// TestPagerExplain: a decode the pager aborted carries the paging error
// that stopped it; other errors, and aborts with no paging error, pass
// through unchanged.
func TestPagerExplain(t *testing.T) {
	p := &ExpertPager{}
	aborted := fmt.Errorf("decode: %w", llama.ErrAborted)
	if got := p.Explain(aborted); got != aborted {
		t.Errorf("no paging error: got %v", got)
	}
	cause := errors.New("genome: tier warm full")
	p.fail(cause)
	got := p.Explain(aborted)
	if !errors.Is(got, cause) || !errors.Is(got, llama.ErrAborted) {
		t.Errorf("got %v, want both the paging error and ErrAborted", got)
	}
	other := errors.New("kv cache full")
	if got := p.Explain(other); got != other {
		t.Errorf("an error that is no abort: got %v", got)
	}
}
