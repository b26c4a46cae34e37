package modelgen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/strata-llm/strata/gguf"
)

func hashFile(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeModel(tb testing.TB, preset string, opts Options) string {
	tb.Helper()
	spec, err := Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), preset+".gguf")
	if err := Write(path, spec, opts); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestReproducible(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0} {
		t.Run(typ.String(), func(t *testing.T) {
			a := hashFile(t, writeModel(t, "tiny-moe", Options{Type: typ, Seed: 7, Workers: 1}))
			b := hashFile(t, writeModel(t, "tiny-moe", Options{Type: typ, Seed: 7, Workers: 3}))
			c := hashFile(t, writeModel(t, "tiny-moe", Options{Type: typ, Seed: 8}))
			if a != b {
				t.Errorf("same seed, 1 vs 3 workers: got %s and %s, want equal", a, b)
			}
			if a == c {
				t.Errorf("seeds 7 and 8: both hash to %s, want different", a)
			}
		})
	}
}

func TestModelFile(t *testing.T) {
	for _, tc := range []struct {
		preset string
		typ    gguf.Type
	}{{"tiny-dense", gguf.TypeQ8_0}, {"tiny-moe", gguf.TypeQ4_0}, {"tiny-dense", gguf.TypeF16}} {
		t.Run(tc.preset+"/"+tc.typ.String(), func(t *testing.T) {
			spec, _ := Preset(tc.preset)
			var calls int
			var last, total int64
			path := writeModel(t, tc.preset, Options{Type: tc.typ, Seed: 1, Progress: func(d, n int64) { calls++; last, total = d, n }})
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Size(spec, tc.typ)
			if f.FileSize != want || last != want || total != want || calls == 0 {
				t.Errorf("size: file %d, progress %d/%d after %d calls, want %d", f.FileSize, last, total, calls, want)
			}
			if got := f.ParamCount(); int64(got) != spec.Params() {
				t.Errorf("params: got %d, want %d", got, spec.Params())
			}
			if f.Architecture() != "llama" || f.BlockCount() != spec.Layers || f.ExpertCount() != spec.Experts {
				t.Errorf("got arch %q blocks %d experts %d, want llama %d %d", f.Architecture(), f.BlockCount(), f.ExpertCount(), spec.Layers, spec.Experts)
			}
			toks, _ := f.Value("tokenizer.ggml.tokens")
			if ts, ok := toks.([]string); !ok || len(ts) != VocabSize || ts[TokenByte0+0x41] != "<0x41>" || ts[TokenSpace] != "▁" {
				t.Errorf("vocabulary: got %T of %d", toks, len(toks.([]string)))
			}
			if tt, _ := f.Value("tokenizer.ggml.token_type"); tt.([]int32)[TokenByte0] != tokByte || tt.([]int32)[TokenBOS] != tokControl {
				t.Errorf("token types: got %v", tt.([]int32)[:5])
			}
			for _, name := range []string{"blk.0.attn_norm.weight", "output_norm.weight"} {
				if ti, _ := f.Tensor(name); ti.Type != gguf.TypeF32 {
					t.Errorf("%s: got %v, want f32", name, ti.Type)
				}
			}
			if ti, _ := f.Tensor("blk.1.attn_q.weight"); ti.Type != tc.typ {
				t.Errorf("attn_q: got %v, want %v", ti.Type, tc.typ)
			}
			checkWeights(t, path, f)
			if spec.Experts > 0 {
				r, err := f.ExpertRanges(spec.Layers-1, spec.Experts-1)
				if err != nil || len(r) != 3 {
					t.Errorf("ExpertRanges: got %v %v, want 3 ranges", r, err)
				}
			}
		})
	}
}

// checkWeights decodes each matrix and checks its values are finite, not
// all equal, and of the scale the generator promises.
func checkWeights(t *testing.T, path string, f *gguf.File) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors {
		v, err := gguf.Decode(nil, ti.Type, raw[ti.Offset:ti.Offset+ti.Size])
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		var sum, sq float64
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s: non-finite value %g", ti.Name, x)
			}
			sum += float64(x)
			sq += float64(x) * float64(x)
		}
		rms := math.Sqrt(sq / float64(len(v)))
		if rms == 0 || rms > 3 {
			t.Errorf("%s: rms %g, want in (0, 3]", ti.Name, rms)
		}
	}
}

func TestPresetErrors(t *testing.T) {
	if _, err := Preset("huge"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("Preset(huge): got %v, want ErrUnknownPreset", err)
	}
	spec, _ := Preset("tiny-dense")
	bad := spec
	bad.Embd = 100
	for _, tc := range []struct {
		name string
		spec Spec
		typ  gguf.Type
		want error
	}{
		{"q4_k", spec, gguf.TypeQ4_K, ErrType},
		{"embd not blocks", bad, gguf.TypeQ8_0, ErrSpec},
		{"used > experts", Spec{Name: "x", Embd: 64, Layers: 1, FF: 64, Heads: 2, HeadsKV: 2, Context: 8, Experts: 2, ExpertsUsed: 3}, gguf.TypeF32, ErrSpec},
	} {
		if err := Write(filepath.Join(t.TempDir(), "x.gguf"), tc.spec, Options{Type: tc.typ}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// A failed write leaves nothing behind.
	dir := t.TempDir()
	_ = Write(filepath.Join(dir, "x.gguf"), bad, Options{Type: gguf.TypeQ8_0})
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after a failed write: got %d files, want 0", len(ents))
	}
}

func TestBenchPresetSizes(t *testing.T) {
	for _, tc := range []struct {
		preset       string
		typ          gguf.Type
		minP, maxP   float64
		minGB, maxGB float64
	}{
		// Llama 3.2 1B's 1.24 B weights plus the output head it ties to
		// token_embd (2048×128,256): modelgen writes both.
		{"bench-dense", gguf.TypeQ4_0, 1.4e9, 1.6e9, 0.8, 0.9},
		{"bench-moe", gguf.TypeQ8_0, 6e9, 7e9, 6.5, 7},
		{"bench-moe-uniform", gguf.TypeQ8_0, 6e9, 7e9, 6.5, 7},
		{"bench-moe-wide", gguf.TypeQ8_0, 2.7e9, 2.9e9, 2.9, 3.1},
	} {
		spec, _ := Preset(tc.preset)
		p := float64(spec.Params())
		n, err := Size(spec, tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		if gb := float64(n) / 1e9; p < tc.minP || p > tc.maxP || gb < tc.minGB || gb > tc.maxGB {
			t.Errorf("%s: got %.3g params, %.2f GB, want %.3g..%.3g params, %.1f..%.1f GB", tc.preset, p, gb, tc.minP, tc.maxP, tc.minGB, tc.maxGB)
		}
	}
}

// routeTokens computes, in Go, the layer-0 routing of every vocabulary token
// of a generated MoE model (RMSNorm of the token embedding, router logits,
// top-k), returning each token's experts.
func routeTokens(t *testing.T, path string, layer int) (f *gguf.File, chosen [][]int) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	emb, _ := f.Tensor("token_embd.weight")
	rt, _ := f.Tensor("blk." + itoa(layer) + ".ffn_gate_inp.weight")
	E, _ := gguf.Decode(nil, emb.Type, raw[emb.Offset:emb.Offset+emb.Size])
	R, _ := gguf.Decode(nil, rt.Type, raw[rt.Offset:rt.Offset+rt.Size])
	n := int(emb.Dims[0])
	nExp := f.ExpertCount()
	k := f.ExpertUsedCount()
	for tok := TokenByte0; tok < VocabSize; tok++ {
		x := E[tok*n : (tok+1)*n]
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(n)+1e-5)
		logits := make([]float64, nExp)
		idx := make([]int, nExp)
		for e := range logits {
			idx[e] = e
			for i, v := range x {
				logits[e] += float64(v) * scale * float64(R[e*n+i])
			}
		}
		sort.Slice(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
		chosen = append(chosen, idx[:k])
	}
	return f, chosen
}

func itoa(i int) string { return string(rune('0' + i)) }

// TestRouterSkew checks the designed popularity shows up in the routing the
// weights actually produce: the designed-hottest expert is chosen far more
// often than uniform routing would, and the designed-coldest far less.
func TestRouterSkew(t *testing.T) {
	path := writeModel(t, "tiny-moe", Options{Type: gguf.TypeF32, Seed: 3})
	spec, _ := Preset("tiny-moe")
	for layer := 0; layer < 2; layer++ {
		f, chosen := routeTokens(t, path, layer)
		counts := make([]int, f.ExpertCount())
		for _, c := range chosen {
			for _, e := range c {
				counts[e]++
			}
		}
		pop := ExpertPopularity(spec, 3, layer)
		hot, cold := 0, 0
		for e := range pop {
			if pop[e] > pop[hot] {
				hot = e
			}
			if pop[e] < pop[cold] {
				cold = e
			}
		}
		total := len(chosen) * f.ExpertUsedCount()
		uniform := float64(total) / float64(len(counts))
		t.Logf("layer %d: counts %v, designed %v", layer, counts, pop)
		if float64(counts[hot]) < 2*uniform {
			t.Errorf("layer %d: hottest expert %d chosen %d times, want >= 2x uniform (%.0f)", layer, hot, counts[hot], 2*uniform)
		}
		if float64(counts[cold]) > 0.75*uniform {
			t.Errorf("layer %d: coldest expert %d chosen %d times, want <= 0.75x uniform (%.0f)", layer, cold, counts[cold], 0.75*uniform)
		}
	}
}

func TestLoRA(t *testing.T) {
	spec, _ := Preset("tiny-dense")
	dir := t.TempDir()
	path := filepath.Join(dir, "lora.gguf")
	if err := WriteLoRA(path, spec, Options{Seed: 1}, 8); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("general.type"); s != "adapter" {
		t.Errorf("general.type: got %q, want adapter", s)
	}
	if s, _ := f.String("adapter.type"); s != "lora" {
		t.Errorf("adapter.type: got %q, want lora", s)
	}
	if a, ok := f.Float("adapter.lora.alpha"); !ok || a != 8 {
		t.Errorf("alpha: got %g %v, want 8", a, ok)
	}
	kv := uint64(spec.HeadsKV * spec.HeadDim())
	for _, tc := range []struct {
		name string
		dims []uint64
	}{
		{"blk.0.attn_q.weight.lora_a", []uint64{uint64(spec.Embd), 8}},
		{"blk.0.attn_q.weight.lora_b", []uint64{8, uint64(spec.Embd)}},
		{"blk.3.attn_v.weight.lora_b", []uint64{8, kv}},
	} {
		ti, ok := f.Tensor(tc.name)
		if !ok || len(ti.Dims) != 2 || ti.Dims[0] != tc.dims[0] || ti.Dims[1] != tc.dims[1] {
			t.Errorf("%s: got %v %v, want dims %v", tc.name, ti.Dims, ok, tc.dims)
		}
	}
	raw, _ := os.ReadFile(path)
	b, _ := f.Tensor("blk.0.attn_q.weight.lora_b")
	v, _ := gguf.Decode(nil, b.Type, raw[b.Offset:b.Offset+b.Size])
	nz := 0
	for _, x := range v {
		if x != 0 {
			nz++
		}
	}
	if nz < len(v)/2 {
		t.Errorf("lora_b: %d of %d non-zero, want most", nz, len(v))
	}
	if err := WriteLoRA(path, spec, Options{}, 0); !errors.Is(err, ErrSpec) {
		t.Errorf("rank 0: got %v, want ErrSpec", err)
	}
}

func BenchmarkWriteTinyMoE(b *testing.B) {
	spec, _ := Preset("tiny-moe")
	path := filepath.Join(b.TempDir(), "m.gguf")
	n, _ := Size(spec, gguf.TypeQ8_0)
	b.ReportAllocs()
	b.SetBytes(n)
	for b.Loop() {
		if err := Write(path, spec, Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spec.Params())*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparams/s")
}

// TestVocabFiles checks each embedded vocabulary against vocab/SHA256SUMS
// and its token count, and that a model written with it carries its
// tokenizer keys and is sized by it.
func TestVocabFiles(t *testing.T) {
	for _, v := range Vocabularies() {
		t.Run(v.String(), func(t *testing.T) {
			kvs, err := v.tokenizerKVs()
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]any{}
			for _, kv := range kvs {
				keys[kv.Key] = kv.Value
			}
			for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("no %s", k)
				}
			}
			spec := Spec{Name: "v", Embd: 32, Layers: 1, FF: 32, Heads: 1, HeadsKV: 1, Context: 64, RopeBase: 10000, NormEps: 1e-5, Vocab: v}
			path := filepath.Join(t.TempDir(), "v.gguf")
			if err := Write(path, spec, Options{Type: gguf.TypeF16, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := f.Uint("llama.vocab_size"); int(n) != v.size() {
				t.Errorf("llama.vocab_size: got %d, want %d", n, v.size())
			}
			for _, name := range []string{"token_embd.weight", "output.weight"} {
				if ti, _ := f.Tensor(name); len(ti.Dims) != 2 || int(ti.Dims[1]) != v.size() {
					t.Errorf("%s: got dims %v, want [32 %d]", name, ti.Dims, v.size())
				}
			}
			if s, _ := f.String("tokenizer.ggml.pre"); s != keys["tokenizer.ggml.pre"] {
				t.Errorf("tokenizer.ggml.pre: got %q, want %q", s, keys["tokenizer.ggml.pre"])
			}
			if size, _ := SizeOf(spec, Options{Type: gguf.TypeF16}); size != f.FileSize {
				t.Errorf("SizeOf: got %d, want the file's %d", size, f.FileSize)
			}
		})
	}
	if _, err := ParseVocab("gpt-5"); !errors.Is(err, ErrVocab) {
		t.Errorf("ParseVocab(gpt-5): got %v, want ErrVocab", err)
	}
	bad := Spec{Name: "v", Embd: 32, Layers: 1, FF: 32, Heads: 1, HeadsKV: 1, Context: 64, Vocab: "gpt-5"}
	if err := bad.Validate(gguf.TypeF16); !errors.Is(err, ErrVocab) {
		t.Errorf("Validate with vocab gpt-5: got %v, want ErrVocab", err)
	}
}
