package genome

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
)

// moeSpec is a small MoE whose expert slices span several OS pages, so
// that a budget of a few experts is meaningful: 4 layers x 8 experts, each
// expert 3 x 256 x 1024 Q8_0 weights (~0.8 MiB), ~27 MiB in all.
var moeSpec = modelgen.Spec{
	Name: "genome-moe", Embd: 256, Layers: 4, FF: 1024, Heads: 4, HeadsKV: 2,
	Context: 256, Experts: 8, ExpertsUsed: 2, RouterSkew: 1, RopeBase: 10000, NormEps: 1e-5,
}

func writeMoE(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "moe.gguf")
	if err := modelgen.Write(p, moeSpec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	dropCache(tb, p)
	return p
}

// registerGGUF registers the GGUF file p in a new manager of one Warm
// tier, closed at cleanup.
func registerGGUF(tb testing.TB, p string) (*Local, ArtifactID, *gguf.File) {
	tb.Helper()
	m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(0)}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	id, gf, err := m.RegisterGGUF(p)
	if err != nil {
		tb.Fatalf("RegisterGGUF %s: %v", p, err)
	}
	return m, id, gf
}

func TestExpertPagesOfGGUF(t *testing.T) {
	p := writeMoE(t)
	m, id, gf := registerGGUF(t, p)
	who := NewPersonaID()
	m.RegisterPersona(Persona{ID: who})
	refs, err := m.Pages(id, PageExpert)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != moeSpec.Layers*moeSpec.Experts {
		t.Fatalf("got %d expert pages, want %d", len(refs), moeSpec.Layers*moeSpec.Experts)
	}
	dropCache(t, p) // gguf.Open read the header through the page cache
	ref := ExpertPage(id, 2, 5)
	h, f, err := m.PageIn(context.Background(), who, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedBytes(t, p, 0, gf.FileSize); got != f.Bytes {
		t.Fatalf("after paging one expert in: %d bytes of the file resident, want exactly its %d", got, f.Bytes)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"blk.2.ffn_gate_exps.weight", "blk.2.ffn_up_exps.weight", "blk.2.ffn_down_exps.weight"}
	if len(h.Extents()) != len(names) {
		t.Fatalf("got %d extents, want %d (gate, up, down)", len(h.Extents()), len(names))
	}
	for i, e := range h.Extents() {
		ti, ok := gf.Tensor(names[i])
		if !ok {
			t.Fatalf("no tensor %s", names[i])
		}
		per := int64(ti.Size) / int64(moeSpec.Experts)
		if want := (Extent{Off: int64(ti.Offset) + 5*per, Len: per}); e != want {
			t.Errorf("%s: got extent %+v, want %+v", names[i], e, want)
		}
		if !bytes.Equal(h.Bytes()[i], raw[e.Off:e.End()]) {
			t.Errorf("%s: handle bytes differ from the file", names[i])
		}
	}
	for _, bad := range []PageRef{ExpertPage(id, 4, 0), ExpertPage(id, 0, 8)} {
		_, _, err := m.PageIn(context.Background(), who, bad)
		wantErr(t, err, ErrBadPage)
	}
}

// TestDenseLayersOfMoE registers a DeepSeek-style model whose layer 0 is
// dense: registration must work, Pages must skip the dense layer, and the
// dense layer's FFN (and the shared experts) must be guarded as weights,
// the routed experts as experts, by their bytes.
func TestDenseLayersOfMoE(t *testing.T) {
	spec, err := modelgen.Preset("tiny-deepseek")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "deepseek.gguf")
	if err := modelgen.Write(p, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	m, id, gf := registerGGUF(t, p) // a model with a dense layer
	refs, err := m.Pages(id, PageExpert)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(spec.MoELayers()) * spec.Experts; len(refs) != want {
		t.Fatalf("got %d expert pages, want %d", len(refs), want)
	}
	_, _, err = m.PageIn(context.Background(), NewPersonaID(), ExpertPage(id, 0, 0))
	wantErr(t, err, ErrNoExperts)

	weightsOnly, who := AccessTable{RegionWeights: OpRead | OpPage}, NewPersonaID()
	if err := m.RegisterPersona(Persona{ID: who, Access: &weightsOnly}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tensor string
		ok     bool
	}{
		{"blk.0.ffn_up.weight", true},
		{"blk.1.ffn_up_shexp.weight", true},
		{"blk.1.ffn_up_exps.weight", false},
	}
	for _, tt := range tests {
		t.Run(tt.tensor, func(t *testing.T) {
			ti, ok := gf.Tensor(tt.tensor)
			if !ok {
				t.Fatalf("no tensor %s", tt.tensor)
			}
			err := m.AuditAccess(who, RangePage(id, int64(ti.Offset), int64(ti.Size)))
			if (err == nil) != tt.ok {
				t.Fatalf("weights-only persona reads %s: got %v, want allowed=%v", tt.tensor, err, tt.ok)
			}
		})
	}
}

// TestCorruptBlockCount registers a GGUF whose block_count claims two
// billion layers over one layer of experts: the genome takes the layers
// the tensors hold (registration used to walk every claimed layer, about
// an hour), and an expert page past them is a bad page, not a resolver
// call with any layer number.
func TestCorruptBlockCount(t *testing.T) {
	var w gguf.Writer
	for _, kv := range []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.block_count", Value: uint32(2_000_000_000)},
		{Key: "llama.expert_count", Value: uint32(4)},
		{Key: "llama.expert_used_count", Value: uint32(2)},
	} {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"} {
		if err := w.AddTensor(name, gguf.TypeF32, 1024, 16, 4); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.Write(&buf, func(_ int, ti gguf.TensorInfo, dst io.Writer) error {
		_, err := dst.Write(make([]byte, ti.Size))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "corrupt.gguf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, id, _ := registerGGUF(t, p)
	refs, err := m.Pages(id, PageExpert)
	if err != nil || len(refs) != 4 {
		t.Fatalf("got %d expert pages (%v), want 4", len(refs), err)
	}
	_, _, err = m.PageIn(context.Background(), NewPersonaID(), ExpertPage(id, 1_999_999_999, 0))
	wantErr(t, err, ErrBadPage)
}
