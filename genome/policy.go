package genome

import "fmt"

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
	}
	return fmt.Sprintf("EvictionPolicy(%d)", uint8(p))
}

// CanonicalPolicy returns the policy tier r uses. The table, and why:
//
//	tier    policy        why
//	Fast    sampled LFU   smallest and dearest to refill (a PCIe copy per miss); MoE routing is
//	                      skewed, so the experts the router picks most often earn device memory.
//	                      Sampling keeps eviction O(sample), not O(pages), on the hottest tier.
//	Warm    LRU           pinned RAM holds the working set of the current requests; consecutive
//	                      tokens reuse the same experts, so recency predicts the next access, and
//	                      exact LRU over a few hundred locked pages is cheap at eviction time.
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
		return PolicyLRU
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
