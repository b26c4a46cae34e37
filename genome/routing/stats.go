package routing

import (
	"math"
	"math/bits"
	"slices"
)

// DefaultWithin is the token horizon of LayerStats.Touched when Stats is
// given none: issue 9 asks that at least 75% of a layer's experts be
// touched within 300 tokens of English text.
const DefaultWithin = 300

// LayerStats are the routing statistics of one MoE layer, or their mean,
// minimum or maximum over the layers (Layer is then -1).
type LayerStats struct {
	// Layer is the model's layer number.
	Layer int
	// TopEighth is the share of the layer's routings (token × expert
	// choices) taken by its most-routed eighth of experts, rounded up
	// (8 of 64): 1/8 for a uniform router, 1 for one that only ever
	// uses an eighth of its experts.
	TopEighth float64
	// Reuse is the mean, over every token but the first, of the fraction
	// of the token's experts at this layer that the previous token also
	// chose at this layer.
	Reuse float64
	// Touched is the fraction of the layer's experts chosen at least once
	// within the first Within tokens (all tokens when the trace is
	// shorter).
	Touched float64
	// Distinct is the number of experts chosen at least once in the whole
	// trace; in the aggregates, its mean, minimum or maximum.
	Distinct float64
}

// TraceStats are a trace's routing statistics, per MoE layer and over
// the layers.
type TraceStats struct {
	Tokens     int
	Within     int // the horizon of Touched, in tokens
	TopExperts int // the experts that make up the top eighth
	Layers     []LayerStats
	// Mean, Min and Max are taken over Layers, each statistic on its own
	// (Min.Reuse and Min.Touched may come from different layers).
	Mean, Min, Max LayerStats
}

// Stats computes the routing statistics of t; within ≤ 0 means
// DefaultWithin. Duplicate ids in one token's routing of a layer count
// once. A trace of no tokens has all statistics zero.
func Stats(t *Trace, within int) TraceStats {
	if within <= 0 {
		within = DefaultWithin
	}
	s := TraceStats{Tokens: t.Tokens(), Within: within, TopExperts: (t.Experts + 7) / 8}
	words := (t.Experts + 63) / 64
	counts := make([]int64, t.Experts)
	cur, prev := make([]uint64, words), make([]uint64, words)
	ever := make([]uint64, words)
	for li, l := range t.Layers {
		clear(counts)
		clear(prev)
		clear(ever)
		var reuse float64
		touched := 0
		for tok := range s.Tokens {
			clear(cur)
			n := 0
			for _, e := range t.Routing(tok, li) {
				w, bit := e/64, uint64(1)<<(e%64)
				if cur[w]&bit != 0 {
					continue
				}
				cur[w] |= bit
				counts[e]++
				n++
			}
			if tok > 0 {
				same := 0
				for i := range cur {
					same += popcount(cur[i] & prev[i])
				}
				reuse += float64(same) / float64(n)
			}
			for i := range cur {
				ever[i] |= cur[i]
			}
			if tok == min(within, s.Tokens)-1 {
				for i := range ever {
					touched += popcount(ever[i])
				}
			}
			cur, prev = prev, cur
		}
		ls := LayerStats{Layer: l.Index, Touched: float64(touched) / float64(t.Experts)}
		for i := range ever {
			ls.Distinct += float64(popcount(ever[i]))
		}
		if s.Tokens > 1 {
			ls.Reuse = reuse / float64(s.Tokens-1)
		}
		var total, top int64
		for _, c := range counts {
			total += c
		}
		slices.SortFunc(counts, func(a, b int64) int { return int(b - a) })
		for _, c := range counts[:s.TopExperts] {
			top += c
		}
		if total > 0 {
			ls.TopEighth = float64(top) / float64(total)
		}
		s.Layers = append(s.Layers, ls)
	}
	s.Mean, s.Min, s.Max = aggregate(s.Layers)
	return s
}

// aggregate returns the mean, minimum and maximum of each statistic.
func aggregate(ls []LayerStats) (mean, lo, hi LayerStats) {
	mean, lo, hi = LayerStats{Layer: -1}, LayerStats{Layer: -1}, LayerStats{Layer: -1}
	if len(ls) == 0 {
		return
	}
	get := []func(*LayerStats) *float64{
		func(l *LayerStats) *float64 { return &l.TopEighth },
		func(l *LayerStats) *float64 { return &l.Reuse },
		func(l *LayerStats) *float64 { return &l.Touched },
		func(l *LayerStats) *float64 { return &l.Distinct },
	}
	for _, f := range get {
		sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
		for i := range ls {
			v := *f(&ls[i])
			sum, mn, mx = sum+v, min(mn, v), max(mx, v)
		}
		*f(&mean), *f(&lo), *f(&hi) = sum/float64(len(ls)), mn, mx
	}
	return
}

func popcount(x uint64) int { return bits.OnesCount64(x) }
