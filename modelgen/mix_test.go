package modelgen

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
)

// TestUseMoreBits checks use_more_bits against layer sets worked by hand
// from llama-quant.cpp's formula (i < n/8 || i >= 7n/8 || (i-n/8)%3 == 2).
func TestUseMoreBits(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{4, []int{2, 3}},                        // n/8 = 0, 7n/8 = 3
		{16, []int{0, 1, 4, 7, 10, 13, 14, 15}}, // bench presets
		{32, []int{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}}, // Llama 2 7B
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			var got []int
			for i := range tc.n {
				if useMoreBits(i, tc.n) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	for _, tc := range []struct {
		t    gguf.Type
		row  uint64
		want gguf.Type
	}{
		{gguf.TypeQ4_K, 2048, gguf.TypeQ4_K},
		{gguf.TypeQ4_K, 896, gguf.TypeQ5_0},
		{gguf.TypeQ6_K, 896, gguf.TypeQ8_0},
		{gguf.TypeQ5_K, 128, gguf.TypeQ5_1},
		{gguf.TypeQ8_0, 128, gguf.TypeQ8_0},
		{gguf.TypeQ4_K, 80, gguf.TypeF16},
		{gguf.TypeQ6_K, 48, gguf.TypeF16},
		{gguf.TypeQ8_0, 40, gguf.TypeF16},
	} {
		if got := fallback(tc.t, tc.row); got != tc.want {
			t.Errorf("fallback(%v, %d): got %v, want %v", tc.t, tc.row, got, tc.want)
		}
	}
}

// q4KMTypes returns the type Tensors gives each tensor of spec under
// MixQ4_K_M.
func q4KMTypes(t *testing.T, spec Spec) map[string]gguf.Type {
	t.Helper()
	ts, err := Tensors(spec, Options{Mix: MixQ4_K_M})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]gguf.Type, len(ts))
	for _, x := range ts {
		out[x.Name] = x.Type
	}
	return out
}

// TestQ4_K_MAssignment checks the type of every tensor of the bench and tiny
// presets, and of specs that reach the mix's special cases, against rules
// restated from llama-quant.cpp: the output head Q6_K (Q8_0 for rows that
// are not whole super-blocks), attn_v and ffn_down Q6_K in the use_more_bits
// layers, 8-expert models' attn_k/attn_v Q8_0 and attn_output Q5_K, a 70B's
// other attn_v Q5_K, everything else Q4_K, then the fallbacks for short
// rows; norms and routers F32.
func TestQ4_K_MAssignment(t *testing.T) {
	q6 := map[int]bool{0: true, 1: true, 4: true, 7: true, 10: true, 13: true, 14: true, 15: true} // use_more_bits of 16 layers
	custom := Spec{Name: "x", Embd: 256, Layers: 3, FF: 512, Heads: 4, HeadsKV: 2, Context: 64, RopeBase: 10000, NormEps: 1e-5}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	for _, tc := range []struct {
		preset string
		spec   Spec
		// want returns the expected type of a layer tensor (role is the
		// name without "blk.N." and ".weight"), given the layer.
		want      func(layer int, role string) gguf.Type
		embd, out gguf.Type
		counts    map[gguf.Type]int
	}{
		{
			preset: "bench-dense",
			want: func(l int, role string) gguf.Type {
				if (role == "attn_v" || role == "ffn_down") && q6[l] {
					return gguf.TypeQ6_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
			// 16 × 7 matrices + token_embd = 113: 8 attn_v, 8 ffn_down and
			// the output head Q6_K.
			counts: map[gguf.Type]int{gguf.TypeQ4_K: 97, gguf.TypeQ6_K: 17, gguf.TypeF32: 33},
		},
		{
			// Experts of n_ff 896: ffn_down_exps rows are 896 long, not whole
			// super-blocks, so Q6_K falls back to Q8_0 and Q4_K to Q5_0;
			// ffn_gate/up_exps rows are n_embd 2048 and stay Q4_K.
			preset: "bench-moe",
			want: func(l int, role string) gguf.Type {
				switch {
				case role == "ffn_down_exps" && q6[l]:
					return gguf.TypeQ8_0
				case role == "ffn_down_exps":
					return gguf.TypeQ5_0
				case role == "attn_v" && q6[l]:
					return gguf.TypeQ6_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
			counts: map[gguf.Type]int{gguf.TypeQ4_K: 89, gguf.TypeQ6_K: 9, gguf.TypeQ8_0: 8, gguf.TypeQ5_0: 8, gguf.TypeF32: 49},
		},
		{
			// 8 experts: attn_k and attn_v Q8_0, attn_output Q5_K, which
			// rows of n_embd 128 turn into Q5_1; everything else falls back
			// from Q4_K to Q5_0, the output head is Q8_0; ffn_down_exps (rows
			// of 128) is Q6_K → Q8_0 in layers 2 and 3 of 4.
			preset: "tiny-moe",
			want: func(l int, role string) gguf.Type {
				switch {
				case role == "attn_k" || role == "attn_v":
					return gguf.TypeQ8_0
				case role == "attn_output":
					return gguf.TypeQ5_1
				case role == "ffn_down_exps" && l >= 2:
					return gguf.TypeQ8_0
				}
				return gguf.TypeQ5_0
			},
			embd: gguf.TypeQ5_0, out: gguf.TypeQ8_0,
		},
		{
			// DeepSeek: the MoE rule reads the layer from every ffn_down's
			// name (dense layer 0's, the experts' and the shared experts'),
			// and 16 experts are not 8. Layer 0's ffn_down has rows of 256.
			preset: "tiny-deepseek",
			want: func(l int, role string) gguf.Type {
				more := l >= 2 // use_more_bits of 4 layers
				switch {
				case role == "ffn_down":
					return gguf.TypeQ4_K
				case strings.HasPrefix(role, "ffn_down") && more, role == "attn_v" && more:
					return gguf.TypeQ8_0
				}
				return gguf.TypeQ5_0
			},
			embd: gguf.TypeQ5_0, out: gguf.TypeQ8_0,
		},
		{
			preset: "custom dense",
			spec:   custom,
			// use_more_bits of 3 layers: n/8 = 0, 7n/8 = 2: layer 2, and
			// (i-0)%3 == 2: layer 2 again.
			want: func(l int, role string) gguf.Type {
				if (role == "attn_v" || role == "ffn_down") && l == 2 {
					return gguf.TypeQ6_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
		},
		{
			preset: "custom 8 experts",
			spec:   with(custom, func(s *Spec) { s.Experts, s.ExpertsUsed = 8, 2 }),
			want: func(l int, role string) gguf.Type {
				switch {
				case role == "attn_k" || role == "attn_v":
					return gguf.TypeQ8_0
				case role == "attn_output":
					return gguf.TypeQ5_K
				case role == "ffn_down_exps" && l == 2:
					return gguf.TypeQ6_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
		},
		{
			// LLM_TYPE_70B (llama, 80 layers, GQA): the attn_v that
			// use_more_bits leaves at Q4_K get Q5_K.
			preset: "custom 70B",
			spec:   with(custom, func(s *Spec) { s.Layers = 80 }),
			want: func(l int, role string) gguf.Type {
				more := useMoreBits(l, 80)
				switch {
				case role == "attn_v" && more, role == "ffn_down" && more:
					return gguf.TypeQ6_K
				case role == "attn_v":
					return gguf.TypeQ5_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
		},
		{
			// Without GQA an 80-layer llama is a 65B: no Q5_K.
			preset: "custom 65B",
			spec:   with(custom, func(s *Spec) { s.Layers, s.HeadsKV = 80, 4 }),
			want: func(l int, role string) gguf.Type {
				if (role == "attn_v" || role == "ffn_down") && useMoreBits(l, 80) {
					return gguf.TypeQ6_K
				}
				return gguf.TypeQ4_K
			},
			embd: gguf.TypeQ4_K, out: gguf.TypeQ6_K,
		},
		{
			// Rows of 48 and 80 are not even Q5_0 or Q8_0 blocks: F16.
			preset: "custom odd rows",
			spec:   with(custom, func(s *Spec) { s.Embd, s.Heads, s.HeadsKV, s.FF = 48, 2, 2, 80 }),
			want:   func(int, string) gguf.Type { return gguf.TypeF16 },
			embd:   gguf.TypeF16, out: gguf.TypeF16,
		},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			spec := tc.spec
			if spec.Name == "" {
				spec, _ = Preset(tc.preset)
			}
			types := q4KMTypes(t, spec)
			counts := map[gguf.Type]int{}
			for name, got := range types {
				counts[got]++
				var want gguf.Type
				switch {
				case name == "token_embd.weight":
					want = tc.embd
				case name == "output.weight":
					want = tc.out
				case strings.HasSuffix(name, "_norm.weight"), strings.HasSuffix(name, "ffn_gate_inp.weight"):
					want = gguf.TypeF32
				default:
					role := strings.TrimSuffix(name[strings.Index(name[4:], ".")+5:], ".weight")
					want = tc.want(nameLayer(name), role)
				}
				if got != want {
					t.Errorf("%s: got %v, want %v", name, got, want)
				}
			}
			if tc.counts != nil && !mapsEqual(counts, tc.counts) {
				t.Errorf("type counts: got %v, want %v", counts, tc.counts)
			}
		})
	}
}

func mapsEqual(a, b map[gguf.Type]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestQ4_K_MFile writes small Q4_K_M models and reads them back: the file
// type and quantization version llama-quantize writes, every tensor of the
// type Tensors announced and of the size SizeOf announced, values of the
// expected scale, and the same bytes whatever the number of workers.
func TestQ4_K_MFile(t *testing.T) {
	custom := Spec{Name: "x", Embd: 256, Layers: 3, FF: 512, Heads: 4, HeadsKV: 2, Context: 64,
		Experts: 8, ExpertsUsed: 2, RouterSkew: 1, RopeBase: 10000, NormEps: 1e-5}
	tiny, _ := Preset("tiny-deepseek")
	for _, spec := range []Spec{custom, tiny} {
		t.Run(spec.Name, func(t *testing.T) {
			opts := Options{Mix: MixQ4_K_M, Seed: 7, Workers: 1}
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := Write(path, spec, opts); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if ft, _ := f.Uint("general.file_type"); ft != 15 {
				t.Errorf("general.file_type: got %d, want 15 (MOSTLY_Q4_K_M)", ft)
			}
			if v, _ := f.Uint("general.quantization_version"); v != 2 {
				t.Errorf("general.quantization_version: got %d, want 2", v)
			}
			want, _ := Tensors(spec, opts)
			if len(f.Tensors) != len(want) {
				t.Fatalf("tensors: got %d, want %d", len(f.Tensors), len(want))
			}
			seen := map[gguf.Type]bool{}
			for i, ti := range f.Tensors {
				if ti.Name != want[i].Name || ti.Type != want[i].Type {
					t.Errorf("tensor %d: got %s %v, want %s %v", i, ti.Name, ti.Type, want[i].Name, want[i].Type)
				}
				seen[ti.Type] = true
			}
			if size, _ := SizeOf(spec, opts); f.FileSize != size {
				t.Errorf("size: got %d, SizeOf %d", f.FileSize, size)
			}
			if spec.Name == "x" && (!seen[gguf.TypeQ4_K] || !seen[gguf.TypeQ5_K] || !seen[gguf.TypeQ6_K] || !seen[gguf.TypeQ8_0]) {
				t.Errorf("types written: got %v, want q4_K, q5_K, q6_K and q8_0 among them", seen)
			}
			checkWeights(t, path, f)
			opts.Workers = 3
			if a, b := hashFile(t, path), hashFile(t, writeSpec(t, spec, opts)); a != b {
				t.Errorf("1 vs 3 workers: got %s and %s, want equal", a, b)
			}
		})
	}
}

func writeSpec(tb testing.TB, spec Spec, opts Options) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), spec.Name+".gguf")
	if err := Write(path, spec, opts); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestParseWeights(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Options
		err  error
	}{
		{"q4_k_m", Options{Mix: MixQ4_K_M}, nil},
		{"Q4_K_M", Options{Mix: MixQ4_K_M}, nil},
		{"q8_0", Options{Type: gguf.TypeQ8_0}, nil},
		{"F16", Options{Type: gguf.TypeF16}, nil},
		{"q4_K", Options{}, ErrType}, // a type modelgen does not write uniformly
		{"q4_k_s", Options{}, ErrType},
		{"", Options{}, ErrType},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseWeights(tc.in)
			if !errors.Is(err, tc.err) || err == nil && (got.Type != tc.want.Type || got.Mix != tc.want.Mix) {
				t.Errorf("got %v %v, %v, want %v %v, %v", got.Type, got.Mix, err, tc.want.Type, tc.want.Mix, tc.err)
			}
		})
	}
}

// TestMixErrors: a mix with a Type set, or an unknown mix, is refused
// rather than silently overriding or ignoring the caller's choice.
func TestMixErrors(t *testing.T) {
	spec, _ := Preset("tiny-dense")
	for _, opts := range []Options{
		{Mix: MixQ4_K_M, Type: gguf.TypeQ8_0},
		{Mix: Mix(9)},
	} {
		if err := Write(filepath.Join(t.TempDir(), "x.gguf"), spec, opts); !errors.Is(err, ErrType) {
			t.Errorf("Write with %v/%v: got %v, want ErrType", opts.Mix, opts.Type, err)
		}
		if _, err := SizeOf(spec, opts); !errors.Is(err, ErrType) {
			t.Errorf("SizeOf with %v/%v: got %v, want ErrType", opts.Mix, opts.Type, err)
		}
		if _, err := Tensors(spec, opts); !errors.Is(err, ErrType) {
			t.Errorf("Tensors with %v/%v: got %v, want ErrType", opts.Mix, opts.Type, err)
		}
	}
	if got := Mix(9).String(); got != "mix(9)" {
		t.Errorf("Mix(9).String(): got %q, want mix(9)", got)
	}
}
