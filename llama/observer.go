package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Observer watches named tensors of the compute graph while a Decode runs
// (llama.cpp's eval callback). The prefix test runs in C for every graph
// node, so tensors that match no prefix cost no call into Go; a context
// without an Observer installs no callback at all.
type Observer struct {
	// Prefixes selects tensors by name prefix, e.g. "ffn_moe_topk" for the
	// experts each token is routed to (one I32 tensor per MoE layer named
	// "ffn_moe_topk-<layer>", shape [n_expert_used, n_tokens]; in the
	// last layer n_tokens counts only the tokens whose output was asked
	// for, as llama.cpp drops the other rows before that layer's FFN).
	// Empty observes every tensor, which is slow.
	Prefixes []string
	// Func is called on the decoding goroutine once a matching tensor is
	// computed. The Tensor and any slice it returns are valid only during
	// the call. Returning false stops the decode: it fails with
	// ErrAborted unless the tensor was the graph's last node.
	Func func(t *Tensor) bool
}

// observer is the Go half of an Observer, reached from C via a cgo.Handle.
type observer struct {
	fn       func(*Tensor) bool
	panicked error    // set when fn panicked; the decode then fails with it
	t        Tensor   // reused for every call
	buf      []byte   // staging for tensors in device memory
	words    []uint32 // gathered elements of strided views
}

func (o *observer) observe(p unsafe.Pointer) bool {
	o.t = Tensor{c: (*C.struct_ggml_tensor)(p), o: o}
	ok := o.fn(&o.t)
	o.t.c = nil
	return ok
}

// Tensor is a graph tensor handed to an Observer.
type Tensor struct {
	c *C.struct_ggml_tensor
	o *observer
}

// Name returns the tensor's name, e.g. "ffn_moe_topk-3". It allocates;
// HasPrefix and Layer do not.
func (t *Tensor) Name() string { return C.GoString(&t.c.name[0]) }

// HasPrefix reports whether the name starts with prefix.
func (t *Tensor) HasPrefix(prefix string) bool {
	name := unsafe.Slice((*byte)(unsafe.Pointer(&t.c.name[0])), len(t.c.name))
	if len(prefix) > len(name) {
		return false
	}
	return string(name[:len(prefix)]) == prefix
}

// Layer parses the layer number llama.cpp appends to per-layer tensor
// names ("ffn_moe_topk-3" → 3); it returns -1 when there is none.
func (t *Tensor) Layer() int {
	name := unsafe.Slice((*byte)(unsafe.Pointer(&t.c.name[0])), len(t.c.name))
	end := 0
	for end < len(name) && name[end] != 0 {
		end++
	}
	i := end
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == end || i == 0 || name[i-1] != '-' {
		return -1
	}
	n := 0
	for _, d := range name[i:end] {
		n = n*10 + int(d-'0')
	}
	return n
}

// Type is the tensor's element type.
func (t *Tensor) Type() GGMLType { return GGMLType(t.c._type) }

// Shape returns ne[0..3], innermost dimension first.
func (t *Tensor) Shape() [4]int64 {
	return [4]int64{int64(t.c.ne[0]), int64(t.c.ne[1]), int64(t.c.ne[2]), int64(t.c.ne[3])}
}

// Bytes returns the bytes of a contiguous tensor. For tensors in host
// memory it is a view of ggml's buffer; for device tensors a copy into a
// buffer the observer reuses. Either way it is valid only during the
// Observer call. Int32s and Float32s also handle strided views.
func (t *Tensor) Bytes() ([]byte, error) {
	if !bool(C.ggml_is_contiguous(t.c)) {
		return nil, fmt.Errorf("llama: tensor %s is not contiguous; use Int32s or Float32s", t.Name())
	}
	return t.span()
}

// span returns the bytes from the tensor's first to its last element
// (ggml_nbytes covers the strides of a view).
func (t *Tensor) span() ([]byte, error) {
	n := int(C.ggml_nbytes(t.c))
	if n == 0 {
		return nil, nil
	}
	if C.strata_tensor_is_host(t.c) != 0 {
		if t.c.data == nil {
			return nil, fmt.Errorf("llama: tensor %s has no data", t.Name())
		}
		return unsafe.Slice((*byte)(t.c.data), n), nil
	}
	if cap(t.o.buf) < n {
		t.o.buf = make([]byte, n)
	}
	buf := t.o.buf[:n]
	C.strata_tensor_get(t.c, unsafe.Pointer(&buf[0]), C.size_t(n))
	return buf, nil
}

// words returns the tensor's 4-byte elements in row-major order (ne[0]
// fastest): a view when the tensor is contiguous, else gathered through
// its strides into a buffer the observer reuses. ggml's top-k results,
// for one, are views into the wider argsort output.
func (t *Tensor) words() ([]uint32, error) {
	b, err := t.span()
	if err != nil || len(b) == 0 {
		return nil, err
	}
	if bool(C.ggml_is_contiguous(t.c)) {
		return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), len(b)/4), nil
	}
	ne := t.Shape()
	nb := [4]int{int(t.c.nb[0]), int(t.c.nb[1]), int(t.c.nb[2]), int(t.c.nb[3])}
	total := int(ne[0] * ne[1] * ne[2] * ne[3])
	if cap(t.o.words) < total {
		t.o.words = make([]uint32, total)
	}
	out := t.o.words[:total]
	k := 0
	for i3 := 0; i3 < int(ne[3]); i3++ {
		for i2 := 0; i2 < int(ne[2]); i2++ {
			for i1 := 0; i1 < int(ne[1]); i1++ {
				row := i3*nb[3] + i2*nb[2] + i1*nb[1]
				for i0 := 0; i0 < int(ne[0]); i0++ {
					off := row + i0*nb[0]
					if off < 0 || off+4 > len(b) {
						return nil, fmt.Errorf("llama: tensor %s: element (%d,%d,%d,%d) outside its %d bytes", t.Name(), i0, i1, i2, i3, len(b))
					}
					out[k] = *(*uint32)(unsafe.Pointer(&b[off]))
					k++
				}
			}
		}
	}
	return out, nil
}

// Int32s returns the elements of an I32 tensor, ne[0] fastest (see Bytes
// for lifetime). The MoE router's ffn_moe_topk-<layer> tensor gives, for
// token j, the experts at [j*n_expert_used, (j+1)*n_expert_used).
func (t *Tensor) Int32s() ([]int32, error) {
	if t.Type() != TypeI32 {
		return nil, fmt.Errorf("llama: tensor %s is %s, not I32", t.Name(), t.Type())
	}
	w, err := t.words()
	if err != nil || len(w) == 0 {
		return nil, err
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&w[0])), len(w)), nil
}

// Float32s returns the elements of an F32 tensor, ne[0] fastest (see Bytes
// for lifetime).
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Type() != TypeF32 {
		return nil, fmt.Errorf("llama: tensor %s is %s, not F32", t.Name(), t.Type())
	}
	w, err := t.words()
	if err != nil || len(w) == 0 {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w)), nil
}

// GGMLType is a ggml tensor element type (enum ggml_type).
type GGMLType int32

// The element types Strata names; others print as GGMLType(n).
const (
	TypeF32  GGMLType = C.GGML_TYPE_F32
	TypeF16  GGMLType = C.GGML_TYPE_F16
	TypeQ4_0 GGMLType = C.GGML_TYPE_Q4_0
	TypeQ4_1 GGMLType = C.GGML_TYPE_Q4_1
	TypeQ5_0 GGMLType = C.GGML_TYPE_Q5_0
	TypeQ5_1 GGMLType = C.GGML_TYPE_Q5_1
	TypeQ8_0 GGMLType = C.GGML_TYPE_Q8_0
	TypeQ4_K GGMLType = C.GGML_TYPE_Q4_K
	TypeQ6_K GGMLType = C.GGML_TYPE_Q6_K
	TypeI32  GGMLType = C.GGML_TYPE_I32
	TypeBF16 GGMLType = C.GGML_TYPE_BF16
)

// String is ggml's name for the type, e.g. "q8_0".
func (t GGMLType) String() string {
	if t < 0 || t >= C.GGML_TYPE_COUNT {
		return fmt.Sprintf("GGMLType(%d)", int32(t))
	}
	if name := C.ggml_type_name(C.enum_ggml_type(t)); name != nil {
		return C.GoString(name)
	}
	return fmt.Sprintf("GGMLType(%d)", int32(t))
}

// ParseGGMLType parses a type name such as "f16" or "q8_0" (any case).
func ParseGGMLType(s string) (GGMLType, error) {
	for t := GGMLType(0); t < C.GGML_TYPE_COUNT; t++ {
		if name := C.ggml_type_name(C.enum_ggml_type(t)); name != nil && strings.EqualFold(C.GoString(name), s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("llama: unknown ggml type %q", s)
}
