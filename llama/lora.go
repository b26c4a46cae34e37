package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// Adapter is a LoRA adapter loaded for a Model. llama.cpp frees adapters
// with their model; Close frees one earlier. Safe for concurrent use with
// the same rules as its Model.
type Adapter struct {
	c     *C.struct_llama_adapter_lora
	model *Model
	path  string
}

// LoadAdapter loads the LoRA adapter at path for m. Its tensors must match
// m's shapes.
func (m *Model) LoadAdapter(path string) (*Adapter, error) {
	if m == nil || m.c == nil {
		return nil, fmt.Errorf("llama: load adapter: %w", ErrClosed)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("llama: load adapter: %w", err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	logSink.takeLastError()
	c := C.llama_adapter_lora_init(m.c, cpath)
	if c == nil {
		return nil, &Error{Op: "Model.LoadAdapter", Detail: fmt.Sprintf("%s: %s", path, orDefault(logSink.takeLastError(), "llama.cpp could not load the adapter"))}
	}
	a := &Adapter{c: c, model: m, path: path}
	m.mu.Lock()
	m.adapters = append(m.adapters, a)
	m.mu.Unlock()
	return a, nil
}

// Path is the file the adapter was loaded from.
func (a *Adapter) Path() string { return a.path }

// Meta returns an adapter metadata value as a string.
func (a *Adapter) Meta(key string) (string, bool) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	var buf [512]C.char
	if C.llama_adapter_meta_val_str(a.c, ckey, &buf[0], C.size_t(len(buf))) < 0 {
		return "", false
	}
	return C.GoString(&buf[0]), true
}

// Close frees the adapter. Remove it from every context first. It is
// idempotent, and a no-op after the model was closed.
func (a *Adapter) Close() error {
	if a == nil {
		return nil
	}
	m := a.model
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.c == nil {
		return nil
	}
	C.llama_adapter_lora_free(a.c)
	a.c = nil
	for i, x := range m.adapters {
		if x == a {
			m.adapters = append(m.adapters[:i], m.adapters[i+1:]...)
			break
		}
	}
	return nil
}

// checkSwap refuses an adapter change that llama.cpp would not see; see
// ContextParams.AdapterSwaps.
func (c *Context) checkSwap(op string) error {
	if c.decoded && !c.adapterSwaps {
		return fmt.Errorf("llama: %s: %w", op, ErrAdapterSwap)
	}
	return nil
}

// SetAdapter applies adapter a to the context with the given scale (1 is
// the adapter's trained strength). Setting it again changes the scale.
// After the context's first Decode this needs ContextParams.AdapterSwaps.
func (c *Context) SetAdapter(a *Adapter, scale float32) error {
	if c.c == nil || a == nil || a.c == nil {
		return fmt.Errorf("llama: set adapter: %w", ErrClosed)
	}
	if err := c.checkSwap("set adapter"); err != nil {
		return err
	}
	if rc := C.llama_set_adapter_lora(c.c, a.c, C.float(scale)); rc != 0 {
		return &Error{Op: "Context.SetAdapter", Code: int(rc), Detail: logSink.takeLastError()}
	}
	return nil
}

// RemoveAdapter takes adapter a off the context; ErrAdapterNotSet if it
// was not applied. After the first Decode this needs
// ContextParams.AdapterSwaps.
func (c *Context) RemoveAdapter(a *Adapter) error {
	if c.c == nil || a == nil || a.c == nil {
		return fmt.Errorf("llama: remove adapter: %w", ErrClosed)
	}
	if err := c.checkSwap("remove adapter"); err != nil {
		return err
	}
	if rc := C.llama_rm_adapter_lora(c.c, a.c); rc != 0 {
		return &Error{Op: "Context.RemoveAdapter", Code: int(rc), Err: ErrAdapterNotSet}
	}
	return nil
}

// ClearAdapters removes every adapter from the context. After the first
// Decode this needs ContextParams.AdapterSwaps.
func (c *Context) ClearAdapters() error {
	if c.c == nil {
		return fmt.Errorf("llama: clear adapters: %w", ErrClosed)
	}
	if err := c.checkSwap("clear adapters"); err != nil {
		return err
	}
	C.llama_clear_adapter_lora(c.c)
	return nil
}
