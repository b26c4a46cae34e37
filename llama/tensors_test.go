package llama_test

import (
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// TestTensors checks Model.Tensors against the file: every tensor of the
// GGUF is listed once with its bytes, on the CPU. Q8_0
// weights are served from the file mapping (CPU_Mapped) at the address of
// their file offset; Q4_0 matrices of the layers are repacked (CPU_REPACK, not a host
// buffer: ggml alone reads its layout) out of it.
func TestTensors(t *testing.T) {
	for _, tc := range []struct {
		typ    gguf.Type
		matrix string // the buffer a layer's weight matrices must be in
	}{
		{gguf.TypeQ8_0, "CPU_Mapped"},
		{gguf.TypeQ4_0, "CPU_REPACK"},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			path := testModel(t, "tiny-dense", tc.typ)
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m := load(t, path, llama.ModelParams{})
			places := m.Tensors()
			if len(places) != len(f.Tensors) {
				t.Fatalf("Tensors: %d, the file has %d", len(places), len(f.Tensors))
			}
			// The mapping's address of file offset 0, from any tensor
			// served from it; all must agree.
			var base uintptr
			for _, p := range places {
				ti, ok := f.Tensor(p.Name)
				if !ok {
					t.Fatalf("Tensors lists %q, not in the file", p.Name)
				}
				if p.Bytes != int64(ti.Size) || p.Data == 0 {
					t.Errorf("%s: %d bytes at %#x, want %d", p.Name, p.Bytes, p.Data, ti.Size)
				}
				// A repacked layout is not the tensor's type: ggml reads it
				// only through its own kernels, so its buffer is not host.
				if host := p.Buffer != "CPU_REPACK"; p.Host != host {
					t.Errorf("%s: buffer %s, host %v, want %v", p.Name, p.Buffer, p.Host, host)
				}
				if strings.HasPrefix(p.Name, "blk.") && len(ti.Dims) == 2 && ti.Type == tc.typ && p.Buffer != tc.matrix {
					t.Errorf("%s (%v): buffer %q, want %q", p.Name, ti.Type, p.Buffer, tc.matrix)
				}
				if p.Buffer != "CPU_Mapped" {
					continue
				}
				if b := p.Data - uintptr(ti.Offset); base == 0 {
					base = b
				} else if b != base {
					t.Errorf("%s: at %#x, offset %d in the file: not where the other mapped tensors put the file", p.Name, p.Data, ti.Offset)
				}
			}
			if base == 0 {
				t.Error("no tensor is served from the file mapping (every model has F32 norms, which are never repacked)")
			}
			m.Close()
			if got := m.Tensors(); got != nil {
				t.Errorf("Tensors after Close: %d, want nil", len(got))
			}
		})
	}
}
