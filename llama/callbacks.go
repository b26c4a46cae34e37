package llama

// This file holds every //export trampoline that C calls back into, as
// mattn/go-sqlite3's callback.go does. Each receives a runtime/cgo.Handle
// value (never a Go pointer) and must not panic across the C boundary.

// #include "shim.h"
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export goLog
func goLog(level C.int, text *C.char) {
	logSink.write(int(level), C.GoString(text))
}

//export goProgress
func goProgress(progress C.float, handle C.uintptr_t) C.bool {
	p, ok := cgo.Handle(handle).Value().(*loadProgress)
	if !ok {
		return true
	}
	return C.bool(p.report(float32(progress)))
}

//export goObserve
func goObserve(handle C.uintptr_t, t *C.struct_ggml_tensor) C.bool {
	o, ok := cgo.Handle(handle).Value().(*observer)
	if !ok {
		return true
	}
	return C.bool(o.observe(unsafe.Pointer(t)))
}
