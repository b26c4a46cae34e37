package engine_test

import (
	"context"
	"path/filepath"
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
