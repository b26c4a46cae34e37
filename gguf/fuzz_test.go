package gguf

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// holeReader reads as a sparse file does: data, then zeros up to size.
type holeReader struct {
	data []byte
	size int64
}

func (h holeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= h.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), h.size-off))
	c := 0
	if off < int64(len(h.data)) {
		c = copy(p[:n], h.data[off:])
	}
	clear(p[c:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// tensorTableCost is a generous bound on what one tensor info costs in
// memory (the TensorInfo, its name and dims, its index entry, and the
// tables' growth); the tensor table is the one thing Read may allocate
// beyond readAllocBound.
const tensorTableCost = 512

// FuzzRead checks that Read never panics, that every error is a
// *FormatError inside the file, that a file it accepts is consistent
// (tensors inside the file, aligned, in order, and ExpertRanges inside their
// tensors), and that no file makes it allocate more than readAllocBound
// beyond its tensor table. The file is the fuzzed bytes followed by a hole
// of zeros of fuzzed length, as a sparse file is, so a count or length may
// claim up to 2^62 bytes that cost nothing on disk; a reader that trusts the
// file's size for its allocations fails here.
func FuzzRead(f *testing.F) {
	f.Add(sampleFile(f), uint64(0))
	f.Add(minimal(0, 0), uint64(0))
	f.Add(minimal(1, 1, kvBytes("general.alignment", 4, u32le(64)), tensorBytes("t", []uint64{8}, 0, 0), make([]byte, 64)), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, hole uint64) {
		size := int64(len(data)) + int64(hole%(1<<62))
		var (
			file *File
			err  error
		)
		n := allocDuring(func() { file, err = Read(holeReader{data, size}, size) })
		// Tensor infos need distinct non-empty names, so only the fuzzed
		// bytes, never the hole, can hold them.
		if bound := uint64(readAllocBound + tensorTableCost*(len(data)/minTensorInfoSize+1)); n > bound {
			t.Fatalf("allocated %d bytes for a file of %d bytes (%d + a hole), want at most %d (%v)", n, size, len(data), bound, err)
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T %v, want *FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > size {
				t.Fatalf("error offset %d outside the file of %d bytes", fe.Offset, size)
			}
			return
		}
		prevEnd := file.DataOffset
		for _, ti := range file.Tensors {
			if ti.Offset < prevEnd || ti.Offset%file.Alignment != 0 || ti.Offset+ti.Size > uint64(size) {
				t.Fatalf("tensor %s at [%d, +%d): not aligned, in order and inside %d bytes", ti.Name, ti.Offset, ti.Size, size)
			}
			prevEnd = ti.Offset + ti.Size
		}
		for l := 0; l < min(file.BlockCount(), 4); l++ {
			for e := 0; e < min(file.ExpertCount(), 4); e++ {
				rs, err := file.ExpertRanges(l, e)
				if err != nil {
					continue
				}
				for _, r := range rs {
					if r.End() > uint64(size) {
						t.Fatalf("expert range %v past the end (%d)", r, size)
					}
				}
			}
		}
	})
}

// FuzzRoundTrip writes a file with fuzzed metadata and tensor shapes and
// checks Read gives back what was written.
func FuzzRoundTrip(f *testing.F) {
	f.Add("general.name", "x", uint64(32), uint64(2), uint8(8))
	f.Add("", "", uint64(0), uint64(0), uint8(0))
	f.Fuzz(func(t *testing.T, key, val string, ne0, ne1 uint64, typ uint8) {
		w := &Writer{}
		if err := w.SetKV(key, val); err != nil {
			if key == "" {
				return // refused, as it should be
			}
			t.Fatal(err)
		}
		ne0, ne1 = ne0%512, ne1%8
		if err := w.AddTensor("t", Type(typ), ne0, ne1); err != nil {
			return // invalid type or partial block: refused, as it should be
		}
		var buf bytes.Buffer
		if _, err := w.Write(&buf, fillData); err != nil {
			t.Fatal(err)
		}
		file, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("reading what Writer wrote: %v", err)
		}
		if got, _ := file.String(key); got != val {
			t.Errorf("value: got %q, want %q", got, val)
		}
		ti, _ := file.Tensor("t")
		if ti.Type != Type(typ) || ti.Dims[0] != ne0 || ti.Dims[1] != ne1 {
			t.Errorf("tensor: got %v, want %v [%d %d]", ti, Type(typ), ne0, ne1)
		}
	})
}

// FuzzQuant checks that the encoders never panic on any float32 bits, NaN
// and infinities included, that each writes exactly RowBytes, and that what
// it writes decodes to as many values. Error bounds are checked on real data
// in TestRoundTripError and TestKQuantError: for arbitrary bits there is
// none.
func FuzzQuant(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 192})
	f.Fuzz(func(t *testing.T, raw []byte) {
		x, _ := Decode(nil, TypeF32, raw[:len(raw)/4*4])
		for len(x)%QK_K != 0 {
			x = append(x, 0)
		}
		for _, typ := range []Type{TypeF16, TypeQ8_0, TypeQ4_0, TypeQ5_0, TypeQ5_1, TypeQ4_K, TypeQ5_K, TypeQ6_K} {
			b, err := Encode(nil, typ, x)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := typ.RowBytes(uint64(len(x))); uint64(len(b)) != want {
				t.Fatalf("%v: %d bytes, want %d", typ, len(b), want)
			}
			if y, err := Decode(nil, typ, b); err != nil || len(y) != len(x) {
				t.Fatalf("%v: decoded %d values, %v, want %d", typ, len(y), err, len(x))
			}
		}
	})
}
