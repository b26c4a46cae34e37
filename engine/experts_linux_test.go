package engine_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// TestPagedExpertsStayFileBacked loads a Q4_0 MoE model, a type llama.cpp's
// CPU backend repacks into anonymous memory at load, evicts its experts
// from the page cache (NewBudget) and decodes without the pager. Inference
// that reads experts from the file mapping faults the routed ones back in,
// which mincore sees; inference that reads repacked copies leaves the
// mapping cold, and paging it would be useless. Plain loading must show
// the second (else this test could not tell the two apart), PagedExperts
// the first.
func TestPagedExpertsStayFileBacked(t *testing.T) {
	spec := modelgen.Spec{
		Name: "repack-moe", Embd: 256, Layers: 2, FF: 512, Heads: 4, HeadsKV: 2,
		Context: 512, Experts: 16, ExpertsUsed: 2, RopeBase: 10000, NormEps: 1e-5,
	}
	path := filepath.Join(t.TempDir(), "repack-moe.gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ4_0, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	faultedByDecode := func(p llama.ModelParams) int64 {
		m, err := llama.LoadModel(path, p)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		b, err := engine.NewBudget(ctx, m, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		refs, err := b.Genome.Pages(b.Artifact(), genome.PageExpert)
		if err != nil {
			t.Fatal(err)
		}
		resident := func() int64 {
			var sum int64
			for _, ref := range refs {
				r, _, err := b.Genome.Residency(ref)
				if err != nil {
					t.Fatal(err)
				}
				sum += r
			}
			return sum
		}
		// Experts that share a kernel folio with dense weights stay cached
		// (genome/doc.go, Folios); what matters is what decoding adds.
		before := resident()
		prompt, _ := m.Vocab().Tokenize("which experts does this read?", true, false)
		generateGreedy(t, m, nil, prompt, 4, nil)
		return resident() - before
	}
	if got := faultedByDecode(llama.ModelParams{}); got != 0 {
		t.Errorf("plain load: decoding faulted %d expert bytes back in; want 0, as llama.cpp repacks Q4_0 experts (if it no longer does, PagedExperts may be unneeded)", got)
	}
	if got := faultedByDecode(engine.PagedExperts(llama.ModelParams{})); got == 0 {
		t.Error("PagedExperts: decoding read no expert bytes from the file mapping; the experts were copied out of it, and the genome cannot page them")
	} else {
		t.Logf("PagedExperts: decoding faulted %d expert bytes in from the mapping", got)
	}
}

// TestBudgetPinsDenseWeights: a Budget locks the dense weights llama.cpp
// reads from the file mapping as pinned Range pages in Warm, beside the
// experts' budget, where decoding under that budget leaves them; and it
// leaves alone the matrices llama.cpp repacked out of the mapping (Q4_0),
// whose file bytes no decode reads.
func TestBudgetPinsDenseWeights(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		t.Run(typ.String(), func(t *testing.T) {
			spec, err := modelgen.Preset("tiny-moe")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "pin.gguf")
			if err := modelgen.Write(path, spec, modelgen.Options{Type: typ, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := llama.LoadModel(path, engine.PagedExperts(llama.ModelParams{}))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			const budget = 256 << 10 // a few of tiny-moe's experts
			b, err := engine.NewBudget(context.Background(), m, budget)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			prompt, _ := m.Vocab().Tokenize("which weights stay locked?", true, false)
			generateGreedy(t, m, b.Pager.Observer(), prompt, 6, nil)
			if err := b.Pager.Err(); err != nil {
				t.Fatal(err)
			}
			if b.Pager.Busy() <= 0 {
				t.Error("Pager.Busy: 0 after a decode that paged experts in")
			}

			var pinned []genome.PageOffset
			var bytes int64
			for _, p := range b.Genome.WorkingSet().Pages {
				if p.Ref.Kind != genome.PageRange {
					continue
				}
				if !p.Pinned || p.Tier != genome.TierWarm {
					t.Errorf("%s: in %s, pinned %v; want pinned in Warm", p.Ref, p.Tier, p.Pinned)
				}
				pinned = append(pinned, p.Ref.Offset)
				bytes += p.Bytes
			}
			if bytes != b.Pinned() || bytes == 0 {
				t.Fatalf("pinned Range pages hold %d bytes, Budget.Pinned %d; want the same, not 0", bytes, b.Pinned())
			}
			covered := func(off, n int64) bool {
				for _, o := range pinned {
					if off >= o.Off && off+n <= o.Off+o.Len {
						return true
					}
				}
				return false
			}
			places := map[string]llama.TensorPlace{}
			for _, p := range m.Tensors() {
				places[p.Name] = p
			}
			_, untied := f.Tensor("output.weight")
			for _, ti := range f.Tensors {
				p := places[ti.Name]
				// A token reads one row of an untied embedding: not dense.
				dense := !strings.Contains(ti.Name, "_exps") && (ti.Name != "token_embd.weight" || !untied)
				want := dense && p.Buffer == "CPU_Mapped"
				if got := covered(int64(ti.Offset), int64(ti.Size)); got != want {
					t.Errorf("%s (%s, buffer %s): pinned %v, want %v", ti.Name, ti.Type, p.Buffer, got, want)
				}
			}
			if locked, err := genome.LockedBytes(); err != nil || locked < b.Pinned() {
				t.Errorf("VmLck %d (%v), below the %d bytes pinned", locked, err, b.Pinned())
			}
			t.Logf("%d bytes of dense weights pinned in %d pages", bytes, len(pinned))
		})
	}
}
