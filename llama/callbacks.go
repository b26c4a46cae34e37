package llama

// This file holds every //export trampoline that C calls back into, as
// mattn/go-sqlite3's callback.go does. Each receives a runtime/cgo.Handle
// value (never a Go pointer). A panic must never unwind through llama.cpp's
// C++ frames, so each recovers: the observer's and the progress callback's
// panic stops the decode or load and comes back as an error wrapping
// ErrCallbackPanic; a panicking log handler loses that line.

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"unsafe"
)

//export goLog
func goLog(level C.int, text *C.char) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "strata: log handler panicked: %v\n", r)
		}
	}()
	if !logSink.skip(int(level)) {
		logSink.write(int(level), C.GoString(text))
	}
}

//export goProgress
func goProgress(progress C.float, handle C.uintptr_t) (keep C.bool) {
	p, ok := cgo.Handle(handle).Value().(*loadProgress)
	if !ok {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			p.panicked = fmt.Errorf("%w: progress callback: %v", ErrCallbackPanic, r)
			p.cancelled = true
			keep = false
		}
	}()
	return C.bool(p.report(float32(progress)))
}

//export goObserve
func goObserve(handle C.uintptr_t, t *C.struct_ggml_tensor) (keep C.bool) {
	o, ok := cgo.Handle(handle).Value().(*observer)
	if !ok {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			o.t.c = nil
			o.panicked = fmt.Errorf("%w: observer: %v", ErrCallbackPanic, r)
			keep = false
		}
	}()
	return C.bool(o.observe(unsafe.Pointer(t)))
}
