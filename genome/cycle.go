package genome

import (
	"math"
	"sync"
)

// cycleState is what PolicyCycle knows about one artifact's MoE experts.
// Decoding visits the MoE layers in a cycle, one visit per token (per
// step of a batch), so an expert of layer l next gets a chance when the
// cycle comes back to l, d visits from now (0 < d ≤ L), and then at each
// later visit with some probability p: its expected wait is
// d + L·(1/p − 1) layer visits, and ranking by d/L + 1/p orders the same
// way. LRU, by contrast, evicts the layer the cycle is about to reach.
//
// p is the larger of two estimates learned as the experts are paged in:
// the expert's share of its layer's visits so far, and how often an
// expert last used a visits ago is used at the next visit (real routing
// reuses a token's experts on the next token with probability 0.25-0.45,
// then falls back towards the base rate). The layers, their order and
// the visits are learned from the accesses too: a visit is a run of
// accesses to one layer's experts, as engine.ExpertPager makes them.
// Decodes of several contexts interleaving on one artifact blur the
// visits; the ranking then degrades towards frequency, never into an
// error.
//
// All fields, and the cycle fields of every page that points here, are
// guarded by mu: an access updates them on PageIn's fast path, under
// Local.mu's read lock only.
type cycleState struct {
	mu     sync.Mutex
	pos    []int32  // by layer number: position among the layers seen, -1 if unseen
	seen   []uint32 // the layers seen, ascending
	visits []int64  // by layer number: visits so far, the current one included
	cur    int32    // the layer being visited, -1 before the first access
	// lastIn[layer][v%reuseRing] counts the layer's experts whose latest
	// use was visit v, for the last maxReuseAge visits.
	lastIn [][reuseRing]int64
	// reuse[a] is {used again, had the chance} for experts last used a
	// visits before, with a prior of 0.1 until counted.
	reuse [maxReuseAge + 1][2]float64
}

// maxReuseAge is how many visits back reuse is learned for; past it an
// expert's own frequency estimates it.
const (
	maxReuseAge = 8
	reuseRing   = maxReuseAge + 1
)

func newCycleState() *cycleState {
	c := &cycleState{cur: -1}
	for a := range c.reuse {
		c.reuse[a] = [2]float64{1, 10}
	}
	return c
}

// cycleFields are a page's samples for PolicyCycle, guarded by its
// cycleState's mu.
type cycleFields struct {
	cyc       *cycleState // nil unless the page is an expert
	lastVisit int64       // the layer's visit of the latest use, 0 before the first
	uses      int64       // visits that used it
}

// enter starts a visit of layer, unless it is the one being visited. A
// fault calls it before making room, so that the victims are ranked from
// where the cycle is now.
func (c *cycleState) enter(layer int) {
	c.mu.Lock()
	c.enterLocked(layer)
	c.mu.Unlock()
}

func (c *cycleState) enterLocked(layer int) {
	if layer >= len(c.pos) {
		c.grow(layer)
	}
	if c.pos[layer] < 0 {
		c.addLayer(layer)
	}
	if int32(layer) == c.cur {
		return
	}
	c.cur = int32(layer)
	c.visits[layer]++
	v := c.visits[layer]
	ring := &c.lastIn[layer]
	for a := int64(1); a <= maxReuseAge && a < v; a++ {
		c.reuse[a][1] += float64(ring[(v-a)%reuseRing])
	}
	ring[v%reuseRing] = 0 // it held visit v-reuseRing, now past counting
}

// touch records an access to expert page st.
func (c *cycleState) touch(st *pageState) {
	layer := int(st.ref.Offset.Layer)
	c.mu.Lock()
	c.enterLocked(layer)
	v := c.visits[layer]
	if last := st.lastVisit; last != v {
		ring := &c.lastIn[layer]
		if a := v - last; last > 0 && a <= maxReuseAge {
			c.reuse[a][0]++
			ring[last%reuseRing]--
		}
		ring[v%reuseRing]++
		st.lastVisit = v
		st.uses++
	}
	c.mu.Unlock()
}

func (c *cycleState) grow(layer int) {
	n := layer + 1
	for len(c.pos) < n {
		c.pos = append(c.pos, -1)
		c.visits = append(c.visits, 0)
		c.lastIn = append(c.lastIn, [reuseRing]int64{})
	}
}

// addLayer puts layer into the cycle's order. Layers appear in the first
// token's pass, so this runs a few dozen times per artifact.
func (c *cycleState) addLayer(layer int) {
	i := 0
	for i < len(c.seen) && c.seen[i] < uint32(layer) {
		i++
	}
	c.seen = append(c.seen, 0)
	copy(c.seen[i+1:], c.seen[i:])
	c.seen[i] = uint32(layer)
	for p, l := range c.seen {
		c.pos[l] = int32(p)
	}
}

// wait returns st's expected wait until its next use, in cycles of the
// layers: d/L + 1/p as above. The layer being visited is at distance 0:
// its experts the visit has used are being read now and go last (-Inf),
// and the others may still be asked for by this visit (the router's
// choices arrive one page-in at a time), so they rank as due now; once
// the cycle moves on they are a whole cycle away. An expert never used
// has nothing that says it comes back (+Inf). Caller holds c.mu (a victim
// scan holds it across the run of its pages).
func (c *cycleState) wait(st *pageState) float64 {
	layer := int(st.ref.Offset.Layer)
	if layer >= len(c.pos) || c.pos[layer] < 0 || c.cur < 0 || st.lastVisit == 0 {
		return math.Inf(1)
	}
	L := int32(len(c.seen))
	d := (c.pos[layer] - c.pos[c.cur] + L) % L
	v := c.visits[layer]
	if d == 0 && st.lastVisit == v {
		return math.Inf(-1)
	}
	// The next visit of the layer is v+1, or this one (d == 0).
	next := v + 1
	if d == 0 {
		next = v
	}
	p := float64(st.uses) / float64(v)
	if a := next - st.lastVisit; a <= maxReuseAge {
		p = max(p, c.reuse[a][0]/c.reuse[a][1])
	}
	return float64(d)/float64(L) + 1/max(p, 1e-6)
}
