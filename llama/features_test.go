package llama_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

func TestLoRAChangesAndRestoresLogits(t *testing.T) {
	spec, _ := modelgen.Preset("tiny-dense")
	path := testModel(t, "tiny-dense", gguf.TypeF32)
	lora := filepath.Join(t.TempDir(), "tiny-dense-lora.gguf")
	if err := modelgen.WriteLoRA(lora, spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 8); err != nil {
		t.Fatal(err)
	}
	m := load(t, path, llama.ModelParams{})
	c := newContext(t, m, llama.ContextParams{NCtx: 256})
	b, _ := llama.NewBatch(16, 1)
	defer b.Close()
	prompt := []llama.Token{1, 60, 61, 62, 63}
	logits := func() []float32 {
		c.ClearMemory(true)
		b.Clear()
		b.AddSequence(prompt, 0, 0)
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		l, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(l)
	}
	base := logits()
	a, err := m.LoadAdapter(lora)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Meta("adapter.type"); !ok || v != "lora" {
		t.Errorf("adapter.type: got %q, %v; want lora", v, ok)
	}
	if err := c.SetAdapter(a, 1); err != nil {
		t.Fatal(err)
	}
	with := logits()
	var maxDiff float64
	for i := range base {
		maxDiff = max(maxDiff, float64(abs32(with[i]-base[i])))
	}
	if maxDiff < 1e-3 {
		t.Fatalf("adapter changed logits by at most %g, want a visible change", maxDiff)
	}
	if err := c.RemoveAdapter(a); err != nil {
		t.Fatal(err)
	}
	if got := logits(); !slices.Equal(got, base) {
		t.Fatal("logits after RemoveAdapter differ from the base logits")
	}
	if err := c.RemoveAdapter(a); !errors.Is(err, llama.ErrAdapterNotSet) {
		t.Errorf("second RemoveAdapter: got %v, want ErrAdapterNotSet", err)
	}
	c.SetAdapter(a, 0.5)
	half := logits()
	if slices.Equal(half, base) || slices.Equal(half, with) {
		t.Error("scale 0.5 gave the logits of scale 0 or 1")
	}
	if err := c.ClearAdapters(); err != nil {
		t.Fatal(err)
	}
	if got := logits(); !slices.Equal(got, base) {
		t.Fatal("logits after ClearAdapters differ from the base logits")
	}

	// A second context that decoded without the adapter, then gets it:
	// llama.cpp must not reuse the graph built without it.
	c2 := newContext(t, m, llama.ContextParams{NCtx: 256})
	decode2 := func() []float32 {
		c2.ClearMemory(true)
		b.Clear()
		b.AddSequence(prompt, 0, 0)
		if err := c2.Decode(b); err != nil {
			t.Fatal(err)
		}
		l, _ := c2.Logits(-1)
		return slices.Clone(l)
	}
	if got := decode2(); !slices.Equal(got, base) {
		t.Error("second context without adapter: logits differ from the base logits")
	}
	if err := c2.SetAdapter(a, 1); err != nil {
		t.Fatal(err)
	}
	if got := decode2(); !slices.Equal(got, with) {
		t.Error("adapter set after the first decode: logits differ from the adapter's")
	}
	// Closing an adapter a context holds is refused, not a use-after-free.
	if err := a.Close(); !errors.Is(err, llama.ErrInUse) {
		t.Errorf("Close of an applied adapter: got %v, want ErrInUse", err)
	}
	if got := decode2(); !slices.Equal(got, with) {
		t.Error("after the refused Close the adapter no longer applies")
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close once no context holds the adapter: %v", err)
	}
	if err := c.SetAdapter(a, 1); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("SetAdapter of a closed adapter: got %v, want ErrClosed", err)
	}
	// An adapter for another shape must be refused, not crash.
	moe, _ := modelgen.Preset("tiny-moe")
	moe.Embd *= 2
	moe.FF *= 2
	bad := filepath.Join(t.TempDir(), "bad-lora.gguf")
	if err := modelgen.WriteLoRA(bad, moe, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadAdapter(bad); err == nil {
		t.Error("adapter of mismatched shape: got nil error")
	} else {
		t.Logf("mismatched adapter: %v", err)
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestObserverMoEExperts checks the eval callback on the router: every MoE
// layer reports, for every token of the batch, ExpertUsed valid and
// distinct expert ids.
func TestObserverMoEExperts(t *testing.T) {
	spec, _ := modelgen.Preset("tiny-moe")
	m := load(t, testModel(t, "tiny-moe", gguf.TypeQ8_0), llama.ModelParams{})
	type obs struct {
		layer int
		shape [4]int64
		ids   []int32
	}
	var seen []obs
	c := newContext(t, m, llama.ContextParams{NCtx: 256, Observer: &llama.Observer{
		Prefixes: []string{"ffn_moe_topk"},
		Func: func(tn *llama.Tensor) bool {
			ids, err := tn.Int32s()
			if err != nil {
				t.Errorf("Int32s(%s): %v", tn.Name(), err)
				return true
			}
			if !tn.HasPrefix("ffn_moe_topk") {
				t.Errorf("observer got %s, outside its prefix", tn.Name())
			}
			seen = append(seen, obs{layer: tn.Layer(), shape: tn.Shape(), ids: slices.Clone(ids)})
			return true
		},
	}})
	const nTok = 7
	b, _ := llama.NewBatch(nTok, 1)
	defer b.Close()
	b.AddSequence([]llama.Token{1, 84, 104, 101, 32, 99, 97}, 0, 0)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	if len(seen) != spec.Layers {
		t.Fatalf("got %d ffn_moe_topk tensors, want one per layer (%d)", len(seen), spec.Layers)
	}
	for i, o := range seen {
		if o.layer != i {
			t.Errorf("tensor %d: got layer %d, want %d", i, o.layer, i)
		}
		// llama.cpp drops the rows of tokens without output before the
		// last layer's FFN, so that layer routes only the one token whose
		// logits were asked for.
		wantTok := int64(nTok)
		if i == spec.Layers-1 {
			wantTok = 1
		}
		if o.shape != [4]int64{int64(spec.ExpertsUsed), wantTok, 1, 1} || len(o.ids) != spec.ExpertsUsed*int(wantTok) {
			t.Errorf("layer %d: got shape %v and %d ids, want [%d %d 1 1]", o.layer, o.shape, len(o.ids), spec.ExpertsUsed, wantTok)
			continue
		}
		for tok := 0; tok < int(wantTok); tok++ {
			row := o.ids[tok*spec.ExpertsUsed : (tok+1)*spec.ExpertsUsed]
			for j, id := range row {
				if id < 0 || int(id) >= spec.Experts {
					t.Errorf("layer %d token %d: expert id %d out of [0, %d)", o.layer, tok, id, spec.Experts)
				}
				if slices.Contains(row[:j], id) {
					t.Errorf("layer %d token %d: expert %d chosen twice in %v", o.layer, tok, id, row)
				}
			}
		}
	}
	// Single-token decodes report too.
	seen = nil
	b.Clear()
	b.Add(33, nTok, 0, true)
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	if len(seen) != spec.Layers || seen[0].shape[1] != 1 {
		t.Errorf("single-token decode: got %d observations (first %+v), want %d of 1 token", len(seen), seen, spec.Layers)
	}
}

// procStatus reads a "Vm…" or "Rss…" field of /proc/self/status in kB.
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// mapsFile reports whether path is mapped into this process.
func mapsFile(tb testing.TB, path string) bool {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		tb.Skipf("no /proc/self/maps: %v", err)
	}
	return strings.Contains(string(b), path)
}

// TestMmapAndMlock measures that the options take effect: with mmap the
// file is mapped; without it it is not; with mlock VmLck grows by at least
// the model's size.
func TestMmapAndMlock(t *testing.T) {
	path := testModel(t, "tiny-moe", gguf.TypeQ8_0)
	st, _ := os.Stat(path)

	m := load(t, path, llama.ModelParams{})
	if !mapsFile(t, path) {
		t.Error("default load: the model file is not in /proc/self/maps, want it mapped")
	}
	m.Close()
	if mapsFile(t, path) {
		t.Error("after Close the model file is still mapped")
	}

	m = load(t, path, llama.ModelParams{NoMmap: true})
	if mapsFile(t, path) {
		t.Error("NoMmap: the model file is mapped, want it read")
	}
	m.Close()

	if !llama.SupportsMlock() {
		t.Skip("mlock not supported")
	}
	before := procStatus(t, "VmLck")
	m = load(t, path, llama.ModelParams{Mlock: true})
	locked := procStatus(t, "VmLck") - before
	if uint64(locked)*1024 < m.Size() {
		t.Errorf("Mlock: VmLck grew by %d kB, want at least the model size %d kB (file %d kB)", locked, m.Size()/1024, st.Size()/1024)
	}
	m.Close()
	if after := procStatus(t, "VmLck"); after > before {
		t.Errorf("after Close VmLck is %d kB, want back to %d kB", after, before)
	}
}

// TestCorruptModels hands llama.cpp broken files: each must fail with an
// error that names the file, never crash the process.
func TestCorruptModels(t *testing.T) {
	good, err := os.ReadFile(testModel(t, "tiny-dense", gguf.TypeQ8_0))
	if err != nil {
		t.Fatal(err)
	}
	info, err := gguf.Open(testModel(t, "tiny-dense", gguf.TypeQ8_0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	flip := func(off int) []byte {
		b := slices.Clone(good)
		b[off] ^= 0xff
		return b
	}
	cases := map[string][]byte{
		"empty":               {},
		"garbage":             []byte("this is not a gguf file at all, just text"),
		"bad-magic":           flip(0),
		"bad-version":         flip(4),
		"huge-tensor-count":   flip(15),
		"truncated-header":    good[:20],
		"truncated-metadata":  good[:info.DataOffset/2],
		"truncated-at-data":   good[:info.DataOffset],
		"truncated-mid-data":  good[:int64(info.DataOffset)+(int64(len(good))-int64(info.DataOffset))/2],
		"truncated-last-byte": good[:len(good)-1],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".gguf")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := llama.LoadModel(p, llama.ModelParams{})
			if err == nil {
				m.Close()
				t.Fatalf("LoadModel(%s): got nil error", name)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := llama.LoadModel(filepath.Join(dir, "missing.gguf"), llama.ModelParams{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	if _, err := llama.LoadModel(dir, llama.ModelParams{}); err == nil {
		t.Error("directory: got nil error")
	}
}

// TestCorruptModelsEveryHeaderByte flips each byte of the header, metadata
// and tensor table of a real model, one at a time, and loads the result:
// every load must return (an error or, for harmless flips such as inside a
// description string, a model), never abort the process. It pins the
// checks in validate.go against llama.cpp's assertions.
func TestCorruptModelsEveryHeaderByte(t *testing.T) {
	quiet(t)
	src := testModel(t, "tiny-moe", gguf.TypeQ8_0)
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	info, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	stride := 1
	if testing.Short() {
		stride = 17
	}
	p := filepath.Join(t.TempDir(), "flipped.gguf")
	var loaded, refused int
	for off := 0; off < int(info.DataOffset); off += stride {
		b := slices.Clone(good)
		b[off] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := llama.LoadModel(p, llama.ModelParams{})
		if err != nil {
			refused++
			continue
		}
		loaded++
		m.Close()
	}
	t.Logf("%d header bytes flipped: %d refused, %d still loaded", loaded+refused, refused, loaded)
	if refused == 0 {
		t.Error("no flipped file was refused")
	}
}

// quiet silences llama.cpp's log for the rest of the test.
func quiet(t *testing.T) {
	llama.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { llama.SetLogger(nil) })
}
