package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// typeGeometry returns ggml's block size and bytes per block for t, and
// whether t is a type ggml can quantize to and dequantize from.
func typeGeometry(t GGMLType) (block, bytes int, ok bool) {
	if t < 0 || t >= C.GGML_TYPE_COUNT {
		return 0, 0, false
	}
	tr := C.ggml_get_type_traits(C.enum_ggml_type(t))
	if tr == nil || tr.to_float == nil || tr.blck_size <= 0 {
		return 0, 0, false
	}
	return int(tr.blck_size), int(tr.type_size), true
}

// Quantize encodes src, rows of rowLen values, as ggml type t with ggml's
// own quantizer (ggml_quantize_chunk without an importance matrix): the
// reference Strata's pure-Go encoders (package gguf) are checked against.
func Quantize(t GGMLType, src []float32, rowLen int) ([]byte, error) {
	block, bytes, ok := typeGeometry(t)
	switch {
	case !ok:
		return nil, fmt.Errorf("llama: quantize: ggml cannot convert type %v", t)
	case rowLen <= 0 || rowLen%block != 0 || len(src)%rowLen != 0:
		return nil, fmt.Errorf("llama: quantize %v: %d values in rows of %d, want rows of a multiple of %d", t, len(src), rowLen, block)
	case bool(C.ggml_quantize_requires_imatrix(C.enum_ggml_type(t))):
		return nil, fmt.Errorf("llama: quantize %v: the type needs an importance matrix", t)
	}
	if len(src) == 0 {
		return nil, nil
	}
	rows := len(src) / rowLen
	dst := make([]byte, rows*(rowLen/block)*bytes)
	n := C.ggml_quantize_chunk(C.enum_ggml_type(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&dst[0]), 0, C.int64_t(rows), C.int64_t(rowLen), nil)
	if int(n) != len(dst) {
		return nil, &Error{Op: "Quantize", Detail: fmt.Sprintf("ggml wrote %d bytes, want %d", n, len(dst))}
	}
	return dst, nil
}

// Dequantize decodes n values of ggml type t from src with ggml's own
// dequantizer, the one inference uses for that type.
func Dequantize(t GGMLType, src []byte, n int) ([]float32, error) {
	block, bytes, ok := typeGeometry(t)
	if !ok {
		return nil, fmt.Errorf("llama: dequantize: ggml cannot convert type %v", t)
	}
	if n < 0 || n%block != 0 || len(src) != n/block*bytes {
		return nil, fmt.Errorf("llama: dequantize %v: %d bytes for %d values, want %d", t, len(src), n, n/block*bytes)
	}
	if n == 0 {
		return nil, nil
	}
	dst := make([]float32, n)
	tr := C.ggml_get_type_traits(C.enum_ggml_type(t))
	C.strata_to_float(tr.to_float, unsafe.Pointer(&src[0]), (*C.float)(unsafe.Pointer(&dst[0])), C.int64_t(n))
	return dst, nil
}
