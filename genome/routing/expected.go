package routing

// expectedCache is the Expected policy: evict the resident expert whose
// next use is expected farthest away, given what a router's draws let
// one know without seeing them. Decoding visits the MoE layers in a
// cycle, one visit per token, so an expert of layer l next gets a chance
// when the cycle comes back to l — d visits from now, 0 < d ≤ L — and
// then at each later visit with some probability p, the expected wait
// being d + L·(1/p − 1). Ranking by d/L + 1/p orders the same way.
//
// p is the larger of two estimates: the expert's share of its layer's
// visits over the whole trace (its frequency, given in advance: the one
// thing this policy knows that an online one would have to learn), and
// how often experts last used a given number of visits ago are used at
// the next visit, learned as the trace goes (real routing reuses an
// expert on the next token with probability 0.25-0.45, then falls back
// towards its base rate). The experts of the routing being paged in are
// never victims.
type expectedCache struct {
	cost      costs
	limit     int64
	used      int64
	layers    int
	experts   int
	resident  []bool
	held      []int32 // the resident pages, unordered
	where     []int32 // index of each resident page in held
	last      []int32 // token of each page's last use, -1 before the first
	freq      []float64
	tok       []int32 // the token of each access of the stream
	keys      []int32 // the stream
	reuse     [maxAge + 2][2]float64
	curTok    int32
	curLayer  int
	visitSeen []int32 // the routing of the visit at hand
}

// maxAge is how many visits back reuse is learned for; older ones count
// as maxAge+1.
const maxAge = 8

func newExpected(w *Workload, cost costs, limit int64) *expectedCache {
	c := &expectedCache{cost: cost, limit: limit, layers: w.layers, experts: w.experts,
		resident: make([]bool, w.pages), where: make([]int32, w.pages), last: make([]int32, w.pages),
		freq: make([]float64, w.pages), tok: w.tok, keys: w.keys, curTok: -1, curLayer: -1}
	for i := range c.last {
		c.last[i] = -1
	}
	for _, k := range w.keys {
		c.freq[k]++
	}
	if n := w.tokens; n > 0 {
		for i := range c.freq {
			c.freq[i] /= float64(n)
		}
	}
	for a := range c.reuse {
		c.reuse[a] = [2]float64{1, 10} // a prior of 0.1 until counted
	}
	return c
}

func (c *expectedCache) access(p int32, i int) (bool, error) {
	layer, tok := int(p)/c.experts, c.tok[i]
	if tok != c.curTok || layer != c.curLayer {
		c.endVisit()
		c.curTok, c.curLayer = tok, layer
		// The visit's whole routing is known when its first expert is
		// paged in (the router has run), as it is to engine.ExpertPager.
		for j := i; j < len(c.keys) && c.tok[j] == tok && int(c.keys[j])/c.experts == layer; j++ {
			c.visitSeen = append(c.visitSeen, c.keys[j])
		}
	}
	if c.resident[p] {
		return true, nil
	}
	cp := c.cost.of(p)
	if cp > c.limit {
		return false, nil
	}
	for c.used+cp > c.limit {
		v := c.victim()
		if v < 0 {
			return false, nil
		}
		c.drop(v)
	}
	c.resident[p] = true
	c.where[p] = int32(len(c.held))
	c.held = append(c.held, p)
	c.used += cp
	return false, nil
}

// endVisit learns from the visit just ended: for every expert of its
// layer, whether one last used a visits ago was used again.
func (c *expectedCache) endVisit() {
	if c.curLayer < 0 {
		return
	}
	base := int32(c.curLayer * c.experts)
	for e := range int32(c.experts) {
		q := base + e
		if c.last[q] < 0 {
			continue
		}
		a := min(int(c.curTok-c.last[q]), maxAge+1)
		c.reuse[a][1]++
	}
	for _, q := range c.visitSeen {
		if c.last[q] >= 0 {
			c.reuse[min(int(c.curTok-c.last[q]), maxAge+1)][0]++
		}
		c.last[q] = c.curTok
	}
	c.visitSeen = c.visitSeen[:0]
}

// victim returns the resident page to evict, or -1 when only the visit's
// own experts are resident.
func (c *expectedCache) victim() int32 {
	best, bestKey := int32(-1), -1.0
	for _, q := range c.held {
		ql := int(q) / c.experts
		if ql == c.curLayer && c.usedNow(q) {
			continue
		}
		// Visits of ql from now: after the current layer this token, or
		// the next token.
		d := (ql - c.curLayer + c.layers) % c.layers
		if d == 0 {
			d = c.layers
		}
		// The token of ql's latest visit, and so the age its next visit
		// will see.
		visit := c.curTok
		if ql > c.curLayer {
			visit--
		}
		p := c.freq[q]
		// Past maxAge visits the expert is at its base rate, which its
		// own frequency says better than the average over all experts.
		if c.last[q] >= 0 {
			if a := int(visit-c.last[q]) + 1; a >= 1 && a <= maxAge {
				p = max(p, c.reuse[a][0]/c.reuse[a][1])
			}
		}
		key := float64(d)/float64(c.layers) + 1/max(p, 1e-6)
		if key > bestKey {
			best, bestKey = q, key
		}
	}
	return best
}

// usedNow reports whether the visit at hand routes to q.
func (c *expectedCache) usedNow(q int32) bool {
	for _, x := range c.visitSeen {
		if x == q {
			return true
		}
	}
	return false
}

func (c *expectedCache) drop(q int32) {
	i := c.where[q]
	last := c.held[len(c.held)-1]
	c.held[i], c.where[last] = last, i
	c.held = c.held[:len(c.held)-1]
	c.resident[q] = false
	c.used -= c.cost.of(q)
}
