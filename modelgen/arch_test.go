package modelgen

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-llm/strata/gguf"
)

// TestArchFiles checks the layout of each non-llama preset as a GGUF
// reader sees it: the architecture's keys, QK-norm where the architecture
// has it, experts in exactly MoELayers, dense FFNs in the leading layers and
// shared experts as plain 2-D matrices that package gguf does not take for
// experts.
func TestArchFiles(t *testing.T) {
	for _, tc := range []struct {
		preset    string
		arch      string
		moeLayers []int
		qkNorm    bool
	}{
		{"tiny-qwen3moe", "qwen3moe", []int{0, 1, 2, 3}, true},
		{"tiny-deepseek", "deepseek", []int{1, 2, 3}, false},
		{"tiny-mellum", "mellum", []int{0, 1, 2, 3}, true},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			spec, err := Preset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			if got := spec.MoELayers(); !slices.Equal(got, tc.moeLayers) {
				t.Errorf("MoELayers: got %v, want %v", got, tc.moeLayers)
			}
			path := writeModel(t, tc.preset, Options{Type: gguf.TypeQ8_0, Seed: 1})
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := Size(spec, gguf.TypeQ8_0); f.FileSize != want {
				t.Errorf("size: got %d, want %d", f.FileSize, want)
			}
			if got := f.ParamCount(); int64(got) != spec.Params() {
				t.Errorf("params: got %d, want %d", got, spec.Params())
			}
			if f.Architecture() != tc.arch || f.BlockCount() != spec.Layers || f.ExpertCount() != spec.Experts || f.ExpertUsedCount() != spec.ExpertsUsed {
				t.Errorf("got arch %q blocks %d experts %d used %d, want %s %d %d %d",
					f.Architecture(), f.BlockCount(), f.ExpertCount(), f.ExpertUsedCount(), tc.arch, spec.Layers, spec.Experts, spec.ExpertsUsed)
			}
			if _, ok := f.Value("llama.block_count"); ok {
				t.Error("got llama.block_count, want the architecture's own keys only")
			}
			if n, ok := f.Uint(tc.arch + ".expert_feed_forward_length"); !ok || int(n) != spec.ExpertWidth() {
				t.Errorf("expert_feed_forward_length: got %d %v, want %d", n, ok, spec.ExpertWidth())
			}
			checkWeights(t, path, f)
			for l := 0; l < spec.Layers; l++ {
				has := func(name string) bool {
					_, ok := f.Tensor(fmt.Sprintf("blk.%d.%s.weight", l, name))
					return ok
				}
				moe := slices.Contains(tc.moeLayers, l)
				for _, c := range []struct {
					name string
					want bool
				}{
					{"attn_q_norm", tc.qkNorm},
					{"attn_k_norm", tc.qkNorm},
					{"ffn_gate_inp", moe},
					{"ffn_gate_exps", moe},
					{"ffn_down_exps", moe},
					{"ffn_gate", !moe},
					{"ffn_up", !moe},
					{"ffn_down", !moe},
					{"ffn_gate_shexp", moe && spec.SharedExperts > 0},
					{"ffn_up_shexp", moe && spec.SharedExperts > 0},
					{"ffn_down_shexp", moe && spec.SharedExperts > 0},
				} {
					if got := has(c.name); got != c.want {
						t.Errorf("layer %d %s: got present %v, want %v", l, c.name, got, c.want)
					}
				}
				r, err := f.ExpertRanges(l, spec.Experts-1)
				switch {
				case moe && (err != nil || len(r) != len(gguf.ExpertTensorNames)):
					t.Errorf("layer %d: ExpertRanges got %v %v, want %d ranges", l, r, err, len(gguf.ExpertTensorNames))
				case !moe && !errors.Is(err, gguf.ErrNotFound):
					t.Errorf("dense layer %d: ExpertRanges got %v %v, want ErrNotFound", l, r, err)
				}
				if pop := ExpertPopularity(spec, 1, l); (pop != nil) != moe {
					t.Errorf("layer %d: ExpertPopularity got %v, want one share per expert only in MoE layers", l, pop)
				}
			}
			if spec.SharedExperts > 0 {
				l := tc.moeLayers[0]
				sh, _ := f.Tensor(fmt.Sprintf("blk.%d.ffn_up_shexp.weight", l))
				want := []uint64{uint64(spec.Embd), uint64(spec.SharedExperts * spec.ExpertWidth())}
				if !slices.Equal(sh.Dims, want) {
					t.Errorf("ffn_up_shexp: got dims %v, want %v", sh.Dims, want)
				}
				d, _ := f.Tensor("blk.0.ffn_up.weight")
				if want := []uint64{uint64(spec.Embd), uint64(spec.FF)}; !slices.Equal(d.Dims, want) {
					t.Errorf("dense ffn_up: got dims %v, want %v", d.Dims, want)
				}
			}
		})
	}
}

// TestArchValidate checks that a spec is refused when it uses a feature its
// architecture's llama.cpp loader does not read, or lacks one it requires.
func TestArchValidate(t *testing.T) {
	ds, _ := Preset("tiny-deepseek")
	qw, _ := Preset("tiny-qwen3moe")
	dense, _ := Preset("tiny-dense")
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	for _, tc := range []struct {
		name string
		spec Spec
		typ  gguf.Type
		want error
	}{
		{"deepseek ok", ds, gguf.TypeQ4_0, nil},
		{"llama named", with(dense, func(s *Spec) { s.Arch = "llama" }), gguf.TypeQ8_0, nil},
		{"unknown arch", with(qw, func(s *Spec) { s.Arch = "qwen9" }), gguf.TypeQ8_0, ErrArch},
		{"qwen3moe dense", with(qw, func(s *Spec) { s.Experts, s.ExpertsUsed = 0, 0 }), gguf.TypeQ8_0, ErrSpec},
		{"llama expert ff", with(dense, func(s *Spec) { s.Experts, s.ExpertsUsed, s.ExpertFF = 4, 2, 64 }), gguf.TypeQ8_0, ErrSpec},
		{"qwen3moe dense layers", with(qw, func(s *Spec) { s.DenseLayers = 1 }), gguf.TypeQ8_0, ErrSpec},
		{"qwen3moe shared", with(qw, func(s *Spec) { s.SharedExperts = 1 }), gguf.TypeQ8_0, ErrSpec},
		{"qwen3moe window", with(qw, func(s *Spec) { s.SlidingWindow = 8 }), gguf.TypeQ8_0, ErrSpec},
		{"deepseek no shared", with(ds, func(s *Spec) { s.SharedExperts = 0 }), gguf.TypeQ8_0, ErrSpec},
		{"deepseek all dense", with(ds, func(s *Spec) { s.DenseLayers = s.Layers }), gguf.TypeQ8_0, ErrSpec},
		{"negative dense", with(ds, func(s *Spec) { s.DenseLayers = -1 }), gguf.TypeQ8_0, ErrSpec},
		{"expert ff not blocks", with(ds, func(s *Spec) { s.ExpertFF = 48 }), gguf.TypeQ8_0, ErrSpec},
		{"expert ff blocks of f32", with(ds, func(s *Spec) { s.ExpertFF = 48 }), gguf.TypeF32, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate(tc.typ)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := Write(filepath.Join(t.TempDir(), "x.gguf"), with(qw, func(s *Spec) { s.Arch = "qwen9" }), Options{Type: gguf.TypeQ8_0}); !errors.Is(err, ErrArch) {
		t.Errorf("Write of an unknown architecture: got %v, want ErrArch", err)
	}
}

// TestArchReproducible: the same spec, type and seed give a byte-identical
// file whatever the number of workers, for the new layouts too.
func TestArchReproducible(t *testing.T) {
	for _, preset := range []string{"tiny-deepseek", "tiny-mellum"} {
		t.Run(preset, func(t *testing.T) {
			a := hashFile(t, writeModel(t, preset, Options{Type: gguf.TypeQ4_0, Seed: 7, Workers: 1}))
			b := hashFile(t, writeModel(t, preset, Options{Type: gguf.TypeQ4_0, Seed: 7, Workers: 3}))
			if a != b {
				t.Errorf("1 vs 3 workers: got %s and %s, want equal", a, b)
			}
		})
	}
}
