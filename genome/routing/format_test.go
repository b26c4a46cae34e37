package routing

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
)

func encode(tb testing.TB, t *Trace) []byte {
	tb.Helper()
	var b bytes.Buffer
	if _, err := t.WriteTo(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func sameTrace(tb testing.TB, got, want *Trace) {
	tb.Helper()
	if got.Arch != want.Arch || got.Model != want.Model || got.Blocks != want.Blocks || got.Experts != want.Experts || got.Used != want.Used || !slices.Equal(got.Layers, want.Layers) {
		tb.Fatalf("header: got %+v, want %+v", got.Header, want.Header)
	}
	if got.Tokens() != want.Tokens() || !slices.Equal(got.ids, want.ids) {
		tb.Fatalf("routings: got %d tokens, want %d (or ids differ)", got.Tokens(), want.Tokens())
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name                          string
		tokens, layers, experts, used int
	}{
		{"one byte ids, several chunks", 3000, 24, 64, 8},
		{"two byte ids", 200, 3, 300, 4},
		{"one token", 1, 1, 1, 1},
		{"no tokens", 0, 2, 8, 2},
		{"256 experts", 50, 2, 256, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := synth(t, tt.tokens, tt.layers, tt.experts, tt.used, 1.2, 0.3, 1)
			data := encode(t, want)
			got, err := Read(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			sameTrace(t, got, want)
			// Header, then chunks of as many whole rows as fit 64 KiB, each
			// with 8 bytes of count and CRC, then the 16-byte end record.
			row := want.RowLen() * want.width()
			perChunk := chunkTarget / row
			chunks := (tt.tokens + perChunk - 1) / perChunk
			if n, w := len(data), len(encodeHeader(&want.Header))+tt.tokens*row+8*chunks+16; n != w {
				t.Errorf("file is %d bytes, want %d (%d chunks)", n, w, chunks)
			}
		})
	}
}

// TestWriterFile writes through Create with a Flush half-way, reads the
// file before Close (truncated: the flushed tokens) and after.
func TestWriterFile(t *testing.T) {
	want := synth(t, 100, 4, 16, 2, 0, 0, 3)
	path := filepath.Join(t.TempDir(), "run.trace")
	w, err := Create(path, want.Header)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]int32, want.RowLen())
	for tok := range want.Tokens() {
		for i, e := range want.ids[tok*len(row) : (tok+1)*len(row)] {
			row[i] = int32(e)
		}
		if err := w.Append(row); err != nil {
			t.Fatal(err)
		}
		if tok == 59 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			part, err := ReadFile(path)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("before Close: got %v, want ErrTruncated", err)
			}
			if part == nil || part.Tokens() != 60 {
				t.Fatalf("before Close: got %v tokens, want the 60 flushed", part)
			}
		}
	}
	if w.Tokens() != 100 {
		t.Errorf("Tokens: got %d, want 100", w.Tokens())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if err := w.Append(row); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameTrace(t, got, want)
}

func TestWriterRejects(t *testing.T) {
	h := Header{Blocks: 4, Experts: 8, Used: 2, Layers: []Layer{{Index: 1}, {Index: 3}}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]int32{{1, 2, 3}, {1, 2, 3, 4, 5}, {0, 1, 2, 8}, {0, -1, 2, 3}} {
		if err := w.Append(row); !errors.Is(err, ErrExpert) {
			t.Errorf("Append(%v): got %v, want ErrExpert", row, err)
		}
	}
	bad := []Header{
		{Blocks: 4, Experts: 8, Used: 9, Layers: []Layer{{Index: 0}}},
		{Blocks: 4, Experts: 8, Used: 2},
		{Blocks: 4, Experts: 8, Used: 2, Layers: []Layer{{Index: 2}, {Index: 1}}},
		{Blocks: 4, Experts: 8, Used: 2, Layers: []Layer{{Index: 4}}},
		{Blocks: 4, Experts: 0, Used: 0, Layers: []Layer{{Index: 0}}},
		{Blocks: 4, Experts: 8, Used: 2, Layers: []Layer{{Index: 0, ExpertBytes: -1}}},
		{Blocks: 4, Experts: 1 << 17, Used: 2, Layers: []Layer{{Index: 0}}},
	}
	for _, h := range bad {
		if _, err := NewWriter(io.Discard, h); !errors.Is(err, ErrHeader) {
			t.Errorf("NewWriter(%+v): got %v, want ErrHeader", h, err)
		}
	}
	big := Header{Blocks: 200, Experts: 1024, Used: 200}
	for l := range 200 {
		big.Layers = append(big.Layers, Layer{Index: l})
	}
	if _, err := NewWriter(io.Discard, big); !errors.Is(err, ErrLimit) {
		t.Errorf("a row of 80,000 bytes: got %v, want ErrLimit", err)
	}
}

// TestWriterAllocs holds Append to no allocation, chunk writes included.
func TestWriterAllocs(t *testing.T) {
	tr := synth(t, 1, 48, 128, 8, 0, 0, 1)
	w, err := NewWriter(bufio.NewWriter(io.Discard), tr.Header)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]int32, tr.RowLen())
	for i, e := range tr.ids {
		row[i] = int32(e)
	}
	// 10,000 rows of 384 bytes cross a dozen chunk boundaries.
	if n := testing.AllocsPerRun(10000, func() {
		if err := w.Append(row); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Append: got %v allocations per token, want 0", n)
	}
}

// reCRC recomputes the CRC of data[start:end] into data[end:end+4].
func reCRC(data []byte, start, end int) {
	binary.LittleEndian.PutUint32(data[end:], crc32.Checksum(data[start:end], castagnoli))
}

func TestReadCorrupt(t *testing.T) {
	tr := synth(t, 40, 2, 100, 2, 0, 0, 5)
	good := encode(t, tr)
	hdrEnd := 12 + int(binary.LittleEndian.Uint32(good[8:])) // offset of the header CRC
	chunk := hdrEnd + 4                                      // first chunk
	endRec := len(good) - 16

	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name     string
		data     []byte
		want     error
		field    string
		offset   int64
		wantPart int // tokens returned with ErrTruncated
	}{
		{"empty", nil, ErrTruncated, "magic", 0, -1},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadMagic, "magic", 0, -1},
		{"version 2", edit(func(b []byte) []byte { b[4] = 2; return b }), ErrVersion, "version", 4, -1},
		{"flags", edit(func(b []byte) []byte { b[6] = 1; return b }), ErrVersion, "flags", 6, -1},
		{"huge header", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 1<<30); return b }), ErrLimit, "header.length", 8, -1},
		{"header bit flip", edit(func(b []byte) []byte { b[20] ^= 1; return b }), ErrChecksum, "header.crc", int64(hdrEnd), -1},
		{"cut in header", good[:hdrEnd-3], ErrTruncated, "header", 12, -1},
		{"header says 0 experts", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdrEnd-2*12-12:], 0) // experts: before used, the layer count and 2 layers
			reCRC(b, 0, hdrEnd)
			return b
		}), ErrHeader, "header", 12, -1},
		{"expert out of range", edit(func(b []byte) []byte {
			b[chunk+4] = 100
			n := int(binary.LittleEndian.Uint32(b[chunk:]))
			reCRC(b, chunk, chunk+4+n*tr.RowLen())
			return b
		}), ErrExpert, "chunk[0].token[0].layer[0]", int64(chunk + 4), -1},
		{"chunk bit flip", edit(func(b []byte) []byte { b[chunk+10] ^= 0x10; return b }), ErrChecksum, "chunk[0].crc", int64(chunk + 4 + 40*4), -1},
		{"huge chunk", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[chunk:], 1<<30); return b }), ErrLimit, "chunk[0].count", int64(chunk), -1},
		{"cut in chunk", good[:chunk+50], ErrTruncated, "chunk[0].rows", int64(chunk + 4), 0},
		{"no end record", good[:endRec], ErrTruncated, "chunk[1].count", int64(endRec), 40},
		{"cut in end record", good[:endRec+6], ErrTruncated, "end.tokens", int64(endRec + 4), 40},
		{"end count wrong", edit(func(b []byte) []byte {
			b[endRec+4] = 41
			reCRC(b, endRec, endRec+12)
			return b
		}), ErrTruncated, "end.tokens", int64(endRec + 4), -1},
		{"end crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum, "end.crc", int64(endRec + 12), -1},
		{"trailing byte", append(bytes.Clone(good), 0), ErrTrailing, "end", int64(len(good)), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T (%v), want a *FormatError", err, err)
			}
			if fe.Field != tt.field || fe.Offset != tt.offset {
				t.Errorf("got field %s at offset %d, want %s at %d (%v)", fe.Field, fe.Offset, tt.field, tt.offset, err)
			}
			switch {
			case tt.wantPart < 0 && got != nil:
				t.Errorf("got a trace of %d tokens with the error, want nil", got.Tokens())
			case tt.wantPart >= 0 && (got == nil || got.Tokens() != tt.wantPart):
				t.Errorf("got trace %v with the error, want %d tokens", got, tt.wantPart)
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

func TestHeaderFromGGUF(t *testing.T) {
	dir := t.TempDir()
	open := func(preset string) *gguf.File {
		t.Helper()
		spec, err := modelgen.Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, preset+".gguf")
		if err := modelgen.Write(p, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tt := range []struct {
		preset string
		first  int // the first MoE layer
	}{{"tiny-moe", 0}, {"tiny-deepseek", 1}} {
		t.Run(tt.preset, func(t *testing.T) {
			f := open(tt.preset)
			h, err := HeaderFromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if h.Arch != f.Architecture() || h.Experts != f.ExpertCount() || h.Used != f.ExpertUsedCount() || h.Blocks != f.BlockCount() {
				t.Errorf("got %+v, want the file's architecture, experts and layers", h)
			}
			if len(h.Layers) != f.BlockCount()-tt.first || h.Layers[0].Index != tt.first {
				t.Fatalf("got MoE layers %+v, want %d..%d", h.Layers, tt.first, f.BlockCount()-1)
			}
			for _, l := range h.Layers {
				rs, err := f.ExpertRanges(l.Index, h.Experts-1)
				if err != nil {
					t.Fatal(err)
				}
				var n int64
				for _, r := range rs {
					n += int64(r.Len)
				}
				if l.ExpertBytes != n || n == 0 {
					t.Errorf("layer %d: got %d bytes per expert, want %d", l.Index, l.ExpertBytes, n)
				}
			}
		})
	}
	if _, err := HeaderFromGGUF(open("tiny-dense")); !errors.Is(err, gguf.ErrNotMoE) {
		t.Errorf("dense model: got %v, want gguf.ErrNotMoE", err)
	}
}

// TestHeaderBoundsPages: a header whose MoE layers × experts would make a
// replay allocate gigabytes is refused, however few tokens follow it (a
// 458 KB trace ran paging sim out of memory).
func TestHeaderBoundsPages(t *testing.T) {
	h := Header{Blocks: 1 << 16, Experts: 1 << 16, Used: 1}
	for i := range 128 {
		h.Layers = append(h.Layers, Layer{Index: i})
	}
	if err := h.Validate(); !errors.Is(err, ErrLimit) {
		t.Errorf("128 layers of 65,536 experts: got %v, want ErrLimit", err)
	}
	h.Layers = h.Layers[:32]
	if err := h.Validate(); err != nil {
		t.Errorf("32 layers of 65,536 experts (2^21): %v", err)
	}
}
