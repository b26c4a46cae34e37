package llama_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// TestSystemInfoSIMD proves that build.sh's flags reached ggml's CPU code:
// every SIMD level the CPU has (as /proc/cpuinfo reports) must show up in
// llama_print_system_info(). A plain cgo build reports only LLAMAFILE.
func TestSystemInfoSIMD(t *testing.T) {
	info := llama.SystemInfo()
	t.Logf("system info: %s", info)
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, f := range strings.Fields(line) {
				flags[f] = true
			}
			break
		}
	}
	feats := llama.CPUFeatures()
	checks := []struct{ cpu, ggml string }{
		{"sse3", "SSE3"}, {"ssse3", "SSSE3"}, {"avx", "AVX"}, {"avx2", "AVX2"}, {"f16c", "F16C"}, {"fma", "FMA"},
		{"avx512f", "AVX512"}, {"avx512_vnni", "AVX512_VNNI"}, {"avx512_bf16", "AVX512_BF16"},
	}
	checked := 0
	for _, c := range checks {
		if !flags[c.cpu] {
			continue
		}
		checked++
		if !feats[c.ggml] {
			t.Errorf("CPU has %s but ggml was built without %s: got features %v", c.cpu, c.ggml, feats)
		}
	}
	if checked == 0 {
		t.Skip("CPU reports no x86 SIMD flags (not amd64?)")
	}
}

func TestDevices(t *testing.T) {
	devs := llama.Devices()
	if len(devs) == 0 {
		t.Fatal("got no backend devices, want at least the CPU")
	}
	var cpu bool
	for _, d := range devs {
		if d.Type == llama.DeviceCPU {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("got devices %+v, want a CPU device", devs)
	}
	if bs := llama.Backends(); len(bs) == 0 || bs[len(bs)-1] != "CPU" && bs[0] != "CPU" {
		t.Errorf("got backends %v, want CPU among them", bs)
	}
}

func TestLoadBackends(t *testing.T) {
	if _, err := llama.LoadBackends(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("LoadBackends(missing folder) = %v, want an error naming it", err)
	}
	before := len(llama.Devices())
	dir := t.TempDir()
	if libs, err := llama.LoadBackends(dir); len(libs) != 0 || err == nil || !strings.Contains(err.Error(), "no ggml backend library") {
		t.Errorf("LoadBackends(empty folder) = %v, %v; want nothing loaded and an error saying it holds no backend", libs, err)
	}
	// libggml-base is what backends link against, not a backend, and
	// other files are not libraries: both are passed over, so the error
	// names the one fake backend.
	for _, name := range []string{"libggml-base.so", "libggml-fake.so", "README"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a library"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := llama.LoadBackends(dir); err == nil || !strings.Contains(err.Error(), "libggml-fake.so") || strings.Contains(err.Error(), "libggml-base") {
		t.Errorf("LoadBackends(folder with a fake backend) = %v, want an error naming libggml-fake.so alone", err)
	}
	if n := len(llama.Devices()); n != before {
		t.Errorf("got %d devices after failed loads, want %d", n, before)
	}

	// On a machine with a GPU backend built (make cuda, or
	// kernels/cuda/check.sh): its devices appear, once however often the
	// folder is loaded.
	gpu := os.Getenv("STRATA_BACKEND_PATH")
	if gpu == "" {
		t.Skip("STRATA_BACKEND_PATH not set: no GPU backend to load")
	}
	for i := 0; i < 2; i++ {
		libs, err := llama.LoadBackends(gpu)
		if err != nil || len(libs) == 0 {
			t.Fatalf("LoadBackends(%s) = %v, %v; want its backends", gpu, libs, err)
		}
	}
	var gpus []string
	for _, d := range llama.Devices() {
		if d.Type == llama.DeviceGPU {
			gpus = append(gpus, d.Name)
		}
	}
	if len(gpus) == 0 || len(llama.Devices()) != before+len(gpus) {
		t.Errorf("after loading %s twice: GPU devices %v, %d devices in all, want some GPUs and %d+their number", gpu, gpus, len(llama.Devices()), before)
	}
	t.Logf("GPU devices: %v", gpus)
}

func TestLoadModelMetadata(t *testing.T) {
	tests := []struct {
		preset              string
		typ                 gguf.Type
		experts, expertUsed int
	}{
		{"tiny-dense", gguf.TypeF32, 0, 0},
		{"tiny-dense", gguf.TypeQ4_0, 0, 0},
		{"tiny-moe", gguf.TypeQ8_0, 8, 2},
		{"tiny-moe", gguf.TypeF16, 8, 2},
	}
	for _, tt := range tests {
		t.Run(tt.preset+"-"+tt.typ.String(), func(t *testing.T) {
			spec, _ := modelgen.Preset(tt.preset)
			m := load(t, testModel(t, tt.preset, tt.typ), llama.ModelParams{})
			if got := m.Architecture(); got != "llama" {
				t.Errorf("Architecture: got %q, want llama", got)
			}
			if got := m.Layers(); got != spec.Layers {
				t.Errorf("Layers: got %d, want %d", got, spec.Layers)
			}
			if got := m.EmbeddingSize(); got != spec.Embd {
				t.Errorf("EmbeddingSize: got %d, want %d", got, spec.Embd)
			}
			if got := m.ExpertCount(); got != tt.experts {
				t.Errorf("ExpertCount: got %d, want %d", got, tt.experts)
			}
			if got := m.ExpertUsed(); got != tt.expertUsed {
				t.Errorf("ExpertUsed: got %d, want %d", got, tt.expertUsed)
			}
			if got, want := int64(m.ParamCount()), spec.Params(); got != want {
				t.Errorf("ParamCount: got %d, want %d", got, want)
			}
			if m.Size() == 0 || m.Description() == "" {
				t.Errorf("got size %d, description %q; want both set", m.Size(), m.Description())
			}
			if got := m.Vocab().Size(); got != modelgen.VocabSize {
				t.Errorf("vocab size: got %d, want %d", got, modelgen.VocabSize)
			}
			if v, ok := m.Meta("general.name"); !ok || v != "strata-"+tt.preset {
				t.Errorf("Meta(general.name): got %q, %v", v, ok)
			}
		})
	}
}

// TestMethodsAfterClose calls every method of a closed Context, Sampler,
// Model and Vocab: none may hand llama.cpp a NULL or freed pointer; those
// that return errors return ErrClosed.
func TestMethodsAfterClose(t *testing.T) {
	m, err := llama.LoadModel(testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	v := m.Vocab()
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	if n := c.NCtx() + c.NBatch() + c.NUbatch() + c.NSeqMax() + c.NCtxSeq(); n != 0 {
		t.Errorf("sizes of a closed context: got %d, want 0", n)
	}
	c.SetThreads(2, 2)
	c.Threads()
	c.ClearMemory(true)
	c.RemoveSeq(0, -1, -1)
	c.CopySeq(0, 1, -1, -1)
	c.KeepSeq(0)
	c.ShiftSeq(0, 0, 1, 1)
	c.CanShift()
	c.SeqPosRange(0)
	c.Perf()
	c.ResetPerf()
	c.Synchronize()
	c.Interrupt()
	b, _ := llama.NewBatch(4, 1)
	defer b.Close()
	b.Add(1, 0, 0, true)
	for name, err := range map[string]error{
		"Decode":        c.Decode(b),
		"SetAdapter":    c.ClearAdapters(),
		"Logits":        func() error { _, err := c.Logits(0); return err }(),
		"Sample":        func() error { _, err := s.Sample(c, -1); return err }(),
		"Tokenize(pre)": func() error { _, err := v.Tokenize("x", false, false); return err }(),
	} {
		if name == "Tokenize(pre)" {
			if err != nil {
				t.Errorf("Tokenize before the model's Close: %v", err)
			}
			continue
		}
		if !errors.Is(err, llama.ErrClosed) {
			t.Errorf("%s on a closed context: got %v, want ErrClosed", name, err)
		}
	}
	s.Accept(1)
	s.Reset()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Description() != "" || m.Size() != 0 || m.ParamCount() != 0 || m.Layers() != 0 || m.EmbeddingSize() != 0 ||
		m.Heads() != 0 || m.HeadsKV() != 0 || m.TrainContext() != 0 || m.MetaMap() != nil || m.ExpertCount() != 0 {
		t.Error("a closed model reports non-zero facts")
	}
	if _, ok := m.Meta("general.architecture"); ok {
		t.Error("Meta of a closed model: got ok")
	}
	if v.Size() != 0 || v.BOS() != llama.NullToken || v.EOS() != llama.NullToken || v.EOT() != llama.NullToken || v.AddBOS() || v.IsEOG(2) || v.IsControl(1) {
		t.Error("the vocabulary of a closed model reports tokens")
	}
	if _, err := v.Tokenize("x", true, false); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Tokenize after the model's Close: got %v, want ErrClosed", err)
	}
	if _, err := v.Piece(1, false); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Piece after the model's Close: got %v, want ErrClosed", err)
	}
	if _, err := v.Text(1); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Text after the model's Close: got %v, want ErrClosed", err)
	}
	if _, err := v.Detokenize([]llama.Token{1}, false, false); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("Detokenize after the model's Close: got %v, want ErrClosed", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	m, err := llama.LoadModel(testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := c.Close(); err != nil {
			t.Fatalf("Context.Close #%d: %v", i, err)
		}
	}
	b, _ := llama.NewBatch(4, 1)
	b.Add(1, 0, 0, true)
	if err := c.Decode(b); err == nil || !errorsIs(err, llama.ErrClosed) {
		t.Errorf("Decode after Close: got %v, want ErrClosed", err)
	}
	b.Close()
	b.Close()
	for i := 0; i < 2; i++ {
		if err := m.Close(); err != nil {
			t.Fatalf("Model.Close #%d: %v", i, err)
		}
	}
	if _, err := llama.NewContext(m, llama.ContextParams{}); !errorsIs(err, llama.ErrClosed) {
		t.Errorf("NewContext on closed model: got %v, want ErrClosed", err)
	}
}

// TestSystemInfoDefines checks the CPU backend defines that upstream's
// CMake sets and llama/internal/ggmlcpu must set too: without REPACK the
// Q4_0/Q4_K prompt kernels run at about half of upstream's speed, without
// LLAMAFILE the tinyBLAS sgemm is missing. Threads come from ggml's own
// pool, not OpenMP: an OpenMP build of the same code measured no faster
// here (pp512 Q4_0, 2 threads: 168-179 vs 171-176 t/s, same run).
func TestSystemInfoDefines(t *testing.T) {
	feats := llama.CPUFeatures()
	for _, want := range []string{"REPACK", "LLAMAFILE"} {
		if !feats[want] {
			t.Errorf("ggml's CPU backend was built without %s: got features %v", want, feats)
		}
	}
	if feats["OPENMP"] {
		t.Errorf("ggml's CPU backend was built with OpenMP; llama/internal/ggmlcpu uses ggml's thread pool")
	}
}

// TestCloseOrder closes a model, an adapter and a context in unsafe orders:
// each refusal is ErrInUse, nothing is freed under a live user, and the
// safe order then succeeds.
func TestCloseOrder(t *testing.T) {
	spec, _ := modelgen.Preset("tiny-dense")
	path := testModel(t, "tiny-dense", gguf.TypeF32)
	lora := filepath.Join(t.TempDir(), "lora.gguf")
	if err := modelgen.WriteLoRA(lora, spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 4); err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.LoadAdapter(lora)
	if err != nil {
		t.Fatal(err)
	}
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetAdapter(a, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, llama.ErrInUse) {
		t.Fatalf("Model.Close with an open context: got %v, want ErrInUse", err)
	}
	if err := a.Close(); !errors.Is(err, llama.ErrInUse) {
		t.Fatalf("Adapter.Close while applied: got %v, want ErrInUse", err)
	}
	// Both are still usable after the refusals.
	b, _ := llama.NewBatch(4, 1)
	defer b.Close()
	b.AddSequence([]llama.Token{1, 2, 3}, 0, 0)
	if err := c.Decode(b); err != nil {
		t.Fatalf("decode after refused closes: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The model frees its open adapters; the adapter's Close is then a no-op.
	if err := m.Close(); err != nil {
		t.Fatalf("Model.Close after its context: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Adapter.Close after its model: %v", err)
	}
	if _, err := llama.NewContext(m, llama.ContextParams{}); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("NewContext on a closed model: got %v, want ErrClosed", err)
	}
	if _, err := m.LoadAdapter(lora); !errors.Is(err, llama.ErrClosed) {
		t.Errorf("LoadAdapter on a closed model: got %v, want ErrClosed", err)
	}
}

// TestInterruptScopedToDecode checks that an interrupt meant for one decode
// never stops a later one (a context.AfterFunc can fire after its decode
// returned), that one for the running decode does, and that Interrupt
// racing Close neither crashes nor writes into freed memory.
func TestInterruptScopedToDecode(t *testing.T) {
	m := load(t, testModel(t, "tiny-dense", gguf.TypeF32), llama.ModelParams{})
	var c *llama.Context
	var stale, current uint64
	var fire uint64
	obs := &llama.Observer{Prefixes: []string{"attn_norm"}, Func: func(*llama.Tensor) bool {
		if fire != 0 {
			c.InterruptDecode(fire)
		}
		return true
	}}
	c = newContext(t, m, llama.ContextParams{NCtx: 64, Observer: obs})
	b, _ := llama.NewBatch(4, 1)
	defer b.Close()
	decode := func() error {
		b.Clear()
		b.AddSequence([]llama.Token{1, 2}, 0, 0)
		c.ClearMemory(true)
		return c.Decode(b)
	}
	if err := decode(); err != nil {
		t.Fatal(err)
	}
	stale = c.DecodeNumber()
	fire = stale
	if err := decode(); err != nil {
		t.Fatalf("an interrupt for the previous decode stopped this one: %v", err)
	}
	current = c.DecodeNumber() + 1
	fire = current
	if err := decode(); !errors.Is(err, llama.ErrAborted) {
		t.Fatalf("interrupt of the running decode: got %v, want ErrAborted", err)
	}
	fire = 0
	if err := decode(); err != nil {
		t.Fatalf("decode after an aborted one: %v", err)
	}

	// Interrupt from another goroutine while contexts open and close.
	stop := make(chan struct{})
	var cur atomic.Pointer[llama.Context]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				if x := cur.Load(); x != nil {
					x.Interrupt()
				}
			}
		}
	}()
	for i := 0; i < 50; i++ {
		x, err := llama.NewContext(m, llama.ContextParams{NCtx: 64})
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(x)
		x.Close()
	}
	close(stop)
	<-done
}

// TestThreadPools: a context computes on persistent CPU thread pools
// (one when generation and batches use the same count, two when not),
// SetThreads replaces them, and greedy decoding is the same on each.
func TestThreadPools(t *testing.T) {
	m, err := llama.LoadModel(testModel(t, "tiny-dense", gguf.TypeQ8_0), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 128, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if has, shared := c.Pools(); !has || !shared {
		t.Fatalf("2 and 2 threads: pools %v, shared %v; want one shared pool", has, shared)
	}
	prompt := []llama.Token{1, 20, 30, 40}
	want := greedy(t, c, prompt, 8)
	for _, th := range [][2]int{{1, 2}, {2, 1}, {1, 1}} {
		c.SetThreads(th[0], th[1])
		if g, b := c.Threads(); g != th[0] || b != th[1] {
			t.Fatalf("SetThreads(%d, %d): Threads %d, %d", th[0], th[1], g, b)
		}
		if has, shared := c.Pools(); !has || shared != (th[0] == th[1]) {
			t.Errorf("%v threads: pools %v, shared %v", th, has, shared)
		}
		c.ClearMemory(true)
		if got := greedy(t, c, prompt, 8); !slices.Equal(got, want) {
			t.Errorf("%v threads: got %v, want %v", th, got, want)
		}
	}
}
