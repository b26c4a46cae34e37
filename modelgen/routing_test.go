package modelgen_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// routingSpec is bench-moe reduced to run in seconds: the same router
// design, expert count, experts used, head dim (64), RoPE base and
// vocabulary, with n_embd 256, 4 heads (one per KV head) and 4 layers of
// narrow experts.
func routingSpec(r modelgen.Router) modelgen.Spec {
	return modelgen.Spec{
		Name: "routing-" + r.String(), Embd: 256, Layers: 4, FF: 64, Heads: 4, HeadsKV: 4,
		Context: 1024, Experts: 64, ExpertsUsed: 4, Router: r, RopeBase: 500000, NormEps: 1e-5,
		Vocab: modelgen.VocabLlama3,
	}
}

// routingStats are the statistics of a routing trace that the router
// designs are calibrated on, for one layer.
type routingStats struct {
	top8    float64 // share of routings taken by the top eighth of experts
	reuse   float64 // mean fraction of token t's experts that token t-1 also used
	touched float64 // fraction of experts used at least once
}

// stats computes routingStats from experts[t] = the experts token t was
// routed to in one layer.
func stats(experts [][]int32, nExpert int) routingStats {
	counts := make([]int, nExpert)
	var total, shared int
	for t, es := range experts {
		for _, e := range es {
			counts[e]++
			total++
			if t > 0 && slices.Contains(experts[t-1], e) {
				shared++
			}
		}
	}
	var s routingStats
	slices.Sort(counts)
	slices.Reverse(counts)
	var top, used int
	for i, c := range counts {
		if i < nExpert/8 {
			top += c
		}
		if c > 0 {
			used++
		}
	}
	s.top8 = float64(top) / float64(total)
	if len(experts) > 1 {
		s.reuse = float64(shared) / float64(total-len(experts[0]))
	}
	s.touched = float64(used) / float64(nExpert)
	return s
}

// traceRouting decodes text through llama.cpp with every token's output
// requested (so the last layer routes every token too) and returns, per MoE
// layer, the experts llama.cpp's router chose for each text token (the BOS
// token left out), read from the ffn_moe_topk tensors.
func traceRouting(tb testing.TB, path, text string) [][][]int32 {
	tb.Helper()
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	toks, err := m.Vocab().Tokenize(text, true, false)
	if err != nil {
		tb.Fatal(err)
	}
	var trace [][][]int32
	c, err := llama.NewContext(m, llama.ContextParams{
		NCtx: len(toks) + 16, NBatch: len(toks), NUbatch: len(toks), Threads: 2,
		Observer: &llama.Observer{Prefixes: []string{"ffn_moe_topk"}, Func: func(t *llama.Tensor) bool {
			ids, err := t.Int32s()
			if err != nil {
				tb.Error(err)
				return false
			}
			k := int(t.Shape()[0])
			var layer [][]int32
			for i := k; i+k <= len(ids); i += k { // from 1: skip BOS
				layer = append(layer, slices.Clone(ids[i:i+k]))
			}
			trace = append(trace, layer)
			return true
		}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	b, err := llama.NewBatch(len(toks), 1)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	for i, tok := range toks {
		if err := b.Add(tok, int32(i), 0, true); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.Decode(b); err != nil {
		tb.Fatal(err)
	}
	return trace
}

// TestRouterCalibration measures, through llama.cpp's own routing of a
// fixed English text (testdata/english.txt, 386 Llama 3 tokens), the
// statistics each router design promises, in every layer of a reduced
// bench-moe. RouterRealistic: the top eighth of experts takes 0.25-0.45 of
// routings, 0.25-0.45 of a token's experts were the previous token's, and
// at least 75% of experts are touched within 300 tokens. RouterUniform:
// reuse near chance (4/64) and a top eighth near what routing drawn
// independently for every token gives over the same number of tokens
// (0.167 for 386 tokens; logged): a router that is a linear function of
// the tokens cannot go below about 0.21 on this text, whose frequent
// tokens ("the", ",") fall on the same experts each time (see the package
// doc).
func TestRouterCalibration(t *testing.T) {
	raw, err := os.ReadFile("testdata/english.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSpace(string(raw))
	for _, tc := range []struct {
		router                 modelgen.Router
		minTop8, maxTop8       float64 // per layer
		maxMeanTop8            float64 // over the layers
		minReuse, maxReuse     float64
		minTouched, maxTouched float64
	}{
		{modelgen.RouterRealistic, 0.25, 0.45, 0.45, 0.25, 0.45, 0.75, 1},
		{modelgen.RouterUniform, 0.125, 0.27, 0.24, 0, 0.10, 0.95, 1},
	} {
		t.Run(tc.router.String(), func(t *testing.T) {
			spec := routingSpec(tc.router)
			path := filepath.Join(t.TempDir(), spec.Name+".gguf")
			if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			trace := traceRouting(t, path, text)
			if len(trace) != spec.Layers {
				t.Fatalf("got routing for %d layers, want %d", len(trace), spec.Layers)
			}
			var mean float64
			for l, layer := range trace {
				if len(layer) < 300 {
					t.Fatalf("layer %d: got %d tokens, want at least 300", l, len(layer))
				}
				all := stats(layer, spec.Experts)
				first := stats(layer[:300], spec.Experts)
				mean += all.top8 / float64(len(trace))
				t.Logf("layer %d, %d tokens: top eighth %.3f, previous-token reuse %.3f, touched %.2f (first 300: %.2f)",
					l, len(layer), all.top8, all.reuse, all.touched, first.touched)
				if all.top8 < tc.minTop8 || all.top8 > tc.maxTop8 {
					t.Errorf("layer %d: top eighth of experts takes %.3f of routings, want %.3f..%.3f", l, all.top8, tc.minTop8, tc.maxTop8)
				}
				if all.reuse < tc.minReuse || all.reuse > tc.maxReuse {
					t.Errorf("layer %d: previous-token reuse %.3f, want %.3f..%.3f", l, all.reuse, tc.minReuse, tc.maxReuse)
				}
				if first.touched < tc.minTouched || first.touched > tc.maxTouched {
					t.Errorf("layer %d: %.2f of experts touched in 300 tokens, want %.2f..%.2f", l, first.touched, tc.minTouched, tc.maxTouched)
				}
			}
			t.Logf("mean top eighth %.3f; independent uniform routing of %d tokens: %.3f", mean, len(trace[0]), iidTop8(len(trace[0]), spec.Experts, spec.ExpertsUsed))
			if mean > tc.maxMeanTop8 {
				t.Errorf("top eighth of experts averaged over layers: got %.3f, want at most %.3f", mean, tc.maxMeanTop8)
			}
		})
	}
}

// iidTop8 returns the mean share of the top eighth of experts when each of
// n tokens picks k of nExpert experts uniformly and independently: the
// floor of the statistic over n tokens.
func iidTop8(n, nExpert, k int) float64 {
	r := rand.New(rand.NewPCG(1, 2))
	const reps = 50
	var sum float64
	for range reps {
		experts := make([][]int32, n)
		for t := range experts {
			for _, e := range r.Perm(nExpert)[:k] {
				experts[t] = append(experts[t], int32(e))
			}
		}
		sum += stats(experts, nExpert).top8
	}
	return sum / reps
}

// TestRealVocab checks that llama.cpp loads a model carrying each embedded
// tokenizer, splits English into word pieces, round-trips the text, and
// generates with an output head of the full vocabulary.
func TestRealVocab(t *testing.T) {
	for _, tc := range []struct {
		vocab modelgen.Vocab
		bos   llama.Token
	}{
		{modelgen.VocabLlama3, 128000},
		{modelgen.VocabQwen35, -1},
	} {
		t.Run(tc.vocab.String(), func(t *testing.T) {
			spec := modelgen.Spec{
				Name: "vocab-" + tc.vocab.String(), Embd: 64, Layers: 1, FF: 64, Heads: 2, HeadsKV: 2,
				Context: 256, RopeBase: 500000, NormEps: 1e-5, Vocab: tc.vocab,
			}
			path := filepath.Join(t.TempDir(), spec.Name+".gguf")
			if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			m, err := llama.LoadModel(path, llama.ModelParams{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			v := m.Vocab()
			if got, want := v.Size(), modelgen.VocabSizeOf(tc.vocab); got != want {
				t.Errorf("vocab size: got %d, want %d", got, want)
			}
			toks, err := v.Tokenize("Hello world", false, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(toks) != 2 {
				t.Errorf("Hello world: got %d tokens %v, want 2", len(toks), toks)
			}
			const text = "The old bridge over the river was built of grey stone."
			toks, err = v.Tokenize(text, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bos >= 0 && (len(toks) == 0 || toks[0] != tc.bos) {
				t.Errorf("first token: got %v, want BOS %d", toks[:1], tc.bos)
			}
			if got, err := v.Detokenize(toks, true, false); err != nil || got != text {
				t.Errorf("round trip: got %q %v, want %q", got, err, text)
			}
			if n := len(toks); n > 16 {
				t.Errorf("%q: got %d tokens, want word pieces (at most 16)", text, n)
			}
			c, err := llama.NewContext(m, llama.ContextParams{NCtx: 128, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, _ := llama.NewBatch(len(toks), 1)
			defer b.Close()
			if err := b.AddSequence(toks, 0, 0); err != nil {
				t.Fatal(err)
			}
			if err := c.Decode(b); err != nil {
				t.Fatal(err)
			}
			logits, err := c.Logits(-1)
			if err != nil || len(logits) != v.Size() {
				t.Fatalf("logits: got %d %v, want %d", len(logits), err, v.Size())
			}
			s, _ := llama.NewSampler(llama.SamplerParams{Greedy: true})
			defer s.Close()
			pos := int32(len(toks))
			var out []llama.Token
			for range 8 {
				tok, err := s.Sample(c, -1)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, tok)
				b.Clear()
				b.Add(tok, pos, 0, true)
				if err := c.Decode(b); err != nil {
					t.Fatal(err)
				}
				pos++
			}
			piece, _ := v.Detokenize(out, false, false)
			t.Logf("%s: %q is %d tokens; generated %v %q", tc.vocab, text, len(toks), out, piece)
		})
	}
}
