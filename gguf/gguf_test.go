package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleWriter declares a small MoE-shaped file with every value type.
func sampleWriter(tb testing.TB) *Writer {
	tb.Helper()
	w := &Writer{}
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(w.SetKV("general.architecture", "llama"))
	must(w.SetKV("llama.block_count", uint32(2)))
	must(w.SetKV("llama.expert_count", uint32(4)))
	must(w.SetKV("llama.expert_used_count", uint32(2)))
	must(w.SetKV("t.u8", uint8(7)))
	must(w.SetKV("t.i8", int8(-7)))
	must(w.SetKV("t.u16", uint16(700)))
	must(w.SetKV("t.i16", int16(-700)))
	must(w.SetKV("t.i32", int32(-70000)))
	must(w.SetKV("t.f32", float32(1.5)))
	must(w.SetKV("t.bool", true))
	must(w.SetKV("t.u64", uint64(1)<<40))
	must(w.SetKV("t.i64", int64(-1)<<40))
	must(w.SetKV("t.f64", 2.25))
	must(w.SetKV("t.strs", []string{"a", "", "ccc"}))
	must(w.SetKV("t.f32s", []float32{1, 2, 3}))
	must(w.SetKV("t.i32s", []int32{-1, 6}))
	must(w.SetKV("t.bools", []bool{true, false}))
	must(w.AddTensor("token_embd.weight", TypeF16, 64, 10))
	for l := 0; l < 2; l++ {
		must(w.AddTensor(fmt.Sprintf("blk.%d.attn_norm.weight", l), TypeF32, 64))
		must(w.AddTensor(fmt.Sprintf("blk.%d.ffn_gate_exps.weight", l), TypeQ8_0, 64, 32, 4))
		must(w.AddTensor(fmt.Sprintf("blk.%d.ffn_up_exps.weight", l), TypeQ4_0, 64, 32, 4))
		must(w.AddTensor(fmt.Sprintf("blk.%d.ffn_down_exps.weight", l), TypeQ8_0, 32, 64, 4))
	}
	return w
}

// fillData writes each tensor's bytes as its index repeated.
func fillData(i int, t TensorInfo, w io.Writer) error {
	_, err := w.Write(bytes.Repeat([]byte{byte(i + 1)}, int(t.Size)))
	return err
}

func sampleFile(tb testing.TB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := sampleWriter(tb).Write(&buf, fillData); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	w := sampleWriter(t)
	data := sampleFile(t)
	layout, total := w.Layout()
	if int64(len(data)) != total {
		t.Fatalf("file size: got %d, want %d (Layout)", len(data), total)
	}
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Errorf("header: got version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if len(f.KV) != len(w.kvs) {
		t.Fatalf("kv count: got %d, want %d", len(f.KV), len(w.kvs))
	}
	for i, kv := range w.kvs {
		if !reflect.DeepEqual(f.KV[i], kv) {
			t.Errorf("kv %d: got %#v, want %#v", i, f.KV[i], kv)
		}
	}
	if !reflect.DeepEqual(f.Tensors, layout) {
		t.Errorf("tensors: got %v, want %v", f.Tensors, layout)
	}
	for i, ti := range f.Tensors {
		b := data[ti.Offset : ti.Offset+ti.Size]
		if b[0] != byte(i+1) || b[len(b)-1] != byte(i+1) {
			t.Errorf("tensor %s: data at its range starts %d, want %d", ti.Name, b[0], i+1)
		}
	}
	if got := f.Architecture(); got != "llama" {
		t.Errorf("Architecture: got %q, want llama", got)
	}
	if got := f.ExpertCount(); got != 4 {
		t.Errorf("ExpertCount: got %d, want 4", got)
	}
	if got := f.BlockCount(); got != 2 {
		t.Errorf("BlockCount: got %d, want 2", got)
	}
	if v, ok := f.Uint("t.i8"); ok {
		t.Errorf("Uint(t.i8 = -7): got %d, true, want false", v)
	}
	if v, ok := f.Uint("t.u64"); !ok || v != 1<<40 {
		t.Errorf("Uint(t.u64): got %d %v, want %d true", v, ok, uint64(1)<<40)
	}
	ti, ok := f.Tensor("blk.1.ffn_up_exps.weight")
	if !ok || ti.Size != 64/32*18*32*4 {
		t.Errorf("Tensor(blk.1.ffn_up_exps.weight): got %v %v, want size %d", ti, ok, 64/32*18*32*4)
	}
}

func TestExpertRanges(t *testing.T) {
	data := sampleFile(t)
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	gate, _ := f.Tensor("blk.1.ffn_gate_exps.weight")
	up, _ := f.Tensor("blk.1.ffn_up_exps.weight")
	down, _ := f.Tensor("blk.1.ffn_down_exps.weight")
	got, err := f.ExpertRanges(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{
		{gate.Offset + 3*gate.Size/4, gate.Size / 4},
		{up.Offset + 3*up.Size/4, up.Size / 4},
		{down.Offset + 3*down.Size/4, down.Size / 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ExpertRanges(1, 3): got %v, want %v", got, want)
	}
	// The four experts tile each stacked tensor exactly.
	var sum uint64
	for e := 0; e < 4; e++ {
		r, err := f.ExpertRanges(0, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range r {
			sum += x.Len
		}
	}
	g0, _ := f.Tensor("blk.0.ffn_gate_exps.weight")
	u0, _ := f.Tensor("blk.0.ffn_up_exps.weight")
	d0, _ := f.Tensor("blk.0.ffn_down_exps.weight")
	if sum != g0.Size+u0.Size+d0.Size {
		t.Errorf("sum of expert ranges: got %d, want %d", sum, g0.Size+u0.Size+d0.Size)
	}
	for _, tc := range []struct {
		layer, expert int
		want          error
	}{{2, 0, ErrRange}, {-1, 0, ErrRange}, {0, 4, ErrRange}, {0, -1, ErrRange}} {
		if _, err := f.ExpertRanges(tc.layer, tc.expert); !errors.Is(err, tc.want) {
			t.Errorf("ExpertRanges(%d, %d): got %v, want %v", tc.layer, tc.expert, err, tc.want)
		}
	}
	dense := &Writer{}
	_ = dense.SetKV("general.architecture", "llama")
	_ = dense.SetKV("llama.block_count", uint32(1))
	var buf bytes.Buffer
	if _, err := dense.Write(&buf, fillData); err != nil {
		t.Fatal(err)
	}
	fd, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.ExpertRanges(0, 0); !errors.Is(err, ErrNotMoE) {
		t.Errorf("dense ExpertRanges: got %v, want ErrNotMoE", err)
	}
}

// TestTruncated cuts a valid file at every length short of its header end
// and at a spread of points through its data: each must give an error that
// names an offset, never a panic.
func TestTruncated(t *testing.T) {
	data := sampleFile(t)
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		_, err := Read(bytes.NewReader(data[:n]), int64(n))
		if err == nil {
			t.Fatalf("truncated at %d of %d: got nil error, want one", n, len(data))
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("truncated at %d: got %T %v, want *FormatError", n, err, err)
		}
		if n < int(f.DataOffset) && fe.Offset > int64(n) {
			t.Errorf("truncated at %d: error offset %d lies past the end", n, fe.Offset)
		}
	}
}

// TestReaderAtSize checks that the size argument, not the reader, bounds
// parsing: a size smaller than the data behind the reader truncates.
func TestReaderAtSize(t *testing.T) {
	data := sampleFile(t)
	_, err := Read(bytes.NewReader(data), int64(len(data))-1)
	if !errors.Is(err, ErrLayout) {
		t.Errorf("size one short: got %v, want ErrLayout", err)
	}
}

// patch returns a copy of data with b written at off.
func patch(data []byte, off int, b []byte) []byte {
	out := append([]byte(nil), data...)
	copy(out[off:], b)
	return out
}

func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// minimal builds a file by hand: header counts, then raw body.
func minimal(nTensors, nKV uint64, body ...[]byte) []byte {
	b := []byte(Magic)
	b = append(b, u32le(3)...)
	b = append(b, u64le(nTensors)...)
	b = append(b, u64le(nKV)...)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

func kvBytes(key string, typ uint32, val []byte) []byte {
	b := append(u64le(uint64(len(key))), key...)
	b = append(b, u32le(typ)...)
	return append(b, val...)
}

func tensorBytes(name string, dims []uint64, typ uint32, off uint64) []byte {
	b := append(u64le(uint64(len(name))), name...)
	b = append(b, u32le(uint32(len(dims)))...)
	for _, d := range dims {
		b = append(b, u64le(d)...)
	}
	b = append(b, u32le(typ)...)
	return append(b, u64le(off)...)
}

func TestCorrupt(t *testing.T) {
	data := sampleFile(t)
	arr := func(elem uint32, n uint64) []byte { return append(u32le(elem), u64le(n)...) }
	pad := make([]byte, 64)
	tests := []struct {
		name      string
		data      []byte
		want      error
		wantField string
		wantOff   int64
	}{
		{"bad magic", patch(data, 0, []byte("GGUG")), ErrBadMagic, "magic", 0},
		{"version 1", patch(data, 4, u32le(1)), ErrVersion, "version", 4},
		{"version 4", patch(data, 4, u32le(4)), ErrVersion, "version", 4},
		{"huge tensor count", patch(data, 8, u64le(1<<62)), ErrTooLarge, "tensor_count", 8},
		{"huge kv count", patch(data, 16, u64le(1<<62)), ErrTooLarge, "kv_count", 16},
		{"huge key length", patch(data, 24, u64le(1<<60)), ErrTooLarge, "kv[0].key", 24},
		{"huge string", minimal(0, 1, kvBytes("k", 8, u64le(1<<40))), ErrTooLarge, `kv["k"]`, 24 + 8 + 1 + 4},
		{"huge array", minimal(0, 1, kvBytes("k", 9, arr(4, 1<<61)), pad), ErrTooLarge, `kv["k"].len`, 24 + 8 + 1 + 4 + 4},
		{"huge string array", minimal(0, 1, kvBytes("k", 9, arr(8, 1<<40)), pad), ErrTooLarge, `kv["k"].len`, 24 + 8 + 1 + 4 + 4},
		{"bad value type", minimal(0, 1, kvBytes("k", 13, pad)), ErrValueType, `kv["k"].type`, 24 + 8 + 1},
		{"nested array", minimal(0, 1, kvBytes("k", 9, arr(9, 1)), pad), ErrValueType, `kv["k"].elem_type`, 24 + 8 + 1 + 4},
		{"duplicate key", minimal(0, 2, kvBytes("k", 0, []byte{1}), kvBytes("k", 0, []byte{1})), ErrDuplicate, "kv[1].key", 24 + 14},
		{"empty key", minimal(0, 1, kvBytes("", 0, []byte{1})), ErrEmptyName, "kv[0].key", 24},
		{"empty tensor name", minimal(1, 0, tensorBytes("", []uint64{8}, 0, 0), pad), ErrEmptyName, "tensor_info[0].name", 24},
		{"alignment not pow2", minimal(0, 1, kvBytes("general.alignment", 4, u32le(48))), ErrAlignment, `kv["general.alignment"]`, 24},
		{"alignment zero", minimal(0, 1, kvBytes("general.alignment", 4, u32le(0))), ErrAlignment, `kv["general.alignment"]`, 24},
		{"alignment wrong type", minimal(0, 1, kvBytes("general.alignment", 10, u64le(32))), ErrAlignment, `kv["general.alignment"]`, 24},
		{"too many dims", minimal(1, 0, tensorBytes("t", []uint64{1, 1, 1, 1, 1}, 0, 0), pad), ErrTensor, `tensor_info[0 "t"].n_dims`, 24 + 9},
		{"negative dim", minimal(1, 0, tensorBytes("t", []uint64{1 << 63}, 0, 0), pad), ErrTensor, `tensor_info[0 "t"].dims[0]`, 24 + 13},
		{"element overflow", minimal(1, 0, tensorBytes("t", []uint64{1 << 32, 1 << 32}, 0, 0), pad), ErrTensor, `tensor_info[0 "t"].dims`, 24 + 13},
		{"unknown type", minimal(1, 0, tensorBytes("t", []uint64{32}, 4, 0), pad), ErrTensor, `tensor_info[0 "t"].type`, 24 + 21},
		{"partial block", minimal(1, 0, tensorBytes("t", []uint64{33}, 8, 0), pad), ErrTensor, `tensor_info[0 "t"].dims[0]`, 24 + 13},
		// 2^62 f64 values are 2^65 bytes, which wrapped to a row of 0 bytes.
		{"row size overflow", minimal(1, 0, tensorBytes("t", []uint64{1 << 62}, uint32(TypeF64), 0), pad), ErrTensor, `tensor_info[0 "t"].dims[0]`, 24 + 13},
		{"name too long", minimal(1, 0, tensorBytes(strings.Repeat("n", 64), []uint64{1}, 0, 0), pad), ErrTensor, "tensor_info[0].name", 24},
		{"duplicate tensor", minimal(2, 0, tensorBytes("t", []uint64{8}, 0, 0), tensorBytes("t", []uint64{8}, 0, 32), pad), ErrDuplicate, "tensor_info[1].name", 24 + 33},
		{"misplaced tensor", minimal(1, 0, tensorBytes("t", []uint64{8}, 0, 32), pad, pad), ErrLayout, `tensor_info[0].offset`, 24},
		{"data past end", minimal(1, 0, tensorBytes("t", []uint64{64}, 0, 0), pad), ErrLayout, `tensor_info[0].offset`, 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.data), int64(len(tc.data)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T, want *FormatError", err)
			}
			if fe.Field != tc.wantField || fe.Offset != tc.wantOff {
				t.Errorf("got field %s offset %d, want field %s offset %d (%v)", fe.Field, fe.Offset, tc.wantField, tc.wantOff, err)
			}
			if !strings.HasPrefix(err.Error(), "gguf: ") || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", tc.wantOff)) {
				t.Errorf("message %q does not start with gguf: and name the offset", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if err := os.WriteFile(good, sampleFile(t), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != good || f.FileSize != int64(len(sampleFile(t))) {
		t.Errorf("got path %q size %d, want %q %d", f.Path, f.FileSize, good, len(sampleFile(t)))
	}
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGUF\x03\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(bad)
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(truncated): got %v, want ErrTruncated naming the path", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing): got %v, want ErrNotExist", err)
	}
}

func TestWriterErrors(t *testing.T) {
	w := &Writer{}
	if err := w.SetKV("a", uint32(1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"dup key", w.SetKV("a", uint32(2))},
		{"bad value", w.SetKV("b", struct{}{})},
		{"partial block", w.AddTensor("q", TypeQ8_0, 31)},
		{"unknown type", w.AddTensor("x", Type(4), 32)},
		{"five dims", w.AddTensor("x", TypeF32, 1, 1, 1, 1, 1)},
		{"element overflow", w.AddTensor("x", TypeF32, 1<<32, 1<<32)},
		{"row overflow", w.AddTensor("x", TypeF64, 1<<62)},
		{"size overflow", w.AddTensor("x", TypeF32, 1<<40, 1<<22)},
		{"key too long", w.SetKV(strings.Repeat("k", MaxKeyLen+1), uint8(1))},
		{"string too long", w.SetKV("s", strings.Repeat("s", MaxStringLen+1))},
		{"array string too long", w.SetKV("s", []string{"", strings.Repeat("s", MaxStringLen+1)})},
		{"array too long", w.SetKV("a", make([]uint8, MaxArrayLen+1))},
		// The Writer pads by Writer.Alignment; a key saying another
		// value put readers' tensors in the padding.
		{"alignment key", w.SetKV("general.alignment", uint32(32))},
	} {
		if !errors.Is(tc.err, ErrWrite) {
			t.Errorf("%s: got %v, want ErrWrite", tc.name, tc.err)
		}
	}
	if err := w.AddTensor("t", TypeF32, 4); err != nil {
		t.Fatal(err)
	}
	short := func(i int, t TensorInfo, w io.Writer) error { _, err := w.Write([]byte{1}); return err }
	if _, err := w.Write(io.Discard, short); !errors.Is(err, ErrWrite) {
		t.Errorf("short tensor data: got %v, want ErrWrite", err)
	}
}

// TestWriterCountsAlignmentKey: the general.alignment key the Writer adds
// counts against MaxKV, so a full table fails at Write instead of
// writing a file Read refuses.
func TestWriterCountsAlignmentKey(t *testing.T) {
	w := &Writer{Alignment: 64}
	for i := range MaxKV {
		if err := w.SetKV(fmt.Sprintf("k%d", i), uint8(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write(io.Discard, fillData); !errors.Is(err, ErrWrite) {
		t.Errorf("MaxKV keys and an alignment: got %v, want ErrWrite", err)
	}
}

func TestAlignment(t *testing.T) {
	w := &Writer{Alignment: 64}
	_ = w.AddTensor("a", TypeF32, 3)
	_ = w.AddTensor("b", TypeF32, 5)
	var buf bytes.Buffer
	if _, err := w.Write(&buf, fillData); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 {
		t.Errorf("alignment: got %d, want 64", f.Alignment)
	}
	for _, ti := range f.Tensors {
		if ti.Offset%64 != 0 {
			t.Errorf("tensor %s at %d, not 64-aligned", ti.Name, ti.Offset)
		}
	}
}

func TestRowBytes(t *testing.T) {
	for _, tc := range []struct {
		t      Type
		n      uint64
		want   uint64
		wantOK bool
	}{
		{TypeF32, 10, 40, true},
		{TypeQ8_0, 64, 68, true},
		{TypeQ4_K, 512, 288, true},
		{TypeQ6_K, 256, 210, true},
		{TypeQ8_0, 33, 0, false},
		{Type(4), 32, 0, false},
		{TypeF32, math.MaxInt64 / 4, math.MaxInt64 / 4 * 4, true},
		{TypeF32, math.MaxInt64/4 + 1, 0, false},
		{TypeF64, 1 << 62, 0, false}, // 2^65 bytes wrapped to 0
		{TypeQ8_0, 1 << 62, 1 << 57 * 34, true},
		{TypeQ8_0, 1 << 63, 0, false},       // 2^58 blocks of 34 bytes
		{TypeF32, math.MaxUint64, 0, false}, // n itself past int64
	} {
		got, ok := tc.t.RowBytes(tc.n)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%v.RowBytes(%d): got %d %v, want %d %v", tc.t, tc.n, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestTypeTraits(t *testing.T) {
	for _, tc := range []struct {
		t            Type
		name         string
		block, bytes uint64
	}{
		{TypeF32, "f32", 1, 4}, {TypeF16, "f16", 1, 2}, {TypeQ4_0, "q4_0", 32, 18},
		{TypeQ8_0, "q8_0", 32, 34}, {TypeQ4_K, "q4_K", 256, 144}, {TypeQ6_K, "q6_K", 256, 210},
		{TypeBF16, "bf16", 1, 2}, {TypeMXFP4, "mxfp4", 32, 17}, {Type(4), "type(4)", 0, 0},
	} {
		if got := tc.t.String(); got != tc.name {
			t.Errorf("String(%d): got %q, want %q", tc.t, got, tc.name)
		}
		if tc.t.BlockSize() != tc.block || tc.t.BlockBytes() != tc.bytes {
			t.Errorf("%v: got block %d/%d bytes, want %d/%d", tc.t, tc.t.BlockSize(), tc.t.BlockBytes(), tc.block, tc.bytes)
		}
		if tc.block != 0 {
			if p, err := ParseType(strings.ToUpper(tc.name)); err != nil || p != tc.t {
				t.Errorf("ParseType(%q): got %v %v, want %v", strings.ToUpper(tc.name), p, err, tc.t)
			}
		}
	}
}

func BenchmarkRead(b *testing.B) {
	// A vocabulary-sized metadata section, as real models have.
	w := &Writer{}
	toks := make([]string, 32000)
	for i := range toks {
		toks[i] = fmt.Sprintf("tok%05d", i)
	}
	_ = w.SetKV("tokenizer.ggml.tokens", toks)
	_ = w.SetKV("tokenizer.ggml.scores", make([]float32, len(toks)))
	for i := 0; i < 200; i++ {
		_ = w.AddTensor(fmt.Sprintf("blk.%d.w", i), TypeQ8_0, 64, 2)
	}
	var buf bytes.Buffer
	if _, err := w.Write(&buf, fillData); err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes())
	b.ReportAllocs()
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := Read(r, int64(buf.Len())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/file")
}
