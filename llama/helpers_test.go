package llama_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// modelDir holds the models generated for this test binary; they are made
// on first use and shared by every test.
var (
	modelDir  string
	modelMu   sync.Mutex
	modelMade = map[string]string{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-llama-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	modelDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testModel returns the path of a generated model of the given preset and
// weight type, seed 1.
func testModel(tb testing.TB, preset string, typ gguf.Type) string {
	tb.Helper()
	modelMu.Lock()
	defer modelMu.Unlock()
	key := fmt.Sprintf("%s-%s", preset, typ)
	if p, ok := modelMade[key]; ok {
		return p
	}
	spec, err := modelgen.Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(modelDir, key+".gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: typ, Seed: 1}); err != nil {
		tb.Fatalf("generate %s: %v", key, err)
	}
	modelMade[key] = path
	return path
}

// load loads a model and closes it when the test ends.
func load(tb testing.TB, path string, p llama.ModelParams) *llama.Model {
	tb.Helper()
	m, err := llama.LoadModel(path, p)
	if err != nil {
		tb.Fatalf("LoadModel(%s): %v", path, err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// newContext creates a context and closes it when the test ends.
func newContext(tb testing.TB, m *llama.Model, p llama.ContextParams) *llama.Context {
	tb.Helper()
	if p.Threads == 0 {
		p.Threads = 1 // go test runs packages side by side on small CI machines; ggml threads spin
	}
	c, err := llama.NewContext(m, p)
	if err != nil {
		tb.Fatalf("NewContext: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// greedy generates n tokens greedily after prompt in a fresh sequence.
func greedy(tb testing.TB, c *llama.Context, prompt []llama.Token, n int) []llama.Token {
	tb.Helper()
	b, err := llama.NewBatch(max(len(prompt), 1), 1)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	c.ClearMemory(true)
	if err := b.AddSequence(prompt, 0, 0); err != nil {
		tb.Fatal(err)
	}
	if err := c.Decode(b); err != nil {
		tb.Fatalf("decode prompt: %v", err)
	}
	var out []llama.Token
	pos := int32(len(prompt))
	for i := 0; i < n; i++ {
		t, err := s.Sample(c, -1)
		if err != nil {
			tb.Fatalf("sample token %d: %v", i, err)
		}
		out = append(out, t)
		b.Clear()
		if err := b.Add(t, pos, 0, true); err != nil {
			tb.Fatal(err)
		}
		if err := c.Decode(b); err != nil {
			tb.Fatalf("decode token %d: %v", i, err)
		}
		pos++
	}
	return out
}

// greedyStable generates n greedy tokens from prompt in two fresh contexts
// of m, fails unless both give the same varied sequence (at least three
// distinct tokens), and returns it.
func greedyStable(t *testing.T, m *llama.Model, prompt []llama.Token, n int) []llama.Token {
	t.Helper()
	a := greedy(t, newContext(t, m, llama.ContextParams{NCtx: 128}), prompt, n)
	b := greedy(t, newContext(t, m, llama.ContextParams{NCtx: 128}), prompt, n)
	if !slices.Equal(a, b) {
		t.Fatalf("greedy outputs differ between contexts:\n got %v\nwant %v", b, a)
	}
	distinct := map[llama.Token]bool{}
	for _, tok := range a {
		distinct[tok] = true
	}
	if len(distinct) < 3 {
		t.Errorf("got %d distinct tokens in %v, want a varied sequence", len(distinct), a)
	}
	return a
}

// benchModel is STRATA_BENCH_MODEL (models/bench-dense-q4_0.gguf, say,
// for figures that mean something) or a generated tiny model.
func benchModel(tb testing.TB) string {
	if p := os.Getenv("STRATA_BENCH_MODEL"); p != "" {
		return p
	}
	return testModel(tb, "tiny-dense", gguf.TypeQ8_0)
}
