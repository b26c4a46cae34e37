package llama_test

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// heapGrowth runs f once to warm up, then rounds times, and returns the C
// heap growth per round.
func heapGrowth(rounds int, f func()) int64 {
	f()
	runtime.GC()
	before, _ := llama.CHeapInUse()
	for i := 0; i < rounds; i++ {
		f()
	}
	runtime.GC()
	after, _ := llama.CHeapInUse()
	return (int64(after) - int64(before)) / int64(rounds)
}

// TestNoCLeaks builds and closes every C-backed object of this package
// many times; the C heap (glibc mallinfo2) must not grow with the rounds.
// Samplers and tokenization measure exactly 0 bytes per round. A context
// that has decoded leaves about 110 bytes inside llama.cpp per
// create/decode/free cycle at the pinned commit (measured with and without
// our observer), so that round's bound is 2 KiB: still far below the MBs of
// KV cache and compute buffers a context holds, or the ~20 KB of the
// 512-token batch, either of which a missing Close would leak.
func TestNoCLeaks(t *testing.T) {
	if _, ok := llama.CHeapInUse(); !ok {
		t.Skip("no C heap figure on this platform")
	}
	path := testModel(t, "tiny-moe", gguf.TypeQ8_0)
	m := load(t, path, llama.ModelParams{})
	ctx0 := newContext(t, m, llama.ContextParams{NCtx: 256})
	greedy(t, ctx0, []llama.Token{1, 50}, 1)

	contexts := func() {
		c, err := llama.NewContext(m, llama.ContextParams{NCtx: 256, Threads: 1, Observer: &llama.Observer{
			Prefixes: []string{"ffn_moe_topk"}, Func: func(*llama.Tensor) bool { return true },
		}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := llama.NewBatch(512, 4)
		b.AddSequence([]llama.Token{1, 50, 60}, 0, 0)
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		b.Close()
		c.Close()
	}
	if g := heapGrowth(100, contexts); g > 2<<10 {
		t.Errorf("context+batch+observer round: C heap grows %d bytes per round, want < 2 KiB", g)
	}
	samplers := func() {
		s, _ := llama.NewSampler(llama.SamplerParams{Temperature: 0.7, TopK: 10, TopP: 0.9, MinP: 0.05, Seed: 1, PenaltyLastN: 8, RepeatPenalty: 1.1, Vocab: m.Vocab()})
		if _, err := s.Sample(ctx0, -1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := m.Vocab().Tokenize("leak check", true, false); err != nil {
			t.Fatal(err)
		}
	}
	if g := heapGrowth(200, samplers); g > 16 {
		t.Errorf("sampler+tokenize round: C heap grows %d bytes per round, want 0", g)
	}

	// A model load/unload: llama.cpp at the pinned commit itself keeps
	// about 100 bytes per tensor on each load after llama_model_free
	// (measured here: ~4.8 KB for this 43-tensor model, with or without
	// mmap). The bound is far below the model's own buffers, so a model
	// that Close failed to free would still fail it.
	g := heapGrowth(30, func() {
		m, err := llama.LoadModel(path, llama.ModelParams{NoMmap: true})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
	})
	t.Logf("model load/unload: C heap grows %d bytes per round", g)
	if g > 64<<10 {
		t.Errorf("model load/unload: C heap grows %d bytes per round, want < 64 KiB", g)
	}

	// Adapters: one closed by hand, one applied to a context and left for
	// the model to free (llama_model_free frees the adapters still open).
	// Either path leaking would cost the adapter's tensors, ~100 KiB here.
	spec, _ := modelgen.Preset("tiny-moe")
	lora := filepath.Join(t.TempDir(), "lora.gguf")
	if err := modelgen.WriteLoRA(lora, spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 8); err != nil {
		t.Fatal(err)
	}
	g = heapGrowth(20, func() {
		m, err := llama.LoadModel(path, llama.ModelParams{})
		if err != nil {
			t.Fatal(err)
		}
		a1, err := m.LoadAdapter(lora)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := m.LoadAdapter(lora)
		if err != nil {
			t.Fatal(err)
		}
		c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetAdapter(a2, 1); err != nil {
			t.Fatal(err)
		}
		if err := a1.Close(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		m.Close()
	})
	t.Logf("model+adapters load/unload: C heap grows %d bytes per round", g)
	if g > 64<<10 {
		t.Errorf("model+adapters load/unload: C heap grows %d bytes per round, want < 64 KiB", g)
	}
}
