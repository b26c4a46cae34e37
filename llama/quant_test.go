package llama_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

func rmse(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s / float64(len(a)))
}

// TestKQuantsAgainstGGML checks Strata's pure-Go encoders of the types a
// Q4_K_M file holds (Q4_K, Q5_K, Q6_K, and the fallbacks Q5_0, Q5_1 and
// Q8_0 for rows that are not whole super-blocks) against ggml itself:
// ggml's dequantizer (the one inference uses) reads Strata's blocks back to
// exactly what Strata's own decoder gives, and the error is no worse than
// ggml's reference quantizer's on the same data. ggml's C is compiled with
// FMA contraction (-O3 -march=native), so it rounds some K-quant sub-block
// fits differently (Q4_K and Q6_K about one block in twenty, Q5_K one in
// three; built without FMA, ggml agrees with Strata byte for byte):
// bit-exact K-quant blocks are not required, and the error may be worse by
// at most 1% on a data set (it is often better). The 32-value types have no
// fitted scales and must come out byte for byte as ggml's.
func TestKQuantsAgainstGGML(t *testing.T) {
	const n = 256 * 256
	r := rand.New(rand.NewPCG(1, 2))
	data := map[string][]float32{}
	gen := func(name string, f func() float64) {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(f())
		}
		data[name] = v
	}
	gen("gaussian", r.NormFloat64)
	gen("uniform", func() float64 { return r.Float64()*2 - 1 })
	gen("heavy-tailed", func() float64 { x := r.NormFloat64(); return x * x * x })
	gen("positive", func() float64 { return math.Abs(r.NormFloat64()) * 0.02 })
	gen("sparse", func() float64 {
		if r.IntN(8) == 0 {
			return r.NormFloat64()
		}
		return 0
	})
	gen("weights", func() float64 { return r.NormFloat64() * 0.02 }) // the scale of real weights

	for _, tc := range []struct {
		gt    gguf.Type
		exact bool // every block byte-identical to ggml's
	}{
		{gguf.TypeQ4_K, false}, {gguf.TypeQ5_K, false}, {gguf.TypeQ6_K, false},
		{gguf.TypeQ5_0, true}, {gguf.TypeQ5_1, true}, {gguf.TypeQ8_0, true},
	} {
		// gguf.Type and llama.GGMLType are both enum ggml_type.
		lt := llama.GGMLType(tc.gt)
		if !strings.EqualFold(lt.String(), tc.gt.String()) {
			t.Fatalf("type %d: ggml calls it %s, gguf %s", tc.gt, lt, tc.gt)
		}
		for name, src := range data {
			t.Run(tc.gt.String()+"/"+name, func(t *testing.T) {
				ours, err := gguf.Encode(nil, tc.gt, src)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := llama.Quantize(lt, src, 256)
				if err != nil {
					t.Fatal(err)
				}
				if len(ours) != len(ref) {
					t.Fatalf("encoded size: got %d bytes, ggml %d", len(ours), len(ref))
				}
				back, err := llama.Dequantize(lt, ours, n)
				if err != nil {
					t.Fatal(err)
				}
				goBack, err := gguf.Decode(nil, tc.gt, ours)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(back, goBack) {
					t.Error("ggml's dequantizer and gguf.Decode read Strata's blocks differently")
				}
				refBack, err := llama.Dequantize(lt, ref, n)
				if err != nil {
					t.Fatal(err)
				}
				eo, er := rmse(src, back), rmse(src, refBack)
				blocks := n / int(tc.gt.BlockSize())
				size := len(ours) / blocks
				same := 0
				for i := 0; i < len(ours); i += size {
					if slices.Equal(ours[i:i+size], ref[i:i+size]) {
						same++
					}
				}
				t.Logf("rmse: strata %.6g, ggml %.6g (ratio %.4f); %d of %d blocks identical", eo, er, eo/er, same, blocks)
				if tc.exact && same != blocks {
					t.Errorf("blocks identical to ggml's: got %d of %d, want all", same, blocks)
				}
				if eo > er*1.01 {
					t.Errorf("strata's error %.6g is more than 1%% above ggml's %.6g", eo, er)
				}
			})
		}
	}
}
