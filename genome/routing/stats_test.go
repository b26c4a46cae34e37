package routing

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestStatsKnown(t *testing.T) {
	h := Header{Blocks: 3, Experts: 16, Used: 2, Layers: []Layer{{Index: 1}, {Index: 2}}}
	tr, err := NewTrace(h)
	if err != nil {
		t.Fatal(err)
	}
	// Layer 1: {0,1} {0,1} {2,3} {2,0}; layer 2 routes to 5 twice in
	// every token (one expert, counted once) and to 6 once.
	for _, row := range [][]int32{{0, 1, 5, 5}, {0, 1, 5, 5}, {2, 3, 5, 5}, {2, 0, 5, 6}} {
		if err := tr.Append(row); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		within int
		want   []LayerStats
	}{
		// Layer 1: counts 0:3 1:2 2:2 3:1, so the top eighth (2 of 16)
		// takes 5 of 8; reuse 2/2, 0/2, 1/2.
		// Layer 2: {5} {5} {5} {5,6}: 5 takes 4 of 5 and 6 the fifth;
		// reuse 1/1, 1/1, 1/2.
		{"all tokens", 0, []LayerStats{
			{Layer: 1, TopEighth: 5.0 / 8, Reuse: 0.5, Touched: 4.0 / 16, Distinct: 4},
			{Layer: 2, TopEighth: 1, Reuse: 2.5 / 3, Touched: 2.0 / 16, Distinct: 2},
		}},
		{"within 2", 2, []LayerStats{
			{Layer: 1, TopEighth: 5.0 / 8, Reuse: 0.5, Touched: 2.0 / 16, Distinct: 4},
			{Layer: 2, TopEighth: 1, Reuse: 2.5 / 3, Touched: 1.0 / 16, Distinct: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Stats(tr, tt.within)
			if s.Tokens != 4 || s.TopExperts != 2 {
				t.Fatalf("got %d tokens, top %d experts; want 4, 2", s.Tokens, s.TopExperts)
			}
			if tt.within == 0 && s.Within != DefaultWithin {
				t.Errorf("within: got %d, want %d", s.Within, DefaultWithin)
			}
			for i, w := range tt.want {
				g := s.Layers[i]
				if g.Layer != w.Layer || !near(g.TopEighth, w.TopEighth) || !near(g.Reuse, w.Reuse) || !near(g.Touched, w.Touched) || g.Distinct != w.Distinct {
					t.Errorf("layer %d: got %+v, want %+v", w.Layer, g, w)
				}
			}
			a, b := tt.want[0], tt.want[1]
			if !near(s.Mean.Reuse, (a.Reuse+b.Reuse)/2) || !near(s.Min.TopEighth, a.TopEighth) || !near(s.Max.TopEighth, b.TopEighth) || s.Min.Distinct != 2 || s.Max.Distinct != 4 || s.Mean.Layer != -1 {
				t.Errorf("aggregates: got mean %+v, min %+v, max %+v", s.Mean, s.Min, s.Max)
			}
		})
	}
}

// TestStatsSynthetic checks the statistics of routers whose answer is
// known in expectation: uniform (top eighth ≈ 1/8, reuse ≈ used/experts,
// all touched) and one that keeps most of its previous experts.
func TestStatsSynthetic(t *testing.T) {
	tests := []struct {
		name         string
		skew, reuse  float64
		top, reuseAt float64 // expected, ±0.03
		touchedMin   float64
	}{
		{"uniform", 0, 0, 1.0 / 8, 4.0 / 64, 1},
		{"sticky", 0, 0.8, 1.0 / 8, 0.8 + 0.2*4/64, 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Stats(synth(t, 20000, 2, 64, 4, tt.skew, tt.reuse, 11), 0)
			for _, l := range s.Layers {
				if math.Abs(l.TopEighth-tt.top) > 0.03 || math.Abs(l.Reuse-tt.reuseAt) > 0.03 || l.Touched < tt.touchedMin {
					t.Errorf("layer %d: got top eighth %.3f, reuse %.3f, touched %.3f; want %.3f, %.3f, ≥ %.2f", l.Layer, l.TopEighth, l.Reuse, l.Touched, tt.top, tt.reuseAt, tt.touchedMin)
				}
			}
		})
	}
	if s := Stats(synth(t, 0, 2, 8, 2, 0, 0, 1), 0); s.Tokens != 0 || s.Mean.TopEighth != 0 || s.Mean.Touched != 0 {
		t.Errorf("empty trace: got %+v, want zeros", s)
	}
}
