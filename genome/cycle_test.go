package genome

import (
	"math/rand/v2"
	"testing"
)

// TestPolicyCycleOnALoop: a decode that asks for the same two experts of
// each of 4 layers every token is a loop of 8 pages. In a Warm tier of 7,
// LRU evicts each page just before the loop comes back to it and never
// hits; PolicyCycle evicts the experts of the layer just left, whose next
// use is farthest away, and hits as Belady's MIN does, 6 accesses in 7 in
// steady state.
func TestPolicyCycleOnALoop(t *testing.T) {
	const layers, used, tokens = 4, 2, 200
	pg := int64(pageSize)
	for _, pol := range []EvictionPolicy{PolicyLRU, PolicyCycle} {
		s, err := NewPolicySim(TierNone, SimTier{TierWarm, 7 * pg})
		if err != nil {
			t.Fatal(err)
		}
		s.policies[TierWarm] = pol
		hits := 0
		for tok := range tokens {
			for l := range layers {
				for e := range used {
					a, err := s.AccessExpert(l*used+e, l, e, pg)
					if err != nil {
						t.Fatal(err)
					}
					if a.Hit && tok > 0 {
						hits++
					}
				}
			}
		}
		rate := float64(hits) / float64((tokens-1)*layers*used)
		t.Logf("%s: hit rate %.3f after the first token", pol, rate)
		switch {
		case pol == PolicyLRU && rate != 0:
			t.Errorf("LRU on a loop one page longer than the tier: hit rate %.3f, want 0", rate)
		case pol == PolicyCycle && rate < 0.8:
			t.Errorf("PolicyCycle on the loop: hit rate %.3f, want MIN's 6/7", rate)
		}
	}
}

// TestPolicyCycleRanks checks the order of the ranking directly: an
// expert the current visit uses goes last, one of the layer the decode is
// about to reach goes after one of the layer it just left, and a rarely
// used expert before a hot one of the same layer.
func TestPolicyCycleRanks(t *testing.T) {
	const layers, experts = 4, 8
	c := newCycleState()
	pages := make([]*pageState, layers*experts)
	for i := range pages {
		pages[i] = &pageState{ref: ExpertPage(ArtifactID{}, i/experts, i%experts)}
		pages[i].cyc = c
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Expert 0 of every layer on every token, one other at random.
	for range 50 {
		for l := range layers {
			c.touch(pages[l*experts])
			c.touch(pages[l*experts+1+r.IntN(experts-1)])
		}
	}
	// Now visiting layer 1 (the decode has asked for its expert 0).
	c.touch(pages[0*experts])
	c.touch(pages[1*experts])
	waitOf := func(st *pageState) float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.wait(st)
	}
	wait := func(l, e int) float64 { return waitOf(pages[l*experts+e]) }
	if w := wait(1, 0); w >= wait(2, 0) {
		t.Errorf("expert the visit uses waits %v, want less than any other", w)
	}
	if wait(2, 0) >= wait(0, 0) {
		t.Errorf("hot expert of the next layer waits %v, of the layer just left %v: want the next layer first", wait(2, 0), wait(0, 0))
	}
	var rare int
	for e := 1; e < experts; e++ {
		if pages[3*experts+e].lastVisit != c.visits[3] && (rare == 0 || pages[3*experts+e].uses < pages[3*experts+rare].uses) {
			rare = e
		}
	}
	if rare == 0 || wait(3, rare) <= wait(3, 0) {
		t.Errorf("rare expert (3,%d) waits %v, hot (3,0) %v: want the rare one longer", rare, wait(3, rare), wait(3, 0))
	}
	if w := waitOf(&pageState{ref: ExpertPage(ArtifactID{}, 2, 7), cycleFields: cycleFields{cyc: c}}); w <= wait(0, 0) {
		t.Errorf("never-used expert waits %v, want the longest", w)
	}
}
