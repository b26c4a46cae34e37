package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// Adapter is a LoRA adapter loaded for a Model. Safe for concurrent use
// with the same rules as its Model. An adapter applied to a context stays
// alive until every context that holds it has removed it or closed: Close
// refuses with ErrInUse before that, so llama.cpp never computes with a
// freed adapter.
type Adapter struct {
	c     *C.struct_llama_adapter_lora
	model *Model
	path  string
	users int // contexts that have the adapter applied; guarded by model.mu
}

// LoadAdapter loads the LoRA adapter at path for m. Its tensors must match
// m's shapes.
func (m *Model) LoadAdapter(path string) (*Adapter, error) {
	if m == nil {
		return nil, fmt.Errorf("llama: load adapter: %w", ErrClosed)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("llama: load adapter: %w", err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return nil, fmt.Errorf("llama: load adapter: %w", ErrClosed)
	}
	logSink.takeLastError()
	c := C.llama_adapter_lora_init(m.c, cpath)
	if c == nil {
		return nil, &Error{Op: "Model.LoadAdapter", Detail: fmt.Sprintf("%s: %s", path, orDefault(logSink.takeLastError(), "llama.cpp could not load the adapter"))}
	}
	a := &Adapter{c: c, model: m, path: path}
	m.adapters = append(m.adapters, a)
	return a, nil
}

// Path is the file the adapter was loaded from.
func (a *Adapter) Path() string { return a.path }

// Meta returns an adapter metadata value as a string; ok is false when the
// key is absent or the adapter is closed.
func (a *Adapter) Meta(key string) (string, bool) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	var buf [512]C.char
	a.model.mu.Lock()
	defer a.model.mu.Unlock()
	if a.c == nil || C.llama_adapter_meta_val_str(a.c, ckey, &buf[0], C.size_t(len(buf))) < 0 {
		return "", false
	}
	return C.GoString(&buf[0]), true
}

// Close frees the adapter. It returns ErrInUse while a context still has
// it applied (remove it there, or close the context, first). It is
// idempotent, and a no-op after the model was closed, which frees the
// model's adapters with it.
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
	if a.users > 0 {
		return fmt.Errorf("llama: close adapter %s: %w: applied to %d context(s)", a.path, ErrInUse, a.users)
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

// appliedAdapter is one entry of a context's adapter set.
type appliedAdapter struct {
	a     *Adapter
	scale float32
}

// SetAdapter applies adapter a to the context with the given scale (1 is
// the adapter's trained strength). Setting it again changes the scale.
// Adapters may change at any time; the next Decode uses the new set.
func (c *Context) SetAdapter(a *Adapter, scale float32) error {
	if a == nil {
		return fmt.Errorf("llama: set adapter: nil adapter")
	}
	if a.model != c.model {
		return fmt.Errorf("llama: set adapter %s: loaded for model %s, not this context's %s", a.path, a.model.path, c.model.path)
	}
	next := make([]appliedAdapter, 0, len(c.adapters)+1)
	found := false
	for _, x := range c.adapters {
		if x.a == a {
			x.scale, found = scale, true
		}
		next = append(next, x)
	}
	if !found {
		next = append(next, appliedAdapter{a, scale})
	}
	return c.applyAdapters("Context.SetAdapter", next)
}

// RemoveAdapter takes adapter a off the context; ErrAdapterNotSet if it
// was not applied.
func (c *Context) RemoveAdapter(a *Adapter) error {
	next := make([]appliedAdapter, 0, len(c.adapters))
	for _, x := range c.adapters {
		if x.a != a {
			next = append(next, x)
		}
	}
	if len(next) == len(c.adapters) {
		return &Error{Op: "Context.RemoveAdapter", Err: ErrAdapterNotSet}
	}
	return c.applyAdapters("Context.RemoveAdapter", next)
}

// ClearAdapters removes every adapter from the context.
func (c *Context) ClearAdapters() error {
	return c.applyAdapters("Context.ClearAdapters", nil)
}

// Adapters returns the adapters applied to the context and their scales.
func (c *Context) Adapters() (adapters []*Adapter, scales []float32) {
	for _, x := range c.adapters {
		adapters = append(adapters, x.a)
		scales = append(scales, x.scale)
	}
	return adapters, scales
}

// applyAdapters hands llama.cpp the context's whole new adapter set and
// moves the adapters' use counts from the old set to the new one. It holds
// the model's lock, so no Adapter.Close can free an adapter between the
// check and llama.cpp taking it.
func (c *Context) applyAdapters(op string, next []appliedAdapter) error {
	m := c.model
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.c == nil {
		return fmt.Errorf("llama: %s: %w", op, ErrClosed)
	}
	ptrs := make([]*C.struct_llama_adapter_lora, len(next))
	scales := make([]C.float, len(next))
	for i, x := range next {
		if x.a.c == nil {
			return fmt.Errorf("llama: %s: adapter %s: %w", op, x.a.path, ErrClosed)
		}
		ptrs[i], scales[i] = x.a.c, C.float(x.scale)
	}
	var pp **C.struct_llama_adapter_lora
	var sp *C.float
	if len(next) > 0 {
		pp, sp = &ptrs[0], &scales[0]
	}
	if rc := C.llama_set_adapters_lora(c.c, pp, C.size_t(len(next)), sp); rc != 0 {
		return &Error{Op: op, Code: int(rc), Detail: logSink.takeLastError()}
	}
	for _, x := range c.adapters {
		x.a.users--
	}
	for _, x := range next {
		x.a.users++
	}
	c.adapters = next
	return nil
}

// releaseAdapters drops the context's hold on its adapters; caller holds
// c.model.mu.
func (c *Context) releaseAdapters() {
	for _, x := range c.adapters {
		x.a.users--
	}
	c.adapters = nil
}
