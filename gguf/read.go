package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

const (
	// Magic is the first four bytes of every GGUF file.
	Magic = "GGUF"
	// DefaultAlignment is the data alignment when general.alignment is absent.
	DefaultAlignment = 32
	// MaxDims is GGML_MAX_DIMS.
	MaxDims = 4
	// headerSize is magic + version + tensor count + kv count.
	headerSize = 4 + 4 + 8 + 8
	// minKVSize is the smallest encoded key/value: an empty key, a type and a
	// one-byte value.
	minKVSize = 8 + 4 + 1
	// minTensorInfoSize is the smallest encoded tensor info: an empty name,
	// n_dims 0, type and offset.
	minTensorInfoSize = 8 + 4 + 4 + 8
)

// KV is one metadata key/value pair. Value holds a Go value of the GGUF type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64 or float64; an array is a typed slice of one of those ([]uint8,
// []int32, []float32, []string, …). Nested arrays are not allowed (llama.cpp
// rejects them).
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor. Offset is the absolute file offset of its
// data and Size its length in bytes, so [Offset, Offset+Size) is the range a
// mapping of the file holds it in.
type TensorInfo struct {
	Name string
	Dims []uint64 // ne[0] (the row length) first, as ggml orders them
	Type Type
	// Offset is the absolute file offset of the tensor's data.
	Offset uint64
	// Size is the number of bytes of the tensor's data.
	Size uint64
}

// Elements returns the number of elements of the tensor.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Range returns the tensor's absolute byte range.
func (t TensorInfo) Range() Range { return Range{Off: t.Offset, Len: t.Size} }

// Range is an absolute byte range of a file.
type Range struct{ Off, Len uint64 }

// End returns the offset one past the range.
func (r Range) End() uint64 { return r.Off + r.Len }

// File is a parsed and validated GGUF file: its metadata and the location of
// every tensor. It holds no file handle and no tensor data. A File is
// immutable after Read returns and is safe for concurrent use.
type File struct {
	Path       string // set by Open
	Version    uint32
	Alignment  uint64
	DataOffset uint64 // absolute offset of the tensor data section
	FileSize   int64
	KV         []KV
	Tensors    []TensorInfo

	kvIndex     map[string]int
	tensorIndex map[string]int
}

// Open reads and validates the GGUF file at path. The file is closed before
// Open returns.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Read(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Read reads and validates a GGUF file of size bytes from r. It checks what
// llama.cpp's gguf_init_from_file checks (magic, version, value types, no
// duplicate keys or tensor names, alignment, tensor dimensions and types,
// tensor data laid out in order at aligned offsets) and in addition that all
// tensor data lies inside the file. No count or length read from the file is
// trusted for an allocation before it is checked against the bytes left and
// against the absolute limits in limits.go, so what Read allocates stays
// bounded (about MaxMetadataBytes plus the tensor table) even for a sparse
// file of any size.
func Read(r io.ReaderAt, size int64) (*File, error) {
	c := &cursor{r: r, size: size, budget: MaxMetadataBytes}
	f := &File{FileSize: size, Alignment: DefaultAlignment}

	magic, err := c.bytes("magic", 4)
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, c.errAt("magic", 0, ErrBadMagic, fmt.Sprintf("got %q, want %q", magic, Magic))
	}
	off := c.off
	if f.Version, err = c.u32("version"); err != nil {
		return nil, err
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, c.errAt("version", off, ErrVersion, fmt.Sprintf("got %d, want 2 or 3", f.Version))
	}
	off = c.off
	nTensors, err := c.u64("tensor_count")
	if err != nil {
		return nil, err
	}
	offKV := c.off
	nKV, err := c.u64("kv_count")
	if err != nil {
		return nil, err
	}
	// Each count must fit the rest of the file at the smallest encoding, and
	// the reader's absolute limit, which the file's size cannot stand in
	// for: a sparse file is as large as it claims.
	rest := uint64(size - c.off)
	if nKV > rest/minKVSize {
		return nil, c.errAt("kv_count", offKV, ErrTooLarge, fmt.Sprintf("%d key/values cannot fit in %d bytes", nKV, rest))
	}
	if nKV > MaxKV {
		return nil, c.errAt("kv_count", offKV, ErrLimit, fmt.Sprintf("%d key/values, at most %d (MaxKV)", nKV, MaxKV))
	}
	if nTensors > rest/minTensorInfoSize {
		return nil, c.errAt("tensor_count", off, ErrTooLarge, fmt.Sprintf("%d tensor infos cannot fit in %d bytes", nTensors, rest))
	}
	if nTensors > MaxTensors {
		return nil, c.errAt("tensor_count", off, ErrLimit, fmt.Sprintf("%d tensor infos, at most %d (MaxTensors)", nTensors, MaxTensors))
	}

	// The tables grow as entries are read, so a count that passed the
	// checks above still costs nothing until the entries are really there.
	f.KV = make([]KV, 0, min(nKV, initialCap))
	f.kvIndex = make(map[string]int, min(nKV, initialCap))
	for i := uint64(0); i < nKV; i++ {
		kvOff := c.off
		c.scope = scope{kind: inKV, i: i}
		key, err := c.str(".key", keyLimit)
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, c.errAt(".key", kvOff, ErrEmptyName, "empty key")
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, c.errAt(".key", kvOff, ErrDuplicate, fmt.Sprintf("key %q repeats", key))
		}
		c.scope = scope{kind: inValue, name: key}
		v, err := c.value()
		if err != nil {
			return nil, err
		}
		if key == "general.alignment" {
			a, ok := v.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, c.errAt("", kvOff, ErrAlignment, fmt.Sprintf("got %T %v, want a uint32 power of two", v, v))
			}
			f.Alignment = uint64(a)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	f.Tensors = make([]TensorInfo, 0, min(nTensors, initialCap))
	f.tensorIndex = make(map[string]int, min(nTensors, initialCap))
	infoOffs := make([]int64, 0, min(nTensors, initialCap))
	for i := uint64(0); i < nTensors; i++ {
		infoOff := c.off
		ti, err := c.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		c.scope = scope{kind: inTensorIndex, i: i}
		if ti.Name == "" {
			return nil, c.errAt(".name", infoOff, ErrEmptyName, "empty tensor name")
		}
		if _, dup := f.tensorIndex[ti.Name]; dup {
			return nil, c.errAt(".name", infoOff, ErrDuplicate, fmt.Sprintf("tensor %q repeats", ti.Name))
		}
		f.tensorIndex[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
		infoOffs = append(infoOffs, infoOff)
	}

	c.scope = scope{}
	f.DataOffset = alignUp(uint64(c.off), f.Alignment)
	if len(f.Tensors) > 0 && f.DataOffset > uint64(size) {
		return nil, c.errAt("data section", c.off, ErrTruncated, fmt.Sprintf("data starts at %d, file is %d bytes", f.DataOffset, size))
	}
	// llama.cpp requires each tensor's offset to equal the aligned running
	// size of the ones before it.
	var want uint64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		rel := t.Offset // relative while reading
		c.scope = scope{kind: inTensorIndex, i: uint64(i)}
		if rel != want {
			return nil, c.errAt(".offset", infoOffs[i], ErrLayout, fmt.Sprintf("tensor %q at data offset %d, want %d", t.Name, rel, want))
		}
		abs := f.DataOffset + rel
		if abs < f.DataOffset || t.Size > uint64(size) || abs > uint64(size)-t.Size {
			return nil, c.errAt(".offset", infoOffs[i], ErrLayout, fmt.Sprintf("tensor %q data [%d, %d+%d) extends past the end of the file (%d bytes)", t.Name, abs, abs, t.Size, size))
		}
		t.Offset = abs
		want = rel + alignUp(t.Size, f.Alignment)
	}
	return f, nil
}

func alignUp(n, a uint64) uint64 {
	if r := n % a; r != 0 {
		return n + a - r
	}
	return n
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Value returns the value of key.
func (f *File) Value(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KV[i].Value, true
}

// Uint returns key's value if it is a non-negative integer of any width.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns key's value if it is a float32 or float64.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// String returns key's value if it is a string.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Value(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// Architecture returns general.architecture, or "" if absent.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// archUint returns <arch>.<suffix> as an int, 0 if absent.
func (f *File) archUint(suffix string) int {
	v, ok := f.Uint(f.Architecture() + "." + suffix)
	if !ok || v > math.MaxInt32 {
		return 0
	}
	return int(v)
}

// WalkBlocks is how many layers a walk over the file's blocks may visit:
// <arch>.block_count, but no more than one past the highest N of its
// blk.N.* tensors (0 with none), which a corrupt block_count must not
// stretch.
func (f *File) WalkBlocks() int {
	n := 0
	for _, t := range f.Tensors {
		rest, ok := strings.CutPrefix(t.Name, "blk.")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ".")
		if l, err := strconv.Atoi(num); ok && err == nil && l >= n {
			n = l + 1
		}
	}
	return min(n, f.BlockCount())
}

// ExpertCount returns <arch>.expert_count, 0 for a dense model.
func (f *File) ExpertCount() int { return f.archUint("expert_count") }

// ExpertUsedCount returns <arch>.expert_used_count, 0 for a dense model.
func (f *File) ExpertUsedCount() int { return f.archUint("expert_used_count") }

// BlockCount returns <arch>.block_count (the number of layers).
func (f *File) BlockCount() int { return f.archUint("block_count") }

// ParamCount returns the total number of tensor elements.
func (f *File) ParamCount() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Elements()
	}
	return n
}

// ExpertTensorNames lists, in order, the stacked expert tensors of a layer
// whose slices make up one expert.
var ExpertTensorNames = []string{"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}

// ExpertRanges returns the byte ranges that hold expert expert of layer
// layer: its slice of each of blk.<layer>.ffn_{gate,up,down}_exps.weight that
// exists. A stacked tensor with ne[2] = n_expert stores expert e as the
// contiguous e-th 1/n_expert of its data.
func (f *File) ExpertRanges(layer, expert int) ([]Range, error) {
	n := f.ExpertCount()
	if n == 0 {
		return nil, ErrNotMoE
	}
	if layer < 0 || layer >= f.BlockCount() {
		return nil, fmt.Errorf("%w: layer %d, model has %d", ErrRange, layer, f.BlockCount())
	}
	if expert < 0 || expert >= n {
		return nil, fmt.Errorf("%w: expert %d, model has %d", ErrRange, expert, n)
	}
	var out []Range
	for _, base := range ExpertTensorNames {
		name := fmt.Sprintf("blk.%d.%s.weight", layer, base)
		t, ok := f.Tensor(name)
		if !ok {
			continue
		}
		if len(t.Dims) != 3 || t.Dims[2] != uint64(n) || t.Size%uint64(n) != 0 {
			return nil, fmt.Errorf("%w: tensor %q has dims %v, want 3 dims with ne[2] = %d experts", ErrTensor, name, t.Dims, n)
		}
		per := t.Size / uint64(n)
		out = append(out, Range{Off: t.Offset + uint64(expert)*per, Len: per})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no blk.%d.ffn_*_exps.weight tensors", ErrNotFound, layer)
	}
	return out, nil
}

// cursor reads little-endian fields from an io.ReaderAt through a window
// buffer, checking every read against the file size, and keeps the account
// of MaxMetadataBytes. One goroutine at a time.
type cursor struct {
	r    io.ReaderAt
	size int64
	off  int64 // next byte to read

	buf    []byte
	bufOff int64 // file offset of buf[0]

	// budget is what decoded metadata may still cost, in bytes.
	budget int64
	// scope is what is being read; error field names start with it.
	scope scope
}

// windowSize is the most bytes the cursor reads at once: fields, strings and
// arrays longer than this are read in pieces, so the buffer never grows with
// what a file claims.
const windowSize = 64 << 10

// initialCap is the most entries the key/value and tensor tables are made
// with before any is read.
const initialCap = 1024

// scopeKind says which part of the file a scope names.
type scopeKind uint8

const (
	inHeader      scopeKind = iota // no prefix: "kv_count", "data section"
	inKV                           // kv[i]
	inValue                        // kv["key"]
	inElem                         // kv["key"][i]
	inTensorIndex                  // tensor_info[i]
	inTensor                       // tensor_info[i "name"]
)

// scope names the entry being read. Field names are built from it only when
// an error is returned: a file has hundreds of thousands of strings, and a
// hostile key of many KiB quoted per key cost more than the key itself.
type scope struct {
	kind scopeKind
	i    uint64
	name string
}

func (s scope) String() string {
	switch s.kind {
	case inKV:
		return fmt.Sprintf("kv[%d]", s.i)
	case inValue:
		return fmt.Sprintf("kv[%q]", s.name)
	case inElem:
		return fmt.Sprintf("kv[%q][%d]", s.name, s.i)
	case inTensorIndex:
		return fmt.Sprintf("tensor_info[%d]", s.i)
	case inTensor:
		return fmt.Sprintf("tensor_info[%d %q]", s.i, s.name)
	}
	return ""
}

// errAt returns a *FormatError for field (appended to the current scope) at
// absolute offset off.
func (c *cursor) errAt(field string, off int64, err error, detail string) error {
	return &FormatError{Field: c.scope.String() + field, Offset: off, Err: err, Detail: detail}
}

// charge takes n bytes from the metadata budget for the field at off.
func (c *cursor) charge(field string, off int64, n uint64) error {
	if n > uint64(c.budget) {
		return c.errAt(field, off, ErrLimit, fmt.Sprintf("metadata would take more than %d bytes of memory (MaxMetadataBytes)", MaxMetadataBytes))
	}
	c.budget -= int64(n)
	return nil
}

// bytes returns the next n bytes; the slice is valid until the next read.
// Callers ask for at most windowSize, so the buffer stays that size.
func (c *cursor) bytes(field string, n int64) ([]byte, error) {
	if n < 0 || n > c.size-c.off {
		return nil, c.errAt(field, c.off, ErrTruncated, fmt.Sprintf("need %d bytes, %d left", n, max(c.size-c.off, 0)))
	}
	if c.off >= c.bufOff && c.off+n <= c.bufOff+int64(len(c.buf)) {
		b := c.buf[c.off-c.bufOff : c.off-c.bufOff+n]
		c.off += n
		return b, nil
	}
	want := min(max(n, windowSize), c.size-c.off)
	if int64(cap(c.buf)) < want {
		c.buf = make([]byte, want)
	}
	c.buf = c.buf[:want]
	m, err := c.r.ReadAt(c.buf, c.off)
	if int64(m) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = ErrTruncated
		}
		c.buf = c.buf[:0]
		return nil, c.errAt(field, c.off, ErrTruncated, fmt.Sprintf("read: %v", err))
	}
	c.buf = c.buf[:m]
	c.bufOff = c.off
	c.off += n
	return c.buf[:n], nil
}

func (c *cursor) u32(field string) (uint32, error) {
	b, err := c.bytes(field, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *cursor) u64(field string) (uint64, error) {
	b, err := c.bytes(field, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// strLimit is how long one kind of string may be, the error a longer one
// gets, and what each costs against MaxMetadataBytes.
type strLimit struct {
	max  uint64
	err  error
	name string // named in the error
	// charged strings cost base plus their bytes (rounded up to 8, as the
	// allocator does); tensor names are not charged, they are the tensor
	// table's.
	charged bool
	base    uint64
}

var (
	keyLimit   = strLimit{MaxKeyLen, ErrLimit, "MaxKeyLen", true, kvCost}
	valueLimit = strLimit{MaxStringLen, ErrLimit, "MaxStringLen", true, stringCost}
	// elemLimit leaves out the header, charged with the array's slice.
	elemLimit = strLimit{MaxStringLen, ErrLimit, "MaxStringLen", true, 0}
	nameLimit = strLimit{MaxNameLen, ErrTensor, "GGML_MAX_NAME-1", false, 0}
)

// str reads a string, checking its length against the bytes left and lim
// before reading or allocating any of it.
func (c *cursor) str(field string, lim strLimit) (string, error) {
	off := c.off
	n, err := c.u64(field)
	if err != nil {
		if fe, ok := err.(*FormatError); ok {
			fe.Field += ".len" // built here, not per call: strings are many
		}
		return "", err
	}
	if n > uint64(c.size-c.off) {
		return "", c.errAt(field, off, ErrTooLarge, fmt.Sprintf("string length %d, %d bytes left", n, c.size-c.off))
	}
	if n > lim.max {
		return "", c.errAt(field, off, lim.err, fmt.Sprintf("string of %d bytes, at most %d (%s)", n, lim.max, lim.name))
	}
	if lim.charged {
		if err := c.charge(field, off, lim.base+alignUp(n, 8)); err != nil {
			return "", err
		}
	}
	if n <= windowSize {
		b, err := c.bytes(field, int64(n))
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	// A long string is copied window by window into its one allocation.
	var sb strings.Builder
	sb.Grow(int(n))
	for left := int64(n); left > 0; {
		b, err := c.bytes(field, min(left, windowSize))
		if err != nil {
			return "", err
		}
		sb.Write(b)
		left -= int64(len(b))
	}
	return sb.String(), nil
}

func (c *cursor) value() (any, error) {
	off := c.off
	t, err := c.u32(".type")
	if err != nil {
		return nil, err
	}
	vt := ValueType(t)
	if vt == ValueArray {
		return c.array()
	}
	if vt != ValueString && vt.fixedSize() == 0 {
		return nil, c.errAt(".type", off, ErrValueType, fmt.Sprintf("type %d", t))
	}
	if vt == ValueString {
		return c.str("", valueLimit)
	}
	b, err := c.bytes("", vt.fixedSize())
	if err != nil {
		return nil, err
	}
	return decodeScalar(vt, b), nil
}

func decodeScalar(vt ValueType, b []byte) any {
	le := binary.LittleEndian
	switch vt {
	case ValueUint8:
		return b[0]
	case ValueInt8:
		return int8(b[0])
	case ValueBool:
		return b[0] != 0
	case ValueUint16:
		return le.Uint16(b)
	case ValueInt16:
		return int16(le.Uint16(b))
	case ValueUint32:
		return le.Uint32(b)
	case ValueInt32:
		return int32(le.Uint32(b))
	case ValueFloat32:
		return math.Float32frombits(le.Uint32(b))
	case ValueUint64:
		return le.Uint64(b)
	case ValueInt64:
		return int64(le.Uint64(b))
	case ValueFloat64:
		return math.Float64frombits(le.Uint64(b))
	}
	panic("unreachable")
}

// array reads an array value; the scope names its key.
func (c *cursor) array() (any, error) {
	off := c.off
	t, err := c.u32(".elem_type")
	if err != nil {
		return nil, err
	}
	vt := ValueType(t)
	if vt != ValueString && vt.fixedSize() == 0 {
		return nil, c.errAt(".elem_type", off, ErrValueType, fmt.Sprintf("array element type %v", vt))
	}
	lenOff := c.off
	n, err := c.u64(".len")
	if err != nil {
		return nil, err
	}
	elem := vt.fixedSize()
	cost := uint64(elem)
	if vt == ValueString {
		elem, cost = 8, stringCost
	}
	if left := uint64(c.size - c.off); n > left/uint64(elem) {
		return nil, c.errAt(".len", lenOff, ErrTooLarge, fmt.Sprintf("%d elements of %v cannot fit in %d bytes", n, vt, left))
	}
	if n > MaxArrayLen {
		return nil, c.errAt(".len", lenOff, ErrLimit, fmt.Sprintf("%d elements of %v, at most %d (MaxArrayLen)", n, vt, MaxArrayLen))
	}
	// Made at its full length only once the budget allows it; the string
	// bytes are charged one by one as they are read.
	if err := c.charge(".len", lenOff, sliceCost+n*cost); err != nil {
		return nil, err
	}
	if vt == ValueString {
		out := make([]string, n)
		key := c.scope.name
		for i := range out {
			c.scope = scope{kind: inElem, name: key, i: uint64(i)}
			if out[i], err = c.str("", elemLimit); err != nil {
				return nil, err
			}
		}
		c.scope = scope{kind: inValue, name: key}
		return out, nil
	}
	return c.decodeArray(vt, int(n))
}

// decodeArray reads n little-endian elements of the fixed-size type vt.
func (c *cursor) decodeArray(vt ValueType, n int) (any, error) {
	le := binary.LittleEndian
	switch vt {
	case ValueUint8:
		return readEach(c, n, 1, func(b []byte) uint8 { return b[0] })
	case ValueInt8:
		return readEach(c, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case ValueBool:
		return readEach(c, n, 1, func(b []byte) bool { return b[0] != 0 })
	case ValueUint16:
		return readEach(c, n, 2, le.Uint16)
	case ValueInt16:
		return readEach(c, n, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case ValueUint32:
		return readEach(c, n, 4, le.Uint32)
	case ValueInt32:
		return readEach(c, n, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case ValueFloat32:
		return readEach(c, n, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case ValueUint64:
		return readEach(c, n, 8, le.Uint64)
	case ValueInt64:
		return readEach(c, n, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case ValueFloat64:
		return readEach(c, n, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	}
	panic("unreachable")
}

// readEach reads n elements of size bytes each, a window at a time, and
// decodes each with get.
func readEach[T any](c *cursor, n, size int, get func([]byte) T) ([]T, error) {
	out := make([]T, n)
	per := windowSize / size
	for i := 0; i < n; i += per {
		k := min(per, n-i)
		b, err := c.bytes("", int64(k*size))
		if err != nil {
			return nil, err
		}
		for j := range k {
			out[i+j] = get(b[j*size:])
		}
	}
	return out, nil
}

// dimField names the dims of a tensor info without building a string per
// tensor.
var dimField = [MaxDims]string{".dims[0]", ".dims[1]", ".dims[2]", ".dims[3]"}

func (c *cursor) tensorInfo(i uint64) (TensorInfo, error) {
	var ti TensorInfo
	c.scope = scope{kind: inTensorIndex, i: i}
	name, err := c.str(".name", nameLimit)
	if err != nil {
		return ti, err
	}
	ti.Name = name
	c.scope = scope{kind: inTensor, i: i, name: name}
	off := c.off
	nd, err := c.u32(".n_dims")
	if err != nil {
		return ti, err
	}
	if nd > MaxDims {
		return ti, c.errAt(".n_dims", off, ErrTensor, fmt.Sprintf("%d dimensions, at most %d", nd, MaxDims))
	}
	dimsOff := c.off
	ti.Dims = make([]uint64, nd)
	elems := uint64(1)
	for j := range ti.Dims {
		d, err := c.u64(dimField[j])
		if err != nil {
			return ti, err
		}
		if d > math.MaxInt64 {
			return ti, c.errAt(dimField[j], c.off-8, ErrTensor, fmt.Sprintf("dimension %d is negative as int64", d))
		}
		ti.Dims[j] = d
		if d != 0 && elems > math.MaxInt64/d {
			return ti, c.errAt(".dims", dimsOff, ErrTensor, fmt.Sprintf("element count of %v overflows int64", ti.Dims))
		}
		elems *= d
	}
	off = c.off
	t, err := c.u32(".type")
	if err != nil {
		return ti, err
	}
	ti.Type = Type(t)
	if !ti.Type.Valid() {
		return ti, c.errAt(".type", off, ErrTensor, fmt.Sprintf("unknown ggml type %d", t))
	}
	ne0 := uint64(1)
	if nd > 0 {
		ne0 = ti.Dims[0]
	}
	if ne0%ti.Type.BlockSize() != 0 {
		return ti, c.errAt(".dims[0]", dimsOff, ErrTensor, fmt.Sprintf("row of %d elements is not a multiple of the %v block size %d", ne0, ti.Type, ti.Type.BlockSize()))
	}
	row, ok := ti.Type.RowBytes(ne0)
	if !ok {
		return ti, c.errAt(".dims[0]", dimsOff, ErrTensor, fmt.Sprintf("row of %d %v elements overflows int64 bytes", ne0, ti.Type))
	}
	rows := uint64(0)
	if ne0 != 0 {
		rows = elems / ne0
	}
	if rows != 0 && row > math.MaxInt64/rows {
		return ti, c.errAt(".dims", dimsOff, ErrTensor, "byte size overflows int64")
	}
	ti.Size = row * rows
	if ti.Offset, err = c.u64(".offset"); err != nil {
		return ti, err
	}
	return ti, nil
}

// String returns a one-line description of the tensor.
func (t TensorInfo) String() string {
	dims := make([]string, len(t.Dims))
	for i, d := range t.Dims {
		dims[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s %s [%s] @%d+%d", t.Name, t.Type, strings.Join(dims, " "), t.Offset, t.Size)
}
