package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// readAllocBound is what reading any file may allocate beyond its tensor
// table: the metadata budget plus the reader's own buffers and bookkeeping.
const readAllocBound = MaxMetadataBytes + 8<<20

// allocDuring returns the bytes the Go heap handed out while f ran. It
// counts every allocation, freed or not, so a huge slice made and dropped
// at once still shows.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// sparseFile writes the chunks at their offsets into a new file of size
// bytes and returns its path. The rest is a hole, so an 8 GiB file costs
// only the chunks on disk, and reads of the hole give zeros.
func sparseFile(tb testing.TB, size int64, chunks map[int64][]byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "sparse.gguf")
	fh, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	for off, b := range chunks {
		if _, err := fh.WriteAt(b, off); err != nil {
			tb.Fatal(err)
		}
	}
	if err := fh.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	return path
}

func arrHdr(elem uint32, n uint64) []byte { return append(u32le(elem), u64le(n)...) }

// manyStrings lays out n string values of strLen zero bytes each: one
// key/value per string, or one array of n strings when asArray is set.
func manyStrings(n int, strLen uint64, asArray bool) (map[int64][]byte, int64) {
	chunks := map[int64][]byte{}
	var off int64
	if asArray {
		chunks[0] = minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueString), uint64(n))))
		off = int64(len(chunks[0]))
	} else {
		chunks[0] = minimal(0, uint64(n))
		off = headerSize
	}
	for i := 0; i < n; i++ {
		var b []byte
		if asArray {
			b = u64le(strLen)
		} else {
			b = kvBytes(fmt.Sprintf("k%04d", i), uint32(ValueString), u64le(strLen))
		}
		chunks[off] = b
		off += int64(len(b)) + int64(strLen)
	}
	return chunks, off
}

// TestReadBoundedMemory reads sparse files whose headers claim huge counts
// and lengths that the file's size allows, and checks that each fails
// cleanly with the allocations bounded by readAllocBound. Before the
// absolute limits, the 2^28 key/value file made `strata inspect` grow past
// 4 GiB until the kernel killed it.
func TestReadBoundedMemory(t *testing.T) {
	const big = 8 << 30
	only := func(b []byte) map[int64][]byte { return map[int64][]byte{0: b} }
	kvsOf1MiB, kvsEnd := manyStrings(1024, 1<<20, false)
	elemsOf2MiB, elemsEnd := manyStrings(64, 2<<20, true)
	tests := []struct {
		name      string
		size      int64
		chunks    map[int64][]byte
		want      error
		wantField string // prefix of the error's field
	}{
		{"2^28 key/values (the issue's file)", big, only(minimal(0, 1<<28)), ErrLimit, "kv_count"},
		{"2^22 key/values", big, only(minimal(0, 1<<22)), ErrLimit, "kv_count"},
		{"2^28 tensor infos", big, only(minimal(1<<28, 0)), ErrLimit, "tensor_count"},
		{"2^22 tensor infos", big, only(minimal(1<<22, 0)), ErrLimit, "tensor_count"},
		{"key of 256 MiB", big, only(minimal(0, 1, u64le(256<<20))), ErrLimit, "kv[0].key"},
		{"string of 256 MiB", big, only(minimal(0, 1, kvBytes("k", uint32(ValueString), u64le(256<<20)))), ErrLimit, `kv["k"]`},
		{"array of 2^24 strings", big, only(minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueString), 1<<24)))), ErrLimit, `kv["k"].len`},
		{"array of 2^28 uint8", big, only(minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueUint8), 1<<28)))), ErrLimit, `kv["k"].len`},
		{"array of 2^25 float64", big, only(minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueFloat64), 1<<25)))), ErrLimit, `kv["k"].len`},
		{"array string of 256 MiB", big, only(minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueString), 2)), u64le(256<<20))), ErrLimit, `kv["k"][0]`},
		{"tensor name of 256 MiB", big, only(minimal(1, 0, u64le(256<<20))), ErrTensor, "tensor_info[0].name"},
		{"1024 keys of 1 MiB strings", kvsEnd, kvsOf1MiB, ErrLimit, `kv["k0`},
		{"64 array strings of 2 MiB", elemsEnd, elemsOf2MiB, ErrLimit, `kv["k"][`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := sparseFile(t, tc.size, tc.chunks)
			var err error
			n := allocDuring(func() { _, err = Open(path) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, tc.wantField) {
				t.Errorf("got %v, want a *FormatError for field %s…", err, tc.wantField)
			}
			t.Logf("%v; allocated %d KiB", err, n>>10)
			if n > readAllocBound {
				t.Errorf("allocated %d MiB, want at most %d MiB", n>>20, readAllocBound>>20)
			}
		})
	}
}

// TestLimitEdges reads files exactly at each limit, which must be accepted,
// and one past it, which must fail with ErrLimit (ErrTensor for a tensor
// name, llama.cpp's own rule) naming the field. Strings and arrays hold
// zeros from a hole, so the files cost little disk.
func TestLimitEdges(t *testing.T) {
	keys := func(n int) ([]byte, int64) {
		b := minimal(0, uint64(n))
		for i := 0; i < n; i++ {
			b = append(b, kvBytes(fmt.Sprintf("k%05d", i), uint32(ValueUint8), []byte{1})...)
		}
		return b, int64(len(b))
	}
	tensors := func(n int) ([]byte, int64) {
		b := minimal(uint64(n), 0)
		for i := 0; i < n; i++ {
			b = append(b, tensorBytes(fmt.Sprintf("%063d", i), []uint64{1, 1, 1, 1}, uint32(TypeF32), uint64(32*i))...)
		}
		return b, int64(alignUp(uint64(len(b)), DefaultAlignment) + 32*uint64(n))
	}
	str := func(n uint64) ([]byte, int64) {
		b := minimal(0, 1, kvBytes("k", uint32(ValueString), u64le(n)))
		return b, int64(len(b)) + int64(n)
	}
	arr := func(n uint64) ([]byte, int64) {
		b := minimal(0, 1, kvBytes("k", uint32(ValueArray), arrHdr(uint32(ValueUint8), n)))
		return b, int64(len(b)) + int64(n)
	}
	key := func(n uint64) ([]byte, int64) {
		b := minimal(0, 1, u64le(n), bytes.Repeat([]byte{'k'}, int(n)), u32le(uint32(ValueUint8)), []byte{1})
		return b, int64(len(b))
	}
	name := func(n int) ([]byte, int64) {
		b := minimal(1, 0, tensorBytes(strings.Repeat("t", n), []uint64{8}, uint32(TypeF32), 0))
		return b, int64(alignUp(uint64(len(b)), DefaultAlignment) + 32)
	}
	tests := []struct {
		name      string
		file      func() ([]byte, int64)
		want      error
		wantField string
	}{
		{"MaxKV keys", func() ([]byte, int64) { return keys(MaxKV) }, nil, ""},
		{"MaxKV+1 keys", func() ([]byte, int64) { return keys(MaxKV + 1) }, ErrLimit, "kv_count"},
		{"MaxTensors tensors", func() ([]byte, int64) { return tensors(MaxTensors) }, nil, ""},
		{"MaxTensors+1 tensors", func() ([]byte, int64) { return tensors(MaxTensors + 1) }, ErrLimit, "tensor_count"},
		{"MaxStringLen string", func() ([]byte, int64) { return str(MaxStringLen) }, nil, ""},
		{"MaxStringLen+1 string", func() ([]byte, int64) { return str(MaxStringLen + 1) }, ErrLimit, `kv["k"]`},
		{"MaxArrayLen array", func() ([]byte, int64) { return arr(MaxArrayLen) }, nil, ""},
		{"MaxArrayLen+1 array", func() ([]byte, int64) { return arr(MaxArrayLen + 1) }, ErrLimit, `kv["k"].len`},
		{"MaxKeyLen key", func() ([]byte, int64) { return key(MaxKeyLen) }, nil, ""},
		{"MaxKeyLen+1 key", func() ([]byte, int64) { return key(MaxKeyLen + 1) }, ErrLimit, "kv[0].key"},
		{"MaxNameLen name", func() ([]byte, int64) { return name(MaxNameLen) }, nil, ""},
		{"MaxNameLen+1 name", func() ([]byte, int64) { return name(MaxNameLen + 1) }, ErrTensor, "tensor_info[0].name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, size := tc.file()
			var err error
			n := allocDuring(func() { _, err = Read(holeReader{data, size}, size) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var fe *FormatError
			if tc.want != nil && (!errors.As(err, &fe) || fe.Field != tc.wantField) {
				t.Errorf("got %v, want a *FormatError for field %s", err, tc.wantField)
			}
			if bound := uint64(readAllocBound + tensorTableCost*MaxTensors); n > bound {
				t.Errorf("allocated %d MiB, want at most %d MiB", n>>20, bound>>20)
			}
		})
	}
}

// TestLimitsAdmitLargeModels writes the metadata of the largest real
// tokenizers (Gemma 3's 262,144 tokens with scores and types, and as many
// BPE merges as o200k-based models carry) with a long chat template and a
// few thousand tensors, and checks that Read accepts it using at most half
// of MaxMetadataBytes, so the limits leave real files a wide margin.
func TestLimitsAdmitLargeModels(t *testing.T) {
	w := &Writer{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	toks := make([]string, 262144)
	for i := range toks {
		toks[i] = fmt.Sprintf("▁t%05x", i) // 9 bytes, about a real token's
	}
	merges := make([]string, 446189)
	for i := range merges {
		merges[i] = fmt.Sprintf("Ġt%04x Ġu%03x", i%65536, i%4096) // 15 bytes
	}
	must(w.SetKV("general.architecture", "llama"))
	must(w.SetKV("tokenizer.ggml.tokens", toks))
	must(w.SetKV("tokenizer.ggml.scores", make([]float32, len(toks))))
	must(w.SetKV("tokenizer.ggml.token_type", make([]int32, len(toks))))
	must(w.SetKV("tokenizer.ggml.merges", merges))
	must(w.SetKV("tokenizer.chat_template", strings.Repeat("{% x %}", 64<<10/7)))
	for i := 0; i < 4096; i++ {
		must(w.AddTensor(fmt.Sprintf("blk.%d.ffn_down_exps.weight", i), TypeF32, 1))
	}
	var buf bytes.Buffer
	if _, err := w.Write(&buf, fillData); err != nil {
		t.Fatal(err)
	}
	var err error
	n := allocDuring(func() { _, err = Read(bytes.NewReader(buf.Bytes()), int64(buf.Len())) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file %d MiB, Read allocated %d MiB", buf.Len()>>20, n>>20)
	if n > MaxMetadataBytes/2 {
		t.Errorf("allocated %d MiB, want at most %d MiB (half of MaxMetadataBytes)", n>>20, MaxMetadataBytes>>21)
	}
}
