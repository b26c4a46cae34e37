package llama

// #include "shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"

	"github.com/strata-llm/strata/gguf"
)

// ModelParams configures LoadModel. The zero value loads with llama.cpp's
// defaults except where a field says otherwise.
type ModelParams struct {
	// NoMmap reads the weights into memory instead of mapping the file.
	// Mapping (the default) is what lets the genome page weights.
	NoMmap bool
	// Mlock locks the model's pages in RAM (mlock), as llama.cpp --mlock.
	Mlock bool
	// GPULayers is the number of layers to offload to GPU devices; -1
	// offloads all. It has no effect without a GPU backend.
	GPULayers int
	// MainGPU is the index of the GPU used for the whole model when
	// splitting is off.
	MainGPU int
	// SplitMode is how the model is spread over several GPUs, as
	// llama.cpp's -sm; the zero value is llama.cpp's default, by layer.
	SplitMode SplitMode
	// Devices, if set, are the names of the devices (Device.Name, e.g.
	// "CUDA1") the model is offloaded to, in order, as llama.cpp's -dev;
	// nil lets llama.cpp use every GPU. CPU devices cannot be named: what
	// is not offloaded always runs on the CPU. NoDevices offloads nothing.
	Devices   []string
	NoDevices bool
	// TensorOverrides places tensors whose names match a regular
	// expression in a named buffer type, as llama.cpp's -ot does. The
	// first match wins.
	TensorOverrides []TensorOverride
	// CPUMoE keeps every MoE expert tensor (ffn_{up,down,gate}_exps) in
	// host memory, as llama.cpp's --cpu-moe does.
	CPUMoE bool
	// NCPUMoE keeps the expert tensors of the first NCPUMoE layers in host
	// memory, as llama.cpp's --n-cpu-moe does.
	NCPUMoE int
	// NoExtraBufferTypes turns off llama.cpp's extra buffer types (weight
	// repacking for the CPU's SIMD kernels). Repacked weights live in
	// anonymous memory, not in the file mapping, so the genome cannot page
	// them; see DESIGN.md.
	NoExtraBufferTypes bool
	// CheckTensors validates tensor data (NaN/Inf, quant block ranges)
	// while loading.
	CheckTensors bool
	// VocabOnly loads the vocabulary and metadata but no weights.
	VocabOnly bool
	// Progress, if set, is called with the load progress in [0, 1];
	// returning false cancels the load with ErrLoadCancelled. It runs on
	// the loading goroutine.
	Progress func(progress float32) bool
}

// SplitMode is llama.cpp's enum llama_split_mode, with the default first.
type SplitMode int

// Split modes. SplitNone keeps the whole model on MainGPU; SplitRow and
// SplitTensor split tensors across the GPUs.
const (
	SplitLayer SplitMode = iota
	SplitNone
	SplitRow
	SplitTensor
)

func (s SplitMode) String() string {
	switch s {
	case SplitLayer:
		return "layer"
	case SplitNone:
		return "none"
	case SplitRow:
		return "row"
	case SplitTensor:
		return "tensor"
	}
	return fmt.Sprintf("SplitMode(%d)", int(s))
}

func (s SplitMode) c() (C.enum_llama_split_mode, error) {
	switch s {
	case SplitLayer:
		return C.LLAMA_SPLIT_MODE_LAYER, nil
	case SplitNone:
		return C.LLAMA_SPLIT_MODE_NONE, nil
	case SplitRow:
		return C.LLAMA_SPLIT_MODE_ROW, nil
	case SplitTensor:
		return C.LLAMA_SPLIT_MODE_TENSOR, nil
	}
	return 0, fmt.Errorf("llama: load model: unknown split mode %d", int(s))
}

// TensorOverride is one tensor-placement rule: tensors whose names match
// Pattern (a regular expression, RE2 syntax checked here, std::regex used
// by llama.cpp) go to the buffer type called BufferType, e.g. "CPU".
type TensorOverride struct {
	Pattern    string
	BufferType string
}

// expertPattern matches the stacked MoE expert tensors of every layer.
const expertPattern = `\.ffn_(up|down|gate)_exps`

// Model is a loaded GGUF model. Its methods are safe for concurrent use;
// Close must not race with other calls.
type Model struct {
	c     *C.struct_llama_model
	vocab *Vocab
	path  string

	// mu guards the model's lifetime against its contexts and adapters:
	// Close, NewContext, LoadAdapter, Adapter.Close, adapter changes and
	// Context.Close all take it, so none acts on a freed model.
	mu       sync.Mutex
	contexts int        // open contexts
	adapters []*Adapter // loaded adapters, freed by llama.cpp with the model
	onClose  map[int]func()
	nextHook int
}

// OnClose registers fn to run when the model is closed, under the model's
// lock and before llama.cpp frees the model and unmaps its file. A genome
// attached to llama.cpp's mapping detaches there (engine.NewBudget does),
// so nothing can act on that address range once it is released and
// possibly reused. fn must not call the model's methods. The returned
// function unregisters fn.
func (m *Model) OnClose(fn func()) (remove func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.onClose == nil {
		m.onClose = map[int]func(){}
	}
	id := m.nextHook
	m.nextHook++
	m.onClose[id] = fn
	return func() {
		m.mu.Lock()
		delete(m.onClose, id)
		m.mu.Unlock()
	}
}

// loadProgress bridges llama.cpp's progress callback to ModelParams.Progress
// and a context.
type loadProgress struct {
	ctx       context.Context
	fn        func(float32) bool
	cancelled bool
	panicked  error // fn panicked (see callbacks.go)
}

func (p *loadProgress) report(v float32) bool {
	if p.ctx != nil && p.ctx.Err() != nil {
		p.cancelled = true
		return false
	}
	if p.fn != nil && !p.fn(v) {
		p.cancelled = true
		return false
	}
	return true
}

// LoadModel loads the GGUF model at path.
func LoadModel(path string, params ModelParams) (*Model, error) {
	return LoadModelContext(context.Background(), path, params)
}

// LoadModelContext loads the GGUF model at path; cancelling ctx stops the
// load at the next progress report and returns ErrLoadCancelled.
func LoadModelContext(ctx context.Context, path string, params ModelParams) (*Model, error) {
	Init()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoadCancelled, err)
	}
	// llama.cpp's own message for a missing file is a generic failure;
	// say exactly what is wrong before handing it the path.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("llama: load model: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("llama: load model: %w", &fs.PathError{Op: "open", Path: path, Err: errors.New("is a directory")})
	}
	// llama.cpp aborts the whole process on some malformed files (e.g.
	// GGML_ASSERT(!key.empty()) for a zero-length key). The pure-Go
	// validator reads the same header and tensor table with bounds checks
	// first, so a corrupt file is an error naming the field and offset
	// instead of a crash.
	//
	// llama.cpp then opens the very file that was validated: the file is
	// opened once, and llama.cpp is given /proc/self/fd/N for it, so a file
	// swapped or rewritten at the path in between cannot reach llama.cpp
	// unvalidated.
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("llama: load model: %w", err)
	}
	defer fh.Close()
	info, err := gguf.Read(fh, st.Size())
	if err == nil {
		info.Path = path
		err = Validate(info)
	} else {
		err = fmt.Errorf("%s: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("llama: load model: %w", err)
	}
	loadPath := pinnedPath(fh, path, info)

	cp := C.llama_model_default_params()
	// The mode is always explicit: llama.cpp's AUTO turns mapping off when
	// any device lacks mmap support, and the genome pages mapped weights.
	switch {
	case params.NoMmap && params.Mlock:
		cp.load_mode = C.LLAMA_LOAD_MODE_MLOCK
	case params.NoMmap:
		cp.load_mode = C.LLAMA_LOAD_MODE_NONE
	case params.Mlock:
		cp.load_mode = C.LLAMA_LOAD_MODE_MMAP_MLOCK
	default:
		cp.load_mode = C.LLAMA_LOAD_MODE_MMAP
	}
	cp.n_gpu_layers = C.int32_t(params.GPULayers)
	if params.GPULayers < 0 {
		cp.n_gpu_layers = 999
	}
	cp.main_gpu = C.int32_t(params.MainGPU)
	if cp.split_mode, err = params.SplitMode.c(); err != nil {
		return nil, err
	}
	cdevs, freeDevices, err := buildDevices(params.Devices, params.NoDevices)
	if err != nil {
		return nil, err
	}
	defer freeDevices()
	if cdevs != nil {
		cp.devices = cdevs
	}
	cp.use_extra_bufts = C.bool(!params.NoExtraBufferTypes)
	cp.check_tensors = C.bool(params.CheckTensors)
	cp.vocab_only = C.bool(params.VocabOnly)

	overrides := params.TensorOverrides
	if params.CPUMoE {
		overrides = append(overrides, TensorOverride{Pattern: expertPattern, BufferType: "CPU"})
	}
	for i := 0; i < params.NCPUMoE; i++ {
		overrides = append(overrides, TensorOverride{Pattern: fmt.Sprintf(`blk\.%d%s`, i, expertPattern), BufferType: "CPU"})
	}
	cov, freeOverrides, err := buildOverrides(overrides)
	if err != nil {
		return nil, err
	}
	defer freeOverrides()
	if cov != nil {
		cp.tensor_buft_overrides = cov
	}

	prog := &loadProgress{ctx: ctx, fn: params.Progress}
	h := cgo.NewHandle(prog)
	defer h.Delete()
	C.strata_set_progress(&cp, C.uintptr_t(h))

	cpath := C.CString(loadPath)
	defer C.free(unsafe.Pointer(cpath))
	logSink.takeLastError()
	cm := C.llama_model_load_from_file(cpath, cp)
	if cm == nil {
		if prog.panicked != nil {
			return nil, fmt.Errorf("llama: load model %s: %w", path, prog.panicked)
		}
		if prog.cancelled {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrLoadCancelled, err)
			}
			return nil, ErrLoadCancelled
		}
		return nil, &Error{Op: "LoadModel", Detail: fmt.Sprintf("%s: %s", path, orDefault(logSink.takeLastError(), "llama.cpp could not load the file"))}
	}
	m := &Model{c: cm, path: path}
	m.vocab = &Vocab{c: C.llama_model_get_vocab(cm), model: m}
	runtime.SetFinalizer(m, func(m *Model) {
		if m.c != nil {
			logSink.emit(ggmlLogWarn, "strata: llama.Model for "+m.path+" was garbage-collected without Close; its memory leaks")
		}
	})
	return m, nil
}

// pinnedPath returns a path that names the open file fh itself
// (/proc/self/fd/N on Linux), or path where there is none. A split model
// keeps its path: llama.cpp finds the other splits by the first one's name.
func pinnedPath(fh *os.File, path string, info *gguf.File) string {
	if n, ok := info.Uint("split.count"); ok && n > 1 {
		return path
	}
	p := fmt.Sprintf("/proc/self/fd/%d", fh.Fd())
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return path
	}
	return p
}

// buildDevices turns device names into llama.cpp's NULL-terminated device
// list in C memory (an empty list for none), or nil for llama.cpp's own
// choice. The returned func frees it; llama.cpp copies the list at load.
func buildDevices(names []string, none bool) (*C.ggml_backend_dev_t, func(), error) {
	if len(names) == 0 && !none {
		return nil, func() {}, nil
	}
	if none && len(names) > 0 {
		return nil, nil, fmt.Errorf("llama: load model: devices %q and NoDevices both set", names)
	}
	arr := (*C.ggml_backend_dev_t)(C.calloc(C.size_t(len(names)+1), C.size_t(unsafe.Sizeof(C.ggml_backend_dev_t(nil)))))
	items := unsafe.Slice(arr, len(names)+1)
	for i, name := range names {
		cname := C.CString(name)
		d := C.ggml_backend_dev_by_name(cname)
		C.free(unsafe.Pointer(cname))
		if d == nil || C.ggml_backend_dev_type(d) == C.GGML_BACKEND_DEVICE_TYPE_CPU {
			C.free(unsafe.Pointer(arr))
			var have []string
			for _, dev := range Devices() {
				if dev.Type != DeviceCPU {
					have = append(have, dev.Name)
				}
			}
			what := "no such device"
			if d != nil {
				what = "a CPU device (what is not offloaded runs on the CPU anyway)"
			}
			return nil, nil, fmt.Errorf("llama: load model: device %q: %s; offload devices: %q", name, what, have)
		}
		items[i] = d
	}
	return arr, func() { C.free(unsafe.Pointer(arr)) }, nil
}

// buildOverrides turns the rules into llama.cpp's NULL-terminated
// llama_model_tensor_buft_override array in C memory. The returned func
// frees it; llama.cpp reads the array only while loading.
func buildOverrides(rules []TensorOverride) (*C.struct_llama_model_tensor_buft_override, func(), error) {
	if len(rules) == 0 {
		return nil, func() {}, nil
	}
	bufts := bufferTypes()
	n := len(rules) + 1
	size := C.size_t(n) * C.size_t(unsafe.Sizeof(C.struct_llama_model_tensor_buft_override{}))
	arr := (*C.struct_llama_model_tensor_buft_override)(C.calloc(1, size))
	items := unsafe.Slice(arr, n)
	free := func() {
		for i := range items {
			if items[i].pattern != nil {
				C.free(unsafe.Pointer(items[i].pattern))
			}
		}
		C.free(unsafe.Pointer(arr))
	}
	for i, r := range rules {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			free()
			return nil, nil, fmt.Errorf("llama: tensor override %d: pattern %q: %w", i, r.Pattern, err)
		}
		bt, ok := bufts[r.BufferType]
		if !ok {
			free()
			names := make([]string, 0, len(bufts))
			for k := range bufts {
				names = append(names, k)
			}
			return nil, nil, fmt.Errorf("%w %q in tensor override %d (have %v)", ErrUnknownBufferType, r.BufferType, i, names)
		}
		items[i].pattern = C.CString(r.Pattern)
		items[i].buft = bt
	}
	return arr, free, nil
}

// bufferTypes maps buffer-type names ("CPU", "CUDA0", "CUDA_Host", ...) to
// the buffer types of the registered devices, as llama.cpp's -ot parser
// does.
func bufferTypes() map[string]C.ggml_backend_buffer_type_t {
	m := map[string]C.ggml_backend_buffer_type_t{}
	n := int(C.ggml_backend_dev_count())
	for i := 0; i < n; i++ {
		d := C.ggml_backend_dev_get(C.size_t(i))
		if bt := C.ggml_backend_dev_buffer_type(d); bt != nil {
			m[C.GoString(C.ggml_backend_buft_name(bt))] = bt
		}
		if bt := C.ggml_backend_dev_host_buffer_type(d); bt != nil {
			m[C.GoString(C.ggml_backend_buft_name(bt))] = bt
		}
	}
	return m
}

// Close frees the model and every adapter loaded for it that is still
// open (llama_model_free frees them). It returns ErrInUse, and frees
// nothing, while a context created from the model is open. It is
// idempotent.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return nil
	}
	if m.contexts > 0 {
		return fmt.Errorf("llama: close model %s: %w: %d context(s) open", m.path, ErrInUse, m.contexts)
	}
	for _, fn := range m.onClose {
		fn()
	}
	m.onClose = nil
	for _, a := range m.adapters {
		a.c = nil // freed by llama_model_free
	}
	m.adapters = nil
	C.llama_model_free(m.c)
	m.c = nil
	m.vocab.c = nil // the vocabulary was part of the model
	runtime.SetFinalizer(m, nil)
	return nil
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// Vocab returns the model's vocabulary. It lives as long as the model.
func (m *Model) Vocab() *Vocab { return m.vocab }

// Description is llama.cpp's one-line description, e.g. "llama 1B Q4_0".
func (m *Model) Description() string {
	if m.c == nil {
		return ""
	}
	var buf [256]C.char
	n := C.llama_model_desc(m.c, &buf[0], C.size_t(len(buf)))
	if n < 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// Size is the total byte size of the model's tensors.
func (m *Model) Size() uint64 {
	if m.c == nil {
		return 0
	}
	return uint64(C.llama_model_size(m.c))
}

// ParamCount is the number of parameters.
func (m *Model) ParamCount() uint64 {
	if m.c == nil {
		return 0
	}
	return uint64(C.llama_model_n_params(m.c))
}

// Layers is the number of transformer blocks.
func (m *Model) Layers() int {
	if m.c == nil {
		return 0
	}
	return int(C.llama_model_n_layer(m.c))
}

// EmbeddingSize is n_embd.
func (m *Model) EmbeddingSize() int {
	if m.c == nil {
		return 0
	}
	return int(C.llama_model_n_embd(m.c))
}

// Heads is the number of attention heads; HeadsKV the number of KV heads.
func (m *Model) Heads() int {
	if m.c == nil {
		return 0
	}
	return int(C.llama_model_n_head(m.c))
}

func (m *Model) HeadsKV() int {
	if m.c == nil {
		return 0
	}
	return int(C.llama_model_n_head_kv(m.c))
}

// TrainContext is the context length the model was trained with.
func (m *Model) TrainContext() int {
	if m.c == nil {
		return 0
	}
	return int(C.llama_model_n_ctx_train(m.c))
}

// Meta returns a metadata value rendered as a string, as llama.cpp stores
// it; ok is false when the key is absent. Arrays are not available.
func (m *Model) Meta(key string) (string, bool) {
	if m.c == nil {
		return "", false
	}
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	n := C.llama_model_meta_val_str(m.c, ckey, nil, 0)
	if n < 0 {
		return "", false
	}
	buf := make([]byte, int(n)+1)
	C.llama_model_meta_val_str(m.c, ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return string(buf[:n]), true
}

// MetaMap returns every scalar metadata key and value.
func (m *Model) MetaMap() map[string]string {
	if m.c == nil {
		return nil
	}
	n := int(C.llama_model_meta_count(m.c))
	out := make(map[string]string, n)
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		k := C.llama_model_meta_key_by_index(m.c, C.int32_t(i), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if k < 0 {
			continue
		}
		key := C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
		v := C.llama_model_meta_val_str_by_index(m.c, C.int32_t(i), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if v < 0 {
			continue
		}
		out[key] = C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
	}
	return out
}

// Architecture is general.architecture, e.g. "llama".
func (m *Model) Architecture() string {
	a, _ := m.Meta("general.architecture")
	return a
}

// ExpertCount is the number of MoE experts per layer (0 for dense models);
// ExpertUsed the number each token is routed to.
func (m *Model) ExpertCount() int { return m.metaInt(".expert_count") }
func (m *Model) ExpertUsed() int  { return m.metaInt(".expert_used_count") }

func (m *Model) metaInt(suffix string) int {
	v, ok := m.Meta(m.Architecture() + suffix)
	if !ok {
		return 0
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0
	}
	return n
}

// TensorPlace says where llama.cpp keeps one weight tensor of a loaded
// model.
type TensorPlace struct {
	Name string
	// Data is the address of the tensor's bytes in Buffer's memory: in
	// the model file's mapping when llama.cpp serves the tensor straight
	// from it (host buffer "CPU_Mapped"), elsewhere when it copied it
	// (a repacked layout, "CPU_REPACK"; a GPU, "CUDA0"). 0 when the
	// tensor has no data.
	Data   uintptr
	Bytes  int64
	Host   bool   // Buffer is in host memory, where Data can be read
	Buffer string // the buffer type's name
}

// Tensors lists the model's weight tensors and where llama.cpp put them,
// in llama.cpp's order. It returns nil once the model is closed.
func (m *Model) Tensors() []TensorPlace {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return nil
	}
	n := int(C.strata_model_n_tensors(m.c))
	out := make([]TensorPlace, 0, n)
	for i := range n {
		var p C.strata_tensor_place
		name := C.strata_model_tensor(m.c, C.int32_t(i), &p)
		if name == nil {
			break
		}
		out = append(out, TensorPlace{Name: C.GoString(name), Data: uintptr(p.data), Bytes: int64(p.nbytes),
			Host: p.host != 0, Buffer: C.GoString(p.buffer)})
	}
	return out
}
