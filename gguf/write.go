package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF file whose tensor data is streamed: tensors are
// declared first (name, type, dims), the header and tensor infos are written
// with their final offsets, and then each tensor's bytes are produced in
// order by a callback, so a multi-gigabyte model never sits in memory.
//
// A Writer is used by one goroutine at a time.
type Writer struct {
	// Alignment is the data alignment; 0 means DefaultAlignment. A value
	// other than DefaultAlignment is recorded as general.alignment.
	Alignment uint64

	kvs     []KV
	keys    map[string]bool
	tensors []TensorInfo
	names   map[string]bool
}

// SetKV adds a metadata key. The value must be one of the types KV
// documents. Keys are written in the order they are added.
func (w *Writer) SetKV(key string, value any) error {
	if w.keys == nil {
		w.keys = map[string]bool{}
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrWrite)
	}
	if key == "general.alignment" {
		// The Writer pads by its Alignment field; a key of its own could
		// say another value, and readers would look for the tensors in
		// the wrong place.
		return fmt.Errorf("%w: set Writer.Alignment, not the general.alignment key", ErrWrite)
	}
	if w.keys[key] {
		return fmt.Errorf("%w: key %q set twice", ErrWrite, key)
	}
	if _, err := valueType(value); err != nil {
		return fmt.Errorf("%w: key %q: %v", ErrWrite, key, err)
	}
	// The reader's limits hold for what the Writer writes, so a file it
	// produces is one Read accepts.
	switch {
	case len(w.kvs) >= MaxKV:
		return fmt.Errorf("%w: key %q: more than %d keys (MaxKV)", ErrWrite, key, MaxKV)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes, at most %d (MaxKeyLen)", ErrWrite, len(key), MaxKeyLen)
	case arrayLen(value) > MaxArrayLen:
		return fmt.Errorf("%w: key %q: array of %d, at most %d (MaxArrayLen)", ErrWrite, key, arrayLen(value), MaxArrayLen)
	}
	if n := longestString(value); n > MaxStringLen {
		return fmt.Errorf("%w: key %q: string of %d bytes, at most %d (MaxStringLen)", ErrWrite, key, n, MaxStringLen)
	}
	w.keys[key] = true
	w.kvs = append(w.kvs, KV{Key: key, Value: value})
	return nil
}

// AddTensor declares a tensor. dims are in ggml order (row length first).
func (w *Writer) AddTensor(name string, typ Type, dims ...uint64) error {
	if w.names == nil {
		w.names = map[string]bool{}
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: empty tensor name", ErrWrite)
	case w.names[name]:
		return fmt.Errorf("%w: tensor %q declared twice", ErrWrite, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: tensor name %q longer than %d bytes", ErrWrite, name, MaxNameLen)
	case len(w.tensors) >= MaxTensors:
		return fmt.Errorf("%w: tensor %q: more than %d tensors (MaxTensors)", ErrWrite, name, MaxTensors)
	case len(dims) > MaxDims:
		return fmt.Errorf("%w: tensor %q has %d dims, at most %d", ErrWrite, name, len(dims), MaxDims)
	case !typ.Valid():
		return fmt.Errorf("%w: tensor %q has unknown type %v", ErrWrite, name, typ)
	}
	ne0, n := uint64(1), uint64(1)
	if len(dims) > 0 {
		ne0 = dims[0]
	}
	for _, d := range dims {
		if d > math.MaxInt64 || (d != 0 && n > math.MaxInt64/d) {
			return fmt.Errorf("%w: tensor %q: element count of %v overflows int64", ErrWrite, name, dims)
		}
		n *= d
	}
	if ne0%typ.BlockSize() != 0 {
		return fmt.Errorf("%w: tensor %q: row of %d is not a multiple of the %v block size %d", ErrWrite, name, ne0, typ, typ.BlockSize())
	}
	row, ok := typ.RowBytes(ne0)
	size := uint64(0)
	if ne0 != 0 {
		rows := n / ne0
		if !ok || (rows != 0 && row > math.MaxInt64/rows) {
			return fmt.Errorf("%w: tensor %q: byte size of %v %v overflows int64", ErrWrite, name, dims, typ)
		}
		size = row * rows
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Type: typ, Dims: append([]uint64(nil), dims...), Size: size})
	return nil
}

func (w *Writer) alignment() uint64 {
	if w.Alignment == 0 {
		return DefaultAlignment
	}
	return w.Alignment
}

func (w *Writer) kvList() []KV {
	if w.alignment() == DefaultAlignment {
		return w.kvs
	}
	return append(append([]KV(nil), w.kvs...), KV{Key: "general.alignment", Value: uint32(w.alignment())})
}

// Layout returns the tensors with the absolute offsets Write will give them,
// and the total file size.
func (w *Writer) Layout() ([]TensorInfo, int64) {
	a := w.alignment()
	hdr := uint64(headerSize)
	for _, kv := range w.kvList() {
		hdr += 8 + uint64(len(kv.Key)) + 4 + valueSize(kv.Value)
	}
	for _, t := range w.tensors {
		hdr += 8 + uint64(len(t.Name)) + 4 + 8*uint64(len(t.Dims)) + 4 + 8
	}
	data := alignUp(hdr, a)
	out := make([]TensorInfo, len(w.tensors))
	off := data
	for i, t := range w.tensors {
		t.Offset = off
		out[i] = t
		off += alignUp(t.Size, a)
	}
	// The last tensor is padded too, as gguf-py does.
	return out, int64(off)
}

// TensorData produces the bytes of tensor t (index i in declaration order)
// into w. It must write exactly t.Size bytes.
type TensorData func(i int, t TensorInfo, w io.Writer) error

// Write writes the file to dst: header, metadata, tensor infos, then each
// tensor's data as produced by data, in declaration order, with alignment
// padding between. It returns the number of bytes written.
func (w *Writer) Write(dst io.Writer, data TensorData) (int64, error) {
	a := w.alignment()
	if a == 0 || a&(a-1) != 0 || a > math.MaxUint32 {
		return 0, fmt.Errorf("%w: alignment %d is not a power of two", ErrWrite, a)
	}
	kvs := w.kvList()
	if len(kvs) > MaxKV { // the alignment key the Writer adds counts too
		return 0, fmt.Errorf("%w: %d keys with general.alignment, at most %d (MaxKV)", ErrWrite, len(kvs), MaxKV)
	}
	cw := &countWriter{w: dst}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	layout, _ := w.Layout()
	for _, t := range layout {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset - layout[0].Offset)
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("gguf: write header: %w", e.err)
	}
	for i, t := range layout {
		pos := cw.n + int64(bw.Buffered())
		if pad := int64(t.Offset) - pos; pad > 0 {
			if _, err := bw.Write(make([]byte, pad)); err != nil {
				return cw.n, fmt.Errorf("gguf: write padding before %q: %w", t.Name, err)
			}
		} else if pad < 0 {
			return cw.n, fmt.Errorf("%w: layout mismatch before tensor %q (at %d, want %d)", ErrWrite, t.Name, pos, t.Offset)
		}
		tc := &countWriter{w: bw}
		if err := data(i, t, tc); err != nil {
			return cw.n, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if uint64(tc.n) != t.Size {
			return cw.n, fmt.Errorf("%w: tensor %q: callback wrote %d bytes, want %d", ErrWrite, t.Name, tc.n, t.Size)
		}
	}
	_, total := w.Layout()
	if pad := total - (cw.n + int64(bw.Buffered())); pad > 0 {
		if _, err := bw.Write(make([]byte, pad)); err != nil {
			return cw.n, fmt.Errorf("gguf: write final padding: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("gguf: write: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// valueType returns the GGUF type of a Go value as KV documents it.
func valueType(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return ValueUint8, nil
	case int8:
		return ValueInt8, nil
	case uint16:
		return ValueUint16, nil
	case int16:
		return ValueInt16, nil
	case uint32:
		return ValueUint32, nil
	case int32:
		return ValueInt32, nil
	case float32:
		return ValueFloat32, nil
	case bool:
		return ValueBool, nil
	case string:
		return ValueString, nil
	case uint64:
		return ValueUint64, nil
	case int64:
		return ValueInt64, nil
	case float64:
		return ValueFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return ValueArray, nil
	}
	return 0, fmt.Errorf("unsupported value type %T", v)
}

// elemType returns the element type of an array value.
func elemType(v any) ValueType {
	switch v.(type) {
	case []uint8:
		return ValueUint8
	case []int8:
		return ValueInt8
	case []uint16:
		return ValueUint16
	case []int16:
		return ValueInt16
	case []uint32:
		return ValueUint32
	case []int32:
		return ValueInt32
	case []float32:
		return ValueFloat32
	case []bool:
		return ValueBool
	case []string:
		return ValueString
	case []uint64:
		return ValueUint64
	case []int64:
		return ValueInt64
	case []float64:
		return ValueFloat64
	}
	panic(fmt.Sprintf("gguf: not an array: %T", v))
}

// ArrayOf reports the element type and length of an array metadata value
// (a typed slice, as KV documents); ok is false for anything else.
func ArrayOf(v any) (elem ValueType, n int, ok bool) {
	if vt, err := valueType(v); err != nil || vt != ValueArray {
		return 0, 0, false
	}
	return elemType(v), arrayLen(v), true
}

func arrayLen(v any) int {
	switch x := v.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []float32:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float64:
		return len(x)
	}
	return 0
}

// longestString returns the length of v if it is a string, of its longest
// element if it is a []string, and 0 otherwise.
func longestString(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []string:
		n := 0
		for _, s := range x {
			n = max(n, len(s))
		}
		return n
	}
	return 0
}

// valueSize returns the encoded size of a value without its type tag.
func valueSize(v any) uint64 {
	vt, _ := valueType(v)
	switch vt {
	case ValueString:
		return 8 + uint64(len(v.(string)))
	case ValueArray:
		n := uint64(4 + 8)
		if s, ok := v.([]string); ok {
			for _, x := range s {
				n += 8 + uint64(len(x))
			}
			return n
		}
		return n + uint64(arrayLen(v))*uint64(elemType(v).fixedSize())
	}
	return uint64(vt.fixedSize())
}

// encoder writes little-endian fields, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	err error
	b   [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) u8(v uint8)   { e.raw([]byte{v}) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.b[:], v); e.raw(e.b[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.b[:], v); e.raw(e.b[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.b[:], v); e.raw(e.b[:8]) }
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *encoder) value(v any) {
	vt, _ := valueType(v)
	e.u32(uint32(vt))
	if vt == ValueArray {
		e.u32(uint32(elemType(v)))
		e.u64(uint64(arrayLen(v)))
	}
	e.payload(v)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (e *encoder) payload(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.u8(b2u(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		e.raw(x)
	case []int8:
		for _, y := range x {
			e.u8(uint8(y))
		}
	case []uint16:
		for _, y := range x {
			e.u16(y)
		}
	case []int16:
		for _, y := range x {
			e.u16(uint16(y))
		}
	case []uint32:
		for _, y := range x {
			e.u32(y)
		}
	case []int32:
		for _, y := range x {
			e.u32(uint32(y))
		}
	case []float32:
		for _, y := range x {
			e.u32(math.Float32bits(y))
		}
	case []bool:
		for _, y := range x {
			e.u8(b2u(y))
		}
	case []string:
		for _, y := range x {
			e.str(y)
		}
	case []uint64:
		for _, y := range x {
			e.u64(y)
		}
	case []int64:
		for _, y := range x {
			e.u64(uint64(y))
		}
	case []float64:
		for _, y := range x {
			e.u64(math.Float64bits(y))
		}
	}
}
