package routing

import (
	"math/rand/v2"
	"testing"
)

// synth builds a trace of tokens tokens over layers MoE layers: each
// token keeps each of the previous token's experts with probability
// reuse and draws the rest from a Zipf distribution of exponent skew
// (skew 0: uniform), without repeats.
func synth(tb testing.TB, tokens, layers, experts, used int, skew, reuse float64, seed uint64) *Trace {
	tb.Helper()
	h := Header{Arch: "synthetic", Model: "synth", Blocks: layers, Experts: experts, Used: used}
	for l := range layers {
		h.Layers = append(h.Layers, Layer{Index: l, ExpertBytes: 1 << 20})
	}
	t, err := NewTrace(h)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	var zipf *rand.Zipf
	if skew > 1 {
		zipf = rand.NewZipf(r, skew, 1, uint64(experts-1))
	}
	perm := make([][]int32, layers) // a fixed shuffle per layer, so hot experts differ by layer
	for l := range perm {
		perm[l] = make([]int32, experts)
		for i, p := range r.Perm(experts) {
			perm[l][i] = int32(p)
		}
	}
	prev := make([][]int32, layers)
	row := make([]int32, 0, layers*used)
	for range tokens {
		row = row[:0]
		for l := range layers {
			start := len(row)
			for _, e := range prev[l] {
				if r.Float64() < reuse {
					row = append(row, e)
				}
			}
			for len(row)-start < used {
				var e int32
				if zipf != nil {
					e = perm[l][zipf.Uint64()]
				} else {
					e = int32(r.IntN(experts))
				}
				if !has(row[start:], e) {
					row = append(row, e)
				}
			}
			prev[l] = append(prev[l][:0], row[start:]...)
		}
		if err := t.Append(row); err != nil {
			tb.Fatal(err)
		}
	}
	return t
}

func has(s []int32, e int32) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

// sequence is a trace of one layer, one expert per token: its access
// stream is seq itself.
func sequence(tb testing.TB, experts int, seq ...int32) *Trace {
	tb.Helper()
	t, err := NewTrace(Header{Blocks: 1, Experts: experts, Used: 1, Layers: []Layer{{Index: 0, ExpertBytes: 100}}})
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range seq {
		if err := t.Append([]int32{e}); err != nil {
			tb.Fatal(err)
		}
	}
	return t
}
