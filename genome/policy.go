package genome

import (
	"fmt"
	"math"
)

// EvictionPolicy is how a tier picks victims when it is full. Following
// dgraph-io/ristretto's policy.go, admission is separate from eviction and
// cost is in bytes: a tier first decides whether an incoming page may enter
// (admission), then evicts pages until the incoming page's bytes fit
// (eviction). Access samples are counters on the page updated with atomics;
// they may race with eviction and be lost, and they never block PageIn.
type EvictionPolicy uint8

// The policies.
const (
	PolicyNone       EvictionPolicy = iota // the tier never evicts (it is the backing store)
	PolicyLRU                              // evict the least recently accessed page (exact, scanned at eviction time)
	PolicySampledLFU                       // evict the least frequently accessed of a small random sample; frequency gates admission of demoted pages
	PolicyCycle                            // evict the MoE expert whose next use is expected farthest away in the layers' cycle; other pages by LRU, after the experts
)

// String returns the lower-case name of the policy.
func (p EvictionPolicy) String() string {
	switch p {
	case PolicyNone:
		return "none"
	case PolicyLRU:
		return "lru"
	case PolicySampledLFU:
		return "sampled-lfu"
	case PolicyCycle:
		return "cycle"
	}
	return fmt.Sprintf("EvictionPolicy(%d)", uint8(p))
}

// CanonicalPolicy returns the policy tier r uses. The table, and why:
//
//	tier    policy        why
//	Fast    sampled LFU   smallest and dearest to refill (a PCIe copy per miss); MoE routing is
//	                      skewed, so the experts the router picks most often earn device memory.
//	                      Sampling keeps eviction O(sample), not O(pages), on the hottest tier.
//	Warm    cycle         pinned RAM holds the working set of the current requests. A decode
//	                      visits the MoE layers in turn, so LRU would evict the layer it is about
//	                      to reach; cycle evicts the expert whose next use is expected farthest
//	                      away (its layer's distance in the cycle, its learned reuse and
//	                      frequency: cycle.go), and other pages by exact LRU once no expert is
//	                      left. An exact scan over a few hundred locked pages is cheap.
//	Bench   sampled LFU   the page cache is large and everything evicted from Warm passes through
//	                      it; frequency-gated admission (a demoted page enters only if it was used
//	                      at least as often as the victims it would displace) keeps one-off pages
//	                      of a single prompt from flushing pages every prompt uses.
//	Cold    none          disk holds every page of every file; nothing is ever evicted from it.
//	Frozen  none          the archive is written only by an explicit PageOut to Frozen.
func CanonicalPolicy(r TierRole) EvictionPolicy {
	switch r {
	case TierFast, TierBench:
		return PolicySampledLFU
	case TierWarm:
		return PolicyCycle
	}
	return PolicyNone
}

// lfuSample is how many candidates sampled LFU looks at per victim, as in
// ristretto (lfuSample = 5).
const lfuSample = 5

// pickVictim returns the candidate policy p would evict first, or nil when
// cands is empty. Candidates are never pinned. Go's randomized map iteration
// makes the first lfuSample entries a sample, as ristretto does.
// Caller holds m.mu (read or write).
func pickVictim(p EvictionPolicy, cands map[*pageState]struct{}) *pageState {
	if p == PolicyCycle {
		return pickCycleVictim(cands)
	}
	var best *pageState
	n := 0
	for st := range cands {
		switch p {
		case PolicySampledLFU:
			if best == nil || lfuLess(st, best) {
				best = st
			}
			if n++; n >= lfuSample {
				return best
			}
		default: // LRU, and the order None falls back to when asked
			if best == nil || st.lastAccess.Load() < best.lastAccess.Load() {
				best = st
			}
		}
	}
	return best
}

// pickCycleVictim is pickVictim for PolicyCycle: the expert with the
// longest expected wait (the least recently used of equals), else the
// least recently used other page. It holds each cycle's lock across the
// run of its pages, not once per page.
func pickCycleVictim(cands map[*pageState]struct{}) *pageState {
	var best, other *pageState
	bestWait := math.Inf(-1)
	var held *cycleState
	for st := range cands {
		if st.cyc == nil {
			if other == nil || st.lastAccess.Load() < other.lastAccess.Load() {
				other = st
			}
			continue
		}
		if st.cyc != held {
			if held != nil {
				held.mu.Unlock()
			}
			held = st.cyc
			held.mu.Lock()
		}
		w := held.wait(st)
		if best == nil || w > bestWait || w == bestWait && st.lastAccess.Load() < best.lastAccess.Load() {
			best, bestWait = st, w
		}
	}
	if held != nil {
		held.mu.Unlock()
	}
	if best != nil {
		return best
	}
	return other
}

// lfuLess orders by frequency, then by age.
func lfuLess(a, b *pageState) bool {
	fa, fb := a.hits.Load(), b.hits.Load()
	if fa != fb {
		return fa < fb
	}
	return a.lastAccess.Load() < b.lastAccess.Load()
}

// admitDemoted is sampled LFU's admission rule for a page pushed down from
// the tier above: it enters only if it is used at least as often as the
// least-used victim it would displace. A rejected page skips the tier.
func admitDemoted(p EvictionPolicy, incoming *pageState, victims []*pageState) bool {
	if p != PolicySampledLFU || len(victims) == 0 {
		return true
	}
	f := incoming.hits.Load()
	for _, v := range victims {
		if v.hits.Load() > f {
			return false
		}
	}
	return true
}
