package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

var initOnce sync.Once

// Init initialises llama.cpp's backends once per process: it installs the
// log router and calls llama_backend_init. Every constructor in this package
// calls it, so callers need it only to read SystemInfo or Devices first.
func Init() {
	initOnce.Do(func() {
		C.strata_log_install()
		C.llama_backend_init()
	})
}

// SystemInfo returns llama_print_system_info(): the CPU features ggml was
// compiled for, e.g. "CPU : SSE3 = 1 | AVX2 = 1 | ... | LLAMAFILE = 1". A
// build without SIMD flags shows only LLAMAFILE; see build.sh.
func SystemInfo() string {
	Init()
	return C.GoString(C.llama_print_system_info())
}

// CPUFeatures parses SystemInfo into the set of features reported as 1,
// e.g. {"AVX2", "F16C", "FMA", "LLAMAFILE", ...}.
func CPUFeatures() map[string]bool {
	feats := map[string]bool{}
	for _, part := range strings.Split(SystemInfo(), "|") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndex(part, ":"); i >= 0 && strings.Contains(part, "=") {
			part = strings.TrimSpace(part[i+1:]) // "CPU : SSE3 = 1" → "SSE3 = 1"
		}
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(v) == "1" {
			feats[strings.TrimSpace(k)] = true
		}
	}
	return feats
}

// DeviceType is the kind of a ggml backend device.
type DeviceType int

// Device types, as enum ggml_backend_dev_type.
const (
	DeviceCPU   DeviceType = C.GGML_BACKEND_DEVICE_TYPE_CPU
	DeviceGPU   DeviceType = C.GGML_BACKEND_DEVICE_TYPE_GPU
	DeviceIGPU  DeviceType = C.GGML_BACKEND_DEVICE_TYPE_IGPU
	DeviceAccel DeviceType = C.GGML_BACKEND_DEVICE_TYPE_ACCEL
)

func (t DeviceType) String() string {
	switch t {
	case DeviceCPU:
		return "CPU"
	case DeviceGPU:
		return "GPU"
	case DeviceIGPU:
		return "iGPU"
	case DeviceAccel:
		return "ACCEL"
	}
	return fmt.Sprintf("DeviceType(%d)", int(t))
}

// Device describes one ggml backend device (a CPU, a GPU, an accelerator).
type Device struct {
	Index       int
	Name        string // e.g. "CPU", "CUDA0"
	Description string
	Backend     string // the backend registry it belongs to, e.g. "CUDA"
	Type        DeviceType
	MemoryFree  uint64
	MemoryTotal uint64
	BufferType  string // name of its default buffer type
}

// Devices lists the backend devices llama.cpp can use, in registry order.
func Devices() []Device {
	Init()
	n := int(C.ggml_backend_dev_count())
	devs := make([]Device, 0, n)
	for i := 0; i < n; i++ {
		d := C.ggml_backend_dev_get(C.size_t(i))
		var free, total C.size_t
		C.ggml_backend_dev_memory(d, &free, &total)
		dev := Device{
			Index:       i,
			Name:        C.GoString(C.ggml_backend_dev_name(d)),
			Description: C.GoString(C.ggml_backend_dev_description(d)),
			Backend:     C.GoString(C.ggml_backend_reg_name(C.ggml_backend_dev_backend_reg(d))),
			Type:        DeviceType(C.ggml_backend_dev_type(d)),
			MemoryFree:  uint64(free),
			MemoryTotal: uint64(total),
		}
		if bt := C.ggml_backend_dev_buffer_type(d); bt != nil {
			dev.BufferType = C.GoString(C.ggml_backend_buft_name(bt))
		}
		devs = append(devs, dev)
	}
	return devs
}

// Backends lists the names of the registered backends, e.g. ["CPU"] or
// ["CUDA", "CPU"].
func Backends() []string {
	Init()
	n := int(C.ggml_backend_reg_count())
	names := make([]string, 0, n)
	for i := 0; i < n; i++ {
		names = append(names, C.GoString(C.ggml_backend_reg_name(C.ggml_backend_reg_get(C.size_t(i)))))
	}
	return names
}

var loaded struct {
	sync.Mutex
	paths map[string]bool
}

// LoadBackend loads a ggml backend from a shared library built with
// GGML_BACKEND_DL (e.g. libggml-cuda.so from `make cuda`) and registers its
// devices. Call it before loading models. A library already loaded by this
// process is not loaded again (its devices would be registered twice).
func LoadBackend(path string) error {
	Init()
	abs, err := filepath.Abs(path)
	if err != nil {
		return &Error{Op: "LoadBackend", Detail: err.Error()}
	}
	loaded.Lock()
	defer loaded.Unlock()
	if loaded.paths[abs] {
		return nil
	}
	routeBackendLog(filepath.Dir(abs))
	cpath := C.CString(abs)
	defer C.free(unsafe.Pointer(cpath))
	if C.ggml_backend_load(cpath) == nil {
		return &Error{Op: "LoadBackend", Detail: fmt.Sprintf("%s: %s", path, orDefault(logSink.takeLastError(), "not a loadable ggml backend"))}
	}
	if loaded.paths == nil {
		loaded.paths = map[string]bool{}
	}
	loaded.paths[abs] = true
	return nil
}

// routeBackendLog sends the log of the libggml-base in dir, which backend
// libraries built beside it link against, through SetLogger's handler.
func routeBackendLog(dir string) {
	for _, name := range []string{"libggml-base.so", "libggml-base.dylib"} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		cpath := C.CString(path)
		C.strata_log_install_lib(cpath)
		C.free(unsafe.Pointer(cpath))
		return
	}
}

// LoadBackends loads every ggml backend library in dir (libggml-*.so, or
// .dylib and .dll, except libggml-base, which the backends link against)
// and returns their paths. It is what `make cuda` builds into bin/lib. A
// folder that does not exist, or holds no backend, is an error.
func LoadBackends(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Op: "LoadBackends", Detail: err.Error()}
	}
	var libs []string
	for _, e := range entries {
		name := e.Name()
		base, ext := strings.TrimPrefix(name, "lib"), filepath.Ext(name)
		if e.IsDir() || !strings.HasPrefix(base, "ggml-") || strings.HasPrefix(base, "ggml-base") ||
			(ext != ".so" && ext != ".dylib" && ext != ".dll") {
			continue
		}
		path := filepath.Join(dir, name)
		if err := LoadBackend(path); err != nil {
			return libs, err
		}
		libs = append(libs, path)
	}
	if len(libs) == 0 {
		return nil, &Error{Op: "LoadBackends", Detail: dir + " holds no ggml backend library (libggml-*.so)"}
	}
	return libs, nil
}

// SupportsMmap, SupportsMlock and SupportsGPUOffload report what this build
// of llama.cpp can do on this platform.
func SupportsMmap() bool       { Init(); return bool(C.llama_supports_mmap()) }
func SupportsMlock() bool      { Init(); return bool(C.llama_supports_mlock()) }
func SupportsGPUOffload() bool { Init(); return bool(C.llama_supports_gpu_offload()) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
